"""The Telegram source inside the real daemon (rules, pipeline, archive, file alerts), with
the fake gateway in place of Telegram."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml

import monitor.sources.telegram as telegram_pkg
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.sources.telegram.session import open_private_session

from telegram_fakes import AMAQ_HASH, AMAQ_ID, FakeGateway, channel, post  # type: ignore[no-redef]

RULE = """\
id: tg-claim
title: Claim of responsibility
level: high
match:
  claim:
    any: ["claimed responsibility"]
condition: claim
"""


def setup_daemon(tmp: Path) -> Path:
    (tmp / "rules").mkdir()
    (tmp / "rules" / "claim.yaml").write_text(RULE, encoding="utf-8")
    open_private_session(tmp / "tg.session")
    cfg = {
        "database": str(tmp / "archive.db"),
        "rules": str(tmp / "rules"),
        "sources": {
            "telegram": {
                "api_id": 12345,
                "api_hash": "0123456789abcdef0123456789abcdef",
                "session": str(tmp / "tg.session"),
                "channels": ["@amaq_example"],
                "backfill": 100,
            }
        },
        "alerts": {"default": ["log"], "destinations": {"log": {"type": "file", "path": str(tmp / "alerts.jsonl")}}},
    }
    path = tmp / "claimwatch.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_daemon_collects_matches_alerts_and_resumes(tmp_path, monkeypatch):
    gw = FakeGateway()
    gw.add_channel(channel(AMAQ_ID, "Amaq Example", "amaq_example", access_hash=AMAQ_HASH))
    gw.add(post(AMAQ_ID, 1, "The group claimed responsibility for the attack"), post(AMAQ_ID, 2, "weather report"))
    monkeypatch.setattr(telegram_pkg, "make_gateway", lambda cfg: gw)
    cfg_path = setup_daemon(tmp_path)
    db = tmp_path / "archive.db"

    assert await Daemon(load_config(cfg_path)).run(once=True) == 0
    assert rows(db, "SELECT channel_id, message_id, url FROM messages ORDER BY id") == [
        (str(AMAQ_ID), "1", "https://t.me/amaq_example/1"),
        (str(AMAQ_ID), "2", "https://t.me/amaq_example/2"),
    ]
    alerts = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(alerts) == 1 and alerts[0]["rule_id"] == "tg-claim"

    # Downtime, then a second run: only the new posts, nothing twice.
    gw.add(post(AMAQ_ID, 3, "They claimed responsibility again", minutes=5))
    assert await Daemon(load_config(cfg_path)).run(once=True) == 0
    assert rows(db, "SELECT message_id FROM messages ORDER BY id") == [("1",), ("2",), ("3",)]
    assert rows(db, "SELECT value FROM checkpoints WHERE source='telegram'") == [("3",)]
    assert rows(db, "SELECT count(*) FROM hits") == [(2,)]
    # The second start used the channel cache, not a username lookup.
    assert [c for c in gw.calls if c[0] == "resolve"].count(("resolve", "amaq_example")) == 1
