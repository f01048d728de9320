"""One outbox policy on every path: the same message with two rules' hits, then its edit, then
its deletion leaves the same outbox rows (kind, destination, dedup key, payload: one alert per
message version and destination listing both hits) whether it came through ``claimwatch import
--alert`` (import_file + Archive.mark_deleted), the daemon's pipeline, the bus's archiver (rows
prepared by its preparer processes: Archive.store_prepared), or the Telegram source's backfill
and gap-fill (fake Telegram at the network edge, real pipeline)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from monitor.alerts.policy import OutboxPolicy
from monitor.archive import Archive
from monitor.config import Config
from monitor.daemon import Pipeline
from monitor.ingest import import_file
from monitor.archive.rows import prepare_row
from monitor.model import Deletion, Message
from monitor.rules import Matcher, load_rules
from monitor.sources.base import Envelope

from telegram_fakes import AMAQ_HASH, AMAQ_ID, T0, Collector, FakeGateway, Sleeps, channel, context, post, tg_config
from monitor.sources.telegram import TelegramSource

RULE = """\
id: claim
title: Claim of responsibility
level: high
match:
  claim:
    any: ["claim the attack"]
condition: claim
"""
RULE2 = """\
id: attack
title: Attack mentioned
level: medium
match:
  attack:
    any: ["attack"]
condition: attack
"""
CFG = Config.model_validate({"alerts": {"default": ["log", "slack"]}})


def _matcher(tmp: Path) -> Matcher:
    (tmp / "rules").mkdir(exist_ok=True)
    (tmp / "rules" / "claim.yaml").write_text(RULE, encoding="utf-8")
    (tmp / "rules" / "attack.yaml").write_text(RULE2, encoding="utf-8")
    return Matcher(load_rules([tmp / "rules"]), default_destinations=CFG.alerts.default)  # as the CLI and daemon


def _open(path: Path) -> Archive:
    archive = Archive.open(path)
    archive.policy = OutboxPolicy.from_config(CFG)  # as the daemon and `claimwatch import` do
    return archive


def _outbox(archive: Archive) -> list[tuple[str, str, str, str | None]]:
    return sorted(archive.conn.execute("SELECT kind, destination, dedup_key, payload FROM outbox").fetchall())


async def _telegram(tmp: Path, matcher: Matcher) -> tuple[list[tuple[str, str, str]], list[Message | Deletion]]:
    """Backfill the post, then gap-fill finds its edit, then its deletion."""
    archive = _open(tmp / "telegram.db")
    events: list[Message | Deletion] = []
    pipe = Pipeline(archive, lambda: matcher, batch_wait=0.001)
    pipe.start()

    async def emit(envelope: Envelope) -> None:
        events.append(envelope.event)
        await pipe.emit(envelope)

    gw = FakeGateway()
    gw.add_channel(channel(AMAQ_ID, "Amaq Example", "amaq_example", access_hash=AMAQ_HASH))
    gw.add(post(AMAQ_ID, 1, "We claim the attack", minutes=-60))
    source = TelegramSource(tg_config(), gw, sleep=Sleeps(), now=lambda: T0)
    ctx = context(archive, Collector(archive))
    ctx.emit = emit
    task = asyncio.create_task(source.run(ctx))
    await asyncio.wait_for(source.ready.wait(), 5)
    gw.add(post(AMAQ_ID, 1, "We claim the attack on the bridge", minutes=-60, edit_date=T0 + timedelta(minutes=1)))
    await source.gapfill()
    del gw.history[AMAQ_ID][1]
    await source.gapfill()
    ctx.stop.set()
    await asyncio.wait_for(task, 5)
    await pipe.close()
    rows = _outbox(archive)
    archive.close()
    return rows, events


async def _daemon(tmp: Path, matcher: Matcher, events: list[Message | Deletion]) -> list[tuple[str, str, str]]:
    archive = _open(tmp / "daemon.db")
    pipe = Pipeline(archive, lambda: matcher, batch_wait=0.001)
    pipe.start()
    for event in events:
        await pipe.emit(Envelope(event, "test"))
    await pipe.close()
    assert pipe.stats.followups == 4  # edited + deleted, to both destinations
    rows = _outbox(archive)
    archive.close()
    return rows


def _import(tmp: Path, matcher: Matcher, events: list[Message | Deletion]) -> list[tuple[str, str, str]]:
    """Each message version as its own canonical JSONL file (an import per version); the
    deletion through the archive's API (files carry none)."""
    archive = _open(tmp / "import.db")
    for i, event in enumerate(events):
        if isinstance(event, Deletion):
            archive.mark_deleted(event)
            continue
        path = tmp / f"v{i}.jsonl"
        path.write_text(json.dumps(event.to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
        import_file(archive, path, matcher=matcher, alerts=True, prepare_process=False)
    rows = _outbox(archive)
    archive.close()
    return rows


def _bus(tmp: Path, matcher: Matcher, events: list[Message | Deletion]) -> list[tuple[str, str, str, str | None]]:
    """As the bus's archiver stores what its preparer processes made (Pipeline._store_pending)."""
    archive = _open(tmp / "bus.db")
    for event in events:
        if isinstance(event, Deletion):
            archive.mark_deleted(event)
            continue
        hits = matcher.match(event)
        archive.store_prepared([(prepare_row(event), hits, event if hits else None)])
    rows = _outbox(archive)
    archive.close()
    return rows


async def test_hit_edit_delete_leave_the_same_outbox_rows_on_every_path(tmp_path: Path) -> None:
    matcher = _matcher(tmp_path)
    telegram, events = await _telegram(tmp_path, matcher)
    assert [type(e).__name__ for e in events] == ["Message", "Message", "Deletion"]
    daemon = await _daemon(tmp_path, matcher, events)
    imported = _import(tmp_path, matcher, events)
    bus = _bus(tmp_path, matcher, events)

    # The post's two hits and the edit's two new hits each make ONE alert per destination
    # (the high claim leads, the medium one is listed); the edit and the deletion each get
    # one follow-up per destination that was alerted.
    assert [(kind, dest) for kind, dest, _key, _payload in telegram] == [
        ("alert", "log"), ("alert", "log"), ("alert", "slack"), ("alert", "slack"),
        ("deleted", "log"), ("deleted", "slack"), ("edited", "log"), ("edited", "slack"),
    ]
    alerts = [(key, json.loads(payload)) for kind, _dest, key, payload in telegram if kind == "alert"]
    assert sorted(alerts) == [
        ("alert:2:log", {"hit_ids": [2, 1]}), ("alert:2:slack", {"hit_ids": [2, 1]}),
        ("alert:4:log", {"hit_ids": [4, 3]}), ("alert:4:slack", {"hit_ids": [4, 3]}),
    ]
    assert daemon == telegram
    assert imported == telegram
    assert bus == telegram


def test_import_without_alert_queues_nothing_for_edits_and_deletions(tmp_path: Path) -> None:
    matcher = _matcher(tmp_path)
    archive = _open(tmp_path / "a.db")
    v1 = Message("telegram", str(AMAQ_ID), "1", T0, "We claim the attack", raw={"v": 1})
    v2 = Message("telegram", str(AMAQ_ID), "1", T0, "We claim the attack again", edit_date=T0, raw={"v": 2})
    for i, msg in enumerate((v1, v2)):
        path = tmp_path / f"{i}.jsonl"
        path.write_text(json.dumps(msg.to_dict()) + "\n", encoding="utf-8")
        report = import_file(archive, path, matcher=matcher, alerts=False, prepare_process=False)
        assert report.result.hits == 2  # both rules
    archive.mark_deleted(Deletion("telegram", str(AMAQ_ID), ("1",)), alerts=False)
    assert _outbox(archive) == []
    archive.close()


def test_import_alert_without_rules_still_queues_the_edit_followup(tmp_path: Path) -> None:
    """`import --alert --no-rules` of an edit: no new hit, but the earlier hit's destinations
    hear of the edit (the preparer process, which stores rows without outbox rows, is not used)."""
    archive = _open(tmp_path / "a.db")
    v1 = Message("telegram", str(AMAQ_ID), "1", T0, "We claim the attack", raw={"v": 1})
    v2 = Message("telegram", str(AMAQ_ID), "1", T0, "Statement withdrawn", edit_date=T0, raw={"v": 2})
    for i, (msg, matcher) in enumerate(((v1, _matcher(tmp_path)), (v2, None))):
        path = tmp_path / f"{i}.jsonl"
        path.write_text(json.dumps(msg.to_dict()) + "\n", encoding="utf-8")
        import_file(archive, path, matcher=matcher, alerts=True, prepare_process=True)
    assert [(k, d) for k, d, _key, _payload in _outbox(archive)] == [
        ("alert", "log"), ("alert", "slack"), ("edited", "log"), ("edited", "slack"),
    ]
    archive.close()
