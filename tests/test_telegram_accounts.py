"""Several Telegram accounts: channels per account or spread, the limit, one source per
account in the daemon (one account's ban or flood wait does not stop the others), login
and doctor per account. Telegram is the fake gateway of tests/telegram_fakes.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from structlog.testing import capture_logs
from typer.testing import CliRunner

import monitor.sources.telegram as telegram_pkg
from monitor.cli import app
from monitor.config import TelegramConfig, load_config
from monitor.daemon import Daemon
from monitor.sources.telegram.accounts import account_config, account_configs
from monitor.sources.telegram.errors import TelegramSetupError
from monitor.sources.telegram.session import open_private_session

from telegram_fakes import AMAQ_HASH, AMAQ_ID, FakeGateway, channel, post  # type: ignore[no-redef]

HASH = "0123456789abcdef0123456789abcdef"
OTHER_ID = 1777000001


def tg(**kw) -> TelegramConfig:
    return TelegramConfig.model_validate({"api_id": 1, "api_hash": HASH, **kw})


def test_single_account_keys_are_one_account() -> None:
    cfg = tg(channels=["@a"])
    assert account_configs(cfg) == {None: cfg}
    assert account_config(cfg, None) is cfg
    with pytest.raises(TelegramSetupError, match="no Telegram account 'x'"):
        account_config(cfg, "x")


def test_channels_assigned_and_spread_fewest_first_within_the_limit() -> None:
    cfg = tg(
        session="data/tg.session",
        channels=["@c1", "@c2", "@c3", "@c4", "@Own1"],  # @own1 is already assigned (case-insensitive)
        channels_per_account=4,
        accounts=[
            {"name": "a", "channels": ["@own1", "@own2"]},
            {"name": "b", "api_id": 7, "session_string": "xyz"},
        ],
    )
    with capture_logs() as logs:
        accs = account_configs(cfg)
    assert accs["a"].channels == ["@own1", "@own2", "@c3"]
    assert accs["b"].channels == ["@c1", "@c2", "@c4"]
    assert accs["a"].session == "data/telegram-a.session" and accs["a"].api_id == 1
    assert accs["b"].api_id == 7 and accs["b"].session_string.get_secret_value() == "xyz"
    assert accs["a"].accounts == [] and accs["a"].api_hash.get_secret_value() == HASH
    # 3 of 4 is under 90 %: no warning; 4 of 4 warns.
    assert not [x for x in logs if x["event"] == "telegram account near its channel limit"]
    cfg2 = cfg.model_copy(update={"channels": ["@c1", "@c2", "@c3", "@c4", "@c5"]})
    with capture_logs() as logs:
        account_configs(cfg2)
    warned = [x for x in logs if x["event"] == "telegram account near its channel limit"]
    assert [(w["account"], w["channels"]) for w in warned] == [("a", 4)]  # b has 3 of 4
    with pytest.raises(TelegramSetupError, match="do not fit 2 account"):
        account_configs(cfg.model_copy(update={"channels": [f"@x{i}" for i in range(7)]}))
    with pytest.raises(TelegramSetupError, match=r"accounts\[a\]: 5 channels"):
        account_configs(tg(channels_per_account=4, accounts=[{"name": "a", "channels": [f"@y{i}" for i in range(5)]}]))
    with pytest.raises(TelegramSetupError, match="used twice"):
        account_configs(tg(accounts=[{"name": "a"}, {"name": "a"}]))


def setup_two_accounts(tmp: Path) -> Path:
    (tmp / "rules").mkdir()
    (tmp / "rules" / "claim.yaml").write_text(
        "id: tg-claim\ntitle: Claim\nlevel: high\nmatch:\n  claim:\n    any: [\"claimed responsibility\"]\ncondition: claim\n",
        encoding="utf-8",
    )
    open_private_session(tmp / "a.session")
    open_private_session(tmp / "b.session")
    cfg = {
        "database": str(tmp / "archive.db"),
        "rules": str(tmp / "rules"),
        "sources": {"telegram": {
            "api_id": 12345, "api_hash": HASH, "backfill": 100,
            "accounts": [
                {"name": "a", "session": str(tmp / "a.session"), "channels": ["@amaq_example"]},
                {"name": "b", "session": str(tmp / "b.session"), "channels": ["@other_example"]},
            ],
        }},
        "alerts": {"default": ["log"], "destinations": {"log": {"type": "file", "path": str(tmp / "alerts.jsonl")}}},
    }
    path = tmp / "claimwatch.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def gateways() -> tuple[FakeGateway, FakeGateway]:
    ga, gb = FakeGateway(), FakeGateway()
    ga.add_channel(channel(AMAQ_ID, "Amaq Example", "amaq_example", access_hash=AMAQ_HASH))
    ga.add(post(AMAQ_ID, 1, "The group claimed responsibility for the attack"))
    gb.add_channel(channel(OTHER_ID, "Other Example", "other_example", access_hash=5))
    gb.add(post(OTHER_ID, 1, "They claimed responsibility today"), post(OTHER_ID, 2, "weather"))
    return ga, gb


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_each_account_is_its_own_source_and_a_banned_one_does_not_stop_the_other(tmp_path, monkeypatch):
    ga, gb = gateways()
    by_session = {str(tmp_path / "a.session"): ga, str(tmp_path / "b.session"): gb}
    monkeypatch.setattr(telegram_pkg, "make_gateway", lambda cfg: by_session[cfg.session])
    cfg_path = setup_two_accounts(tmp_path)
    db = tmp_path / "archive.db"

    daemon = Daemon(load_config(cfg_path))
    assert await daemon.run(once=True) == 0
    assert set(daemon.sources) == {"telegram:a", "telegram:b"}
    assert sorted(rows(db, "SELECT channel_id, message_id FROM messages")) == [
        (str(AMAQ_ID), "1"), (str(OTHER_ID), "1"), (str(OTHER_ID), "2")]

    # Account a's session is revoked (a ban looks the same) and b meets a flood wait on its
    # history reads: a stops with its reason, b waits its flood out and goes on.
    ga.authorized = False
    ga.add(post(AMAQ_ID, 2, "never read", minutes=5))
    gb.add(post(OTHER_ID, 3, "They claimed responsibility again", minutes=5))
    gb.flood["GetHistory"] = [1]
    daemon = Daemon(load_config(cfg_path))
    # a source that failed makes `run --once` exit 1 (it used to exit 0); the other went on
    assert await daemon.run(once=True) == 1
    assert gb.flood["GetHistory"] == []  # the flood wait was met (and waited out)
    assert daemon.source_errors.get("telegram:a")
    assert "telegram:b" not in daemon.source_errors
    assert sorted(rows(db, "SELECT channel_id, message_id FROM messages")) == [
        (str(AMAQ_ID), "1"), (str(OTHER_ID), "1"), (str(OTHER_ID), "2"), (str(OTHER_ID), "3")]
    assert rows(db, "SELECT count(*) FROM hits") == [(3,)]


def test_login_and_doctor_per_account(tmp_path, monkeypatch):
    ga, gb = gateways()
    by_session = {str(tmp_path / "a.session"): ga, str(tmp_path / "b.session"): gb}
    import monitor.sources.telegram.cli as tg_cli

    monkeypatch.setattr(tg_cli, "make_gateway", lambda cfg: by_session[cfg.session])
    cfg_path = setup_two_accounts(tmp_path)
    gb.authorized = False
    res = CliRunner().invoke(app, ["doctor", "--config", str(cfg_path), "--json"])
    assert res.exit_code == 1, res.output
    checks = [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]
    assert {c["account"] for c in checks} == {"a", "b"}
    assert all(c["ok"] for c in checks if c["account"] == "a")
    assert not all(c["ok"] for c in checks if c["account"] == "b")
    res = CliRunner().invoke(app, ["doctor", "--config", str(cfg_path), "--account", "a"])
    assert res.exit_code == 0, res.output
    assert "account a" in res.output and "account b" not in res.output

    res = CliRunner().invoke(app, ["login", "telegram", "--config", str(cfg_path), "--account", "nope"])
    assert res.exit_code == 2 and "no Telegram account 'nope'" in res.output and "a, b" in res.output
    res = CliRunner().invoke(app, ["login", "telegram", "--config", str(cfg_path)])
    assert res.exit_code == 2 and "choose one with --account" in res.output
