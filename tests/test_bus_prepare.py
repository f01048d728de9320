"""The archiver's preparer processes (bus.preparers, monitor/bus/prepare.py) against a real
redis-server: the same archive as decoding and matching in the archiver, a preparer that
dies, and a rules reload while the preparers hold the old set."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import redis as redis_sync
import yaml

from bus_helpers import write_bus_config
from daemon_helpers import canonical_line, db_rows
from monitor.bus import codec
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.model import Deletion, Message
from test_bus import alerts, feed, run_collector


def archiver_config(tmp: Path, base: Path, name: str, preparers: int) -> Path:
    """``base`` with its own archive, alert file and consumer group (the same stream)."""
    cfg = yaml.safe_load(base.read_text(encoding="utf-8"))
    cfg["database"] = str(tmp / f"{name}.db")
    cfg["alerts"]["destinations"]["log"]["path"] = str(tmp / f"{name}-alerts.jsonl")
    cfg["bus"].update(group=name, name=name, preparers=preparers)
    out = tmp / f"{name}.yaml"
    out.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return out


async def run_archiver(cfg_path: Path) -> Daemon:
    daemon = Daemon(load_config(cfg_path), role="archiver", drain_timeout=5)
    assert await daemon.run(once=True) == 0
    return daemon


def table(db: Path, name: str) -> list[tuple]:
    """Every row of a table, without the columns that hold the time of storing."""
    conn = sqlite3.connect(db)
    try:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({name})")
                if not r[1].endswith("_at") and r[1] not in ("seen_at", "payload")]
        return conn.execute(f"SELECT {', '.join(cols)} FROM {name} ORDER BY 1").fetchall()
    finally:
        conn.close()


def without_times(lines: list[dict]) -> list[str]:
    """The alert lines without the times of storing and sending (in the delivery key too)."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in ("delivery_key", "stored", "deleted") and not k.endswith("_at")}
        return [strip(x) for x in v] if isinstance(v, list) else v

    return sorted(json.dumps(strip(d), sort_keys=True) for d in lines)


async def test_preparers_store_exactly_what_the_archiver_alone_stores(tmp_path: Path, redis_server, monkeypatch) -> None:
    from monitor.incidents.assign import IncidentTracker

    given: list[int] = []  # texts the workers prepared for incident assignment, given to the writer
    own_give = IncidentTracker.give
    monkeypatch.setattr(IncidentTracker, "give", lambda self, prepared, **kw: (
        given.append(len(prepared)), own_give(self, prepared, **kw))[1])
    base = write_bus_config(tmp_path, redis_server.url)
    r = redis_sync.Redis.from_url(redis_server.url)
    feed(tmp_path, 1, 250)
    await run_collector(base)
    # Edits (of a claim too: an 'edited' follow-up), an edit of a message in the same entry,
    # a deletion, and an entry with a bad event between good ones, as collectors publish them.
    edited = [Message.from_dict(json.loads(canonical_line(i, f"Group {i} claimed responsibility, updated")))
              for i in (10, 20, 25)]
    fresh = [Message.from_dict(json.loads(canonical_line(i, text)))
             for i, text in ((300, "first text 300"), (300, "Group 300 claimed responsibility for it"))]
    deletion = Deletion("telegram", "555", ("30", "31"), None)
    for fields in codec.encode_batch([*edited, *fresh, deletion], "other", 1):
        r.xadd("cw-test", fields)
    batch = codec.encode_batch(fresh[:1], "other", 1)[0]
    good = json.loads(batch["b"])[0]
    batch["b"] = json.dumps([good, {"type": "message", "platform": "telegram", "text": "no ids"}, good])
    r.xadd("cw-test", batch)
    feed(tmp_path, 251, 120)
    await run_collector(base)

    with_workers = await run_archiver(archiver_config(tmp_path, base, "workers", 1))
    alone = await run_archiver(archiver_config(tmp_path, base, "alone", 0))
    bus_w, bus_a = with_workers.sources["bus"], alone.sources["bus"]
    assert bus_w.preparers == 1 and bus_w.prepared >= 370 and bus_w.preparer_failures == 0
    assert bus_a.preparers == 0 and bus_a.prepared == 0
    assert bus_w.dead == bus_a.dead == 1 and bus_w.acked == bus_a.acked
    for name in ("messages", "versions", "chain", "hits", "outbox", "incidents", "incident_messages", "families",
                 "family_texts", "incident_facets"):
        assert table(tmp_path / "workers.db", name) == table(tmp_path / "alone.db", name), name
    assert sum(given) >= 40  # (the claims' texts, by the workers; none by the archiver alone)
    assert db_rows(tmp_path / "workers.db", "select count(*) from messages")[0][0] == 370
    assert db_rows(tmp_path / "workers.db", "select count(*) from messages where deleted_at is not null")[0][0] == 2
    assert db_rows(tmp_path / "workers.db", "select count(*) from outbox where kind='edited'")[0][0] >= 1
    got = [json.loads(x) for x in (tmp_path / "workers-alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    want = [json.loads(x) for x in (tmp_path / "alone-alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(got) == len(want) >= 40 and without_times(got) == without_times(want)
    for group in r.xinfo_groups("cw-test"):
        assert group["pending"] == 0


async def test_a_preparer_killed_leaves_nothing_out_and_nothing_twice(tmp_path: Path, redis_server) -> None:
    cfg_path = write_bus_config(tmp_path, redis_server.url)
    feed(tmp_path, 1, 400)
    await run_collector(cfg_path)
    daemon = Daemon(load_config(cfg_path), role="archiver", drain_timeout=5)
    daemon.prepare()
    bus = daemon.sources["bus"]
    await bus.start_preparers()
    pids = list(bus._pool._processes)
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)  # dead before the first entry reaches it
    assert await daemon.run(once=True) == 0
    assert bus.preparer_failures >= 1
    assert db_rows(tmp_path / "archive.db", "select count(*) from messages")[0][0] == 400
    assert db_rows(tmp_path / "archive.db", "select count(*) from hits")[0][0] == 40
    assert len(alerts(tmp_path)) == 40
    assert redis_sync.Redis.from_url(redis_server.url).xinfo_groups("cw-test")[0]["pending"] == 0
    # The pool was started again for later entries: they are prepared there.
    feed(tmp_path, 401, 50)
    await run_collector(cfg_path)
    again = Daemon(load_config(cfg_path), role="archiver", drain_timeout=5)
    assert await again.run(once=True) == 0
    assert again.sources["bus"].prepared == 50 and again.sources["bus"].preparer_failures == 0
    assert db_rows(tmp_path / "archive.db", "select count(*) from messages")[0][0] == 450
    assert len(alerts(tmp_path)) == 45


NEWS_RULE = ("id: test-news\ntitle: Ordinary news\nlevel: low\nmatch:\n  news:\n    any: [\"ordinary news\"]\n"
             "condition: news\n")


async def archiver_with_100_published(tmp_path: Path, url: str) -> Daemon:
    """An archiver (prepared, not running) with 100 messages published by a collector."""
    cfg_path = write_bus_config(tmp_path, url)
    feed(tmp_path, 1, 100)
    await run_collector(cfg_path)
    daemon = Daemon(load_config(cfg_path), role="archiver", drain_timeout=5)
    daemon.prepare()
    return daemon


async def test_rules_reloaded_after_the_preparers_started_are_the_ones_that_match(tmp_path: Path, redis_server) -> None:
    daemon = await archiver_with_100_published(tmp_path, redis_server.url)
    bus = daemon.sources["bus"]
    await bus.start_preparers()  # they hold the rules as they were
    (tmp_path / "rules" / "news.yaml").write_text(NEWS_RULE, encoding="utf-8")
    assert daemon.rules.reload()
    assert await daemon.run(once=True) == 0
    rules = dict(db_rows(tmp_path / "archive.db", "select rule_id, count(*) from hits group by rule_id"))
    assert rules == {"test-claim": 10, "test-news": 90}
    assert bus.prepared == 100  # the preparer loaded the new set itself
    assert len(alerts(tmp_path)) == 100


async def test_events_a_preparer_matched_with_another_rule_set_are_matched_again(tmp_path: Path, redis_server) -> None:
    daemon = await archiver_with_100_published(tmp_path, redis_server.url)
    news = tmp_path / "rules" / "news.yaml"
    news.write_text(NEWS_RULE, encoding="utf-8")
    assert daemon.rules.reload()
    news.unlink()  # the preparer can only load the set without it: its hits do not count
    assert await daemon.run(once=True) == 0
    rules = dict(db_rows(tmp_path / "archive.db", "select rule_id, count(*) from hits group by rule_id"))
    assert rules == {"test-claim": 10, "test-news": 90}
    assert daemon.sources["bus"].prepared == 100
