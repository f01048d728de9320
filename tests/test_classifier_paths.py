"""A learned classifier's hits (rule ``classifier``, no terms, often no actors, a probability in
``score``) through every write path: ``claimwatch import --alert``, the daemon (``run --once``
over a files source, alerts delivered to a file), the bus (a real redis-server: collector ->
stream -> archiver), the bus's preparer code (decode, match and prepare as a worker does, the
result pickled as it crosses the process boundary) and the import's preparer process (forked).
Each leaves the same hits (score included), outbox rows and incident rows. The hits come from
``ClassifierMatcher`` (tests/classifier_support.py): a real rule matcher plus the classifier
hook's hit; the daemon and the bus archiver build it where they load their rules."""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path

import pytest
import yaml

from bus_helpers import write_bus_config
from classifier_support import CLF_HASH, ClassifierMatcher
from daemon_helpers import T0, write_config
from monitor.alerts.policy import OutboxPolicy
from monitor.archive import Archive
from monitor.archive.rows import prepare_row
from monitor.bus import codec, prepare
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.ingest import import_file
from monitor.model import Message
from monitor.rules import Matcher, load_rules

ATTACK_RULE = """\
id: attack
title: Attack mentioned
level: medium
kind: report
match:
  attack:
    any: ["attack"]
condition: attack
"""


def _message(mid: int, text: str, *, edit: bool = False) -> Message:
    from datetime import timedelta

    return Message("telegram", "555", str(mid), T0 + timedelta(seconds=mid), text, channel="claims_test",
                   channel_title="Claims Test", edit_date=T0 + timedelta(minutes=5) if edit else None,
                   raw={"id": mid, "text": text})


# 1: the classifier alone (no terms, no actors); 2: a rule's hit and the classifier's; 3: a
# rule's hit and the classifier's statement; 4: nothing; then 1 edited (a new text: a new hit)
EVENTS = [
    _message(1, "Our fighters carried out the operation at the checkpoint"),
    _message(2, "The group claimed responsibility for the operation"),
    _message(3, "The ministry will condemn the attack on the convoy"),
    _message(4, "ordinary news"),
    _message(1, "Our fighters carried out the operation at the northern checkpoint", edit=True),
]


def _config(tmp: Path, redis_url: str | None = None) -> Path:
    """The daemon test config (files source, rules, a file destination ``log``), plus the
    ``attack`` rule and, for the bus, ``bus:``."""
    path = write_bus_config(tmp, redis_url) if redis_url else write_config(tmp, None, None)
    (tmp / "rules" / "attack.yaml").write_text(ATTACK_RULE, encoding="utf-8")
    return path


def _feed(tmp: Path) -> None:
    with (tmp / "in" / "feed.jsonl").open("w", encoding="utf-8") as fh:
        for m in EVENTS:
            fh.write(json.dumps(m.to_dict(), ensure_ascii=False) + "\n")


@pytest.fixture
def with_classifier(monkeypatch):
    """The daemon's (and bus archiver's) rules state builds the ClassifierMatcher."""
    from monitor.daemon import rules_state

    real = rules_state.load_matcher

    def load(*args, **kw):
        inner = real(*args, **kw)
        return ClassifierMatcher(inner, destinations=inner._rules[0].hit["destinations"])

    monkeypatch.setattr(rules_state, "load_matcher", load)


def _matcher(tmp: Path) -> ClassifierMatcher:
    cfg = load_config(tmp / "claimwatch.yaml") if (tmp / "claimwatch.yaml").exists() else None
    inner = Matcher(load_rules([tmp / "rules"]), default_destinations=tuple(cfg.alerts.default))
    return ClassifierMatcher(inner, destinations=tuple(cfg.alerts.default))


def _rows(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        key = "m.platform || ':' || m.channel_id || ':' || m.message_id"
        return {
            "hits": conn.execute(
                f"SELECT {key}, h.rule_id, h.rule_hash, h.level, h.title, h.tags, h.matches, h.kind, h.actors, h.score"
                " FROM hits h JOIN messages m ON m.id = h.message_rowid ORDER BY h.id").fetchall(),
            "outbox": conn.execute(
                f"SELECT {key}, h.rule_id, o.kind, o.destination, o.dedup_key, o.payload FROM outbox o"
                " JOIN hits h ON h.id = o.hit_id JOIN messages m ON m.id = h.message_rowid ORDER BY o.id").fetchall(),
            "incidents": conn.execute(
                f"SELECT {key}, im.incident_id, im.family_id, im.kind, im.rules, im.actors, im.how"
                " FROM incident_messages im JOIN messages m ON m.id = im.message_rowid ORDER BY im.message_rowid"
            ).fetchall(),
        }
    finally:
        conn.close()


def _expected_hits(rows: dict[str, list[tuple]]) -> None:
    hits = rows["hits"]
    clf = [h for h in hits if h[1] == "classifier"]
    assert [(h[0], h[7], h[8]) for h in clf] == [
        ("telegram:555:1", "claim", None), ("telegram:555:2", "claim", None), ("telegram:555:3", "statement", None),
        ("telegram:555:1", "claim", None)]  # the edit's text: a new hit
    assert all(h[2] == CLF_HASH and h[6] == "[]" and h[5] == '["classifier"]' and 0 < h[9] < 1 for h in clf)
    assert clf[0][9] != clf[3][9]  # each text its own probability
    assert all(h[9] is None for h in hits if h[1] != "classifier")
    assert sorted(h[1] for h in hits if h[1] != "classifier") == ["attack", "test-claim"]


def _expected_outbox(rows: dict[str, list[tuple]]) -> None:
    out = rows["outbox"]
    # one alert per message version: the classifier's alone (message 1), the rule's high claim
    # leading the classifier's (2), the medium rule's hit leading the medium classifier's (3);
    # the edit of 1: its new hit's alert and the edited follow-up
    alerts = [(key, rule, json.loads(p) if p else None) for key, rule, kind, _d, _k, p in out if kind == "alert"]
    assert [(k, r) for k, r, _p in alerts] == [
        ("telegram:555:1", "classifier"), ("telegram:555:2", "test-claim"), ("telegram:555:3", "attack"),
        ("telegram:555:1", "classifier")]
    assert alerts[0][2] is None and len(alerts[1][2]["hit_ids"]) == 2 and len(alerts[2][2]["hit_ids"]) == 2
    assert [kind for _key, _r, kind, *_ in out].count("edited") == 1


def _import(tmp: Path, *, alerts: bool = True, process: bool = False) -> Path:
    db = tmp / ("import.db" if alerts else "import-noalerts.db")
    archive = Archive.open(db)
    archive.policy = OutboxPolicy.from_config(load_config(tmp / "claimwatch.yaml"))
    path = tmp / "in" / "feed.jsonl"
    import_file(archive, path, matcher=_matcher(tmp), alerts=alerts, prepare_process=process)
    archive.close()
    return db


async def test_import_and_daemon_leave_the_same_rows(tmp_path: Path, with_classifier) -> None:
    cfg_path = _config(tmp_path)
    _feed(tmp_path)
    imported = _rows(_import(tmp_path))
    _expected_hits(imported)
    _expected_outbox(imported)

    daemon = Daemon(load_config(cfg_path), drain_timeout=5)
    assert await daemon.run(once=True) == 0
    ran = _rows(tmp_path / "archive.db")
    assert ran == imported
    # delivered: the JSON record says why the classifier's hit matched, and lists no terms
    lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    first = next(d for d in lines if d.get("rule_id") == "classifier")
    assert first["classifier"] == [f"learned classifier: claim, probability {imported['hits'][0][9]:.2f}"]
    assert first["matches"] == [] and first["matched_terms"] == [] and first["hit"]["actors"] == []
    assert first["hit"]["score"] == imported["hits"][0][9]
    both = next(d for d in lines if d.get("rule_id") == "test-claim")
    assert [r["rule_id"] for r in both["rules"]] == ["test-claim", "classifier"]
    assert both["matched_terms"] == ["claimed responsibility"] and len(both["classifier"]) == 1

    # without alerts, in the import's preparer process (forked; the hits cross it pickled)
    plain = _rows(_import(tmp_path, alerts=False, process=True))
    assert plain["hits"] == imported["hits"] and plain["incidents"] == imported["incidents"]
    assert plain["outbox"] == []


def test_bus_preparer_code_carries_the_score(tmp_path: Path) -> None:
    """What a bus preparer worker does (decode the entry, match, prepare the row), its result
    pickled as it comes back from the worker process, stored by the archiver."""
    _config(tmp_path)
    _feed(tmp_path)
    imported = _rows(_import(tmp_path))
    matcher = _matcher(tmp_path)
    prepare._rules.update(matcher=matcher, fingerprint="test-set")
    try:
        entries = codec.encode_batch(EVENTS, "c1", 0)
        fp, prepared = pickle.loads(pickle.dumps(
            prepare.prepare_entries([e["b"].encode("utf-8") for e in entries], "test-set")))
    finally:
        prepare._rules.clear()
    assert fp == "test-set"
    archive = Archive.open(tmp_path / "bus-prepared.db")
    archive.policy = OutboxPolicy.from_config(load_config(tmp_path / "claimwatch.yaml"))
    items = [item for entry in prepared for item in entry]
    assert all(item is not None for item in items)
    found = [h for _row, hits, _msg, _inc in items for h in hits if h.rule_id == "classifier"]
    assert [h.score is not None and h.matches == () and h.actors == () for h in found] == [True] * 4
    for row, hits, msg, _inc in items:  # one event at a time, as the archiver stores entries in order
        archive.store_prepared([(row, hits, msg)])
    archive.close()
    assert _rows(tmp_path / "bus-prepared.db") == imported


async def test_bus_collector_to_archiver_leaves_the_same_rows(tmp_path: Path, redis_server, with_classifier) -> None:
    from monitor.bus.roles import Collector

    cfg_path = _config(tmp_path, redis_server.url)
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["bus"]["preparers"] = 0  # the archiver decodes and matches (a spawned preparer loads its own rules)
    cfg_path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    _feed(tmp_path)
    imported = _rows(_import(tmp_path))
    collector = Collector(load_config(cfg_path))
    assert await collector.run(once=True) == 0
    assert collector.publisher.published == len(EVENTS)
    archiver = Daemon(load_config(cfg_path), role="archiver", drain_timeout=5)
    assert await archiver.run(once=True) == 0
    assert _rows(tmp_path / "archive.db") == imported
    lines = (tmp_path / "alerts.jsonl").read_text(encoding="utf-8")
    assert "learned classifier: claim, probability" in lines
