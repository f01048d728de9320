"""``claimwatch doctor`` and ``claimwatch login telegram``, session file permissions, and
the daemon's build_source checks."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
import structlog
from telethon import errors
from telethon.crypto import AuthKey
from telethon.sessions import StringSession
from telethon.tl import types
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import TelegramConfig
from monitor.sources.telegram import build_source
from monitor.sources.telegram import cli as tg_cli
from monitor.sources.telegram.errors import TelegramSetupError
from monitor.sources.telegram.gateway import TelethonGateway
from monitor.sources.telegram.session import check_session_file, open_private_session
from telegram_fakes import AMAQ_HASH, AMAQ_ID, OTHER_HASH, OTHER_ID, FakeGateway, channel, post  # type: ignore[no-redef]

runner = CliRunner()
API_HASH = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI configures structlog to print to CliRunner's stderr, which closes after the
    invocation: put the previous configuration back for the tests that follow."""
    saved = structlog.get_config()
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    structlog.configure(**saved)
    root.setLevel(level)
    root.handlers[:] = handlers


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def private_session(tmp_path: Path) -> Path:
    p = tmp_path / "tg.session"
    open_private_session(p)
    return p


def write_config(tmp_path: Path, channels: list[str], session: Path) -> Path:
    cfg = tmp_path / "claimwatch.yaml"
    cfg.write_text(
        "database: {db}\nsources:\n  telegram:\n    api_id: 12345\n    api_hash: {h}\n    session: {s}\n"
        "    channels: {c}\n".format(db=tmp_path / "a.db", h=API_HASH, s=session, c=json.dumps(channels)),
        encoding="utf-8",
    )
    return cfg


def fake_telegram() -> FakeGateway:
    gw = FakeGateway()
    gw.add_channel(channel(AMAQ_ID, "Amaq Example", "amaq_example", access_hash=AMAQ_HASH))
    gw.add(post(AMAQ_ID, 41, "latest"))
    gw.add_channel(channel(OTHER_ID, "Lurker", "lurked_channel", access_hash=OTHER_HASH, left=True))
    gw.resolve_errors["private_one"] = errors.ChannelPrivateError(request=None)
    return gw


# -- doctor -------------------------------------------------------------------------------
def test_doctor_reports_each_channel_and_fails_on_unreadable(tmp_path, monkeypatch):
    gw = fake_telegram()
    monkeypatch.setattr(tg_cli, "make_gateway", lambda cfg: gw)
    cfg = write_config(
        tmp_path, ["@amaq_example", "@private_one", "@nobody_here", "@lurked_channel"], private_session(tmp_path)
    )
    result = runner.invoke(app, ["doctor", "--config", str(cfg), "--json"])
    assert result.exit_code == 1, result.output
    rows = {r["name"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["credentials"]["ok"] and rows["session"]["ok"]
    assert rows["account"]["ok"] and "@desk_analyst" in rows["account"]["detail"]
    ok = rows["@amaq_example"]
    assert ok["ok"] and ok["channel_id"] == str(AMAQ_ID) and "newest post 41" in ok["detail"]
    assert not rows["@private_one"]["ok"] and "ChannelPrivateError" in rows["@private_one"]["detail"]
    assert not rows["@nobody_here"]["ok"] and "UsernameNotOccupiedError" in rows["@nobody_here"]["detail"]
    lurk = rows["@lurked_channel"]
    assert lurk["ok"] and "not a member" in lurk["detail"]
    assert gw.disconnects == 1


def test_doctor_table_and_exit_0_when_all_is_well(tmp_path, monkeypatch):
    gw = fake_telegram()
    gw.channels[AMAQ_ID].title = "[bold]Amaq[/bold] Example"  # titles are hostile input: printed as-is
    monkeypatch.setattr(tg_cli, "make_gateway", lambda cfg: gw)
    cfg = write_config(tmp_path, ["@amaq_example"], private_session(tmp_path))
    result = runner.invoke(app, ["doctor", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout and "[bold]Amaq[/bold]" in result.stdout


def test_doctor_not_logged_in(tmp_path, monkeypatch):
    gw = fake_telegram()
    gw.authorized = False
    monkeypatch.setattr(tg_cli, "make_gateway", lambda cfg: gw)
    cfg = write_config(tmp_path, ["@amaq_example"], private_session(tmp_path))
    result = runner.invoke(app, ["doctor", "--config", str(cfg), "--json"])
    assert result.exit_code == 1
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert rows[-1]["name"] == "account" and "login telegram" in rows[-1]["detail"]


def test_doctor_refuses_a_readable_session_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tg_cli, "make_gateway", lambda cfg: pytest.fail("must not connect"))
    session = private_session(tmp_path)
    os.chmod(session, 0o644)
    cfg = write_config(tmp_path, ["@amaq_example"], session)
    result = runner.invoke(app, ["doctor", "--config", str(cfg), "--json"])
    assert result.exit_code == 1
    last = json.loads(result.stdout.splitlines()[-1])
    assert last["name"] == "session" and "chmod 600" in last["detail"]


def test_doctor_without_credentials(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database: {tmp_path / 'a.db'}\nsources:\n  telegram:\n    channels: ['@x_channel']\n")
    result = runner.invoke(app, ["doctor", "--config", str(cfg), "--json"])
    assert result.exit_code == 1
    assert "my.telegram.org" in json.loads(result.stdout.splitlines()[0])["detail"]


def test_doctor_on_a_config_without_telegram_says_so_and_exits_0(tmp_path, monkeypatch):
    """A config that reads files or X only is not a problem: it exited 1 ("nothing to check"),
    failing a deployment gate."""
    monkeypatch.setattr(tg_cli, "make_gateway", lambda cfg: pytest.fail("must not connect"))
    monkeypatch.delenv("CLAIMWATCH_CONFIG", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database: {tmp_path / 'a.db'}\nsources:\n  files:\n    - {{path: {tmp_path / 'in.jsonl'}}}\n")
    result = runner.invoke(app, ["doctor", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    [row] = [json.loads(x) for x in result.stdout.splitlines()]
    assert row["name"] == "telegram" and row["configured"] is False and row["ok"]
    assert str(cfg) in row["detail"] and "no sources.telegram" in row["detail"]
    result = runner.invoke(app, ["doctor", "--config", str(cfg)])
    assert result.exit_code == 0 and "not configured" in result.stdout and "problem" not in result.output
    result = runner.invoke(app, ["doctor"])  # no config at all
    assert result.exit_code == 0 and "no config file given" in " ".join(result.stdout.split())
    assert not (tmp_path / "a.db").exists()


# -- session files ---------------------------------------------------------------------------
def test_session_file_is_created_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "sub" / "telegram.session"
        open_private_session(path)
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert check_session_file(path) == path


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660])
def test_session_readable_by_others_is_refused(tmp_path, bad_mode):
    path = private_session(tmp_path)
    os.chmod(path, bad_mode)
    with pytest.raises(TelegramSetupError, match=f"chmod 600 {path}"):
        check_session_file(path)
    cfg = TelegramConfig(api_id=1, api_hash=API_HASH, session=str(path))
    with pytest.raises(TelegramSetupError):
        build_source(cfg)  # the daemon refuses to start


async def test_gateway_refuses_a_readable_session_before_connecting(tmp_path):
    path = private_session(tmp_path)
    os.chmod(path, 0o644)
    made = []
    gw = TelethonGateway(
        TelegramConfig(api_id=1, api_hash=API_HASH, session=str(path)),
        client_factory=lambda *a, **k: made.append(a),
    )
    with pytest.raises(TelegramSetupError, match="accessible by other users"):
        await gw.connect()
    assert made == []


def test_build_source_checks(tmp_path):
    with pytest.raises(TelegramSetupError, match="api_id and api_hash"):
        build_source(TelegramConfig(session=str(tmp_path / "x.session")))
    with pytest.raises(TelegramSetupError, match="login telegram"):
        build_source(TelegramConfig(api_id=1, api_hash=API_HASH, session=str(tmp_path / "missing.session")))
    with pytest.raises(TelegramSetupError, match="backfill"):
        build_source(TelegramConfig(api_id=1, api_hash=API_HASH, session_string="x", backfill="soon"))
    ok = build_source(TelegramConfig(api_id=1, api_hash=API_HASH, session=str(private_session(tmp_path))))
    assert ok.name == "telegram"


def test_invalid_string_session_is_a_setup_error():
    gw = TelethonGateway(TelegramConfig(api_id=1, api_hash=API_HASH, session_string="not-a-session"))
    with pytest.raises(TelegramSetupError, match="StringSession"):
        gw._session()


# -- login ----------------------------------------------------------------------------------
class FakeLoginClient:
    """Stands in for TelegramClient at the network edge: asks the callbacks like start() does."""

    def __init__(self, session, api_id, api_hash):
        self.session = session
        self.args = (api_id, api_hash)
        self.answers = None
        self.disconnected = False

    async def start(self, phone, code_callback, password, max_attempts):
        self.answers = (phone(), code_callback(), password())
        # a successful login leaves a DC and an auth key in the session
        self.session.set_dc(2, "149.154.167.40", 443)
        self.session.auth_key = AuthKey(b"\x07" * 256)
        self.session.save()

    async def get_me(self):
        return types.User(id=42, first_name="Desk", username="desk_analyst")

    async def disconnect(self):
        self.disconnected = True


@pytest.fixture
def login_client(monkeypatch):
    made: list[FakeLoginClient] = []

    def factory(session, api_id, api_hash):
        made.append(FakeLoginClient(session, api_id, api_hash))
        return made[-1]

    monkeypatch.setattr(tg_cli, "make_login_client", factory)
    return made


def test_login_writes_a_private_session_file(tmp_path, login_client):
    session = tmp_path / "data" / "telegram.session"
    session.parent.mkdir()
    session.write_bytes(b"")
    os.chmod(session, 0o644)  # a pre-existing loose file gets tightened
    result = runner.invoke(
        app,
        ["login", "telegram", "--session", str(session), "--api-id", "12345", "--api-hash", API_HASH],
        input="+441234567890\n12345\nhunter2\n",
    )
    assert result.exit_code == 0, result.output
    (client,) = login_client
    assert client.answers == ("+441234567890", "12345", "hunter2")
    assert client.args == (12345, API_HASH) and client.disconnected
    assert mode(session) == 0o600
    assert "Logged in as @desk_analyst" in result.stdout
    assert "hunter2" not in result.stdout
    check_session_file(session)


def test_login_string_prints_a_string_session_and_writes_nothing(tmp_path, login_client, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TG_API_ID", "12345")
    monkeypatch.setenv("TG_API_HASH", API_HASH)
    result = runner.invoke(app, ["login", "telegram", "--string", "--phone", "+441234567890"], input="12345\npw\n")
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip().splitlines()[-1]
    restored = StringSession(printed)
    assert restored.dc_id == 2 and restored.auth_key.key == b"\x07" * 256
    assert list(tmp_path.rglob("*.session")) == []


def test_login_needs_api_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("TG_API_ID", raising=False)
    monkeypatch.delenv("TG_API_HASH", raising=False)
    result = runner.invoke(app, ["login", "telegram", "--session", str(tmp_path / "s.session")])
    assert result.exit_code == 2
    assert "my.telegram.org" in result.output


def test_doctor_creates_no_archive(tmp_path, monkeypatch):
    gw = fake_telegram()
    monkeypatch.setattr(tg_cli, "make_gateway", lambda cfg: gw)
    cfg = write_config(tmp_path, ["@amaq_example"], private_session(tmp_path))
    result = runner.invoke(app, ["doctor", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert not list(tmp_path.glob("a.db*"))  # issue 09 case 10: no empty archive as a side effect
