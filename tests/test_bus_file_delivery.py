"""The file alert destination delivers each outbox row at most once, also across a crash
between its write and the outbox's ``sent`` mark (the bus fault test relies on it)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from daemon_helpers import canonical_line, db_rows, write_config
from monitor.alerts.alert import Alert
from monitor.alerts.destinations.file import FileDestination
from monitor.config import FileDestination as FileConfig


def _alert(outbox_id: int | None, created_at: str | None = "2026-11-29T10:00:00.000000Z", title: str = "t") -> Alert:
    return Alert(kind="alert", level="high", title=title, subject=title, text=title, html=title, slack_text=title,
                 slack_blocks=[], data={"rule_id": "r"}, outbox_id=outbox_id, destination="log",
                 created_at=created_at)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_a_redelivered_row_is_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    dest = FileDestination("log", FileConfig(type="file", path=str(path)))

    async def scenario() -> None:
        await dest.send(_alert(1))
        await dest.send(_alert(2))
        await dest.send(_alert(1))  # the same outbox row again (a retry after a timeout)
        # After a restart: a new destination object reads the keys back from the file.
        again = FileDestination("log", FileConfig(type="file", path=str(path)))
        await again.send(_alert(2))
        assert again.skipped == 1
        # Another archive's row 1 (its outbox started again at 1) is another delivery.
        await again.send(_alert(1, created_at="2026-12-01T08:00:00.000000Z"))
        # An alert without an outbox row (`claimwatch alerts test`) is always written.
        await again.send(_alert(None))
        await again.send(_alert(None))

    asyncio.run(scenario())
    records = [json.loads(x) for x in _lines(path)]
    assert [r["outbox_id"] for r in records] == [1, 2, 1, None, None]
    assert records[0]["delivery_key"] == "log:1:2026-11-29T10:00:00.000000Z"
    assert records[2]["delivery_key"] == "log:1:2026-12-01T08:00:00.000000Z"
    assert records[3]["delivery_key"] is None
    assert dest.skipped == 1


def test_a_line_cut_short_by_a_crash_is_ended_and_its_alert_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    dest = FileDestination("log", FileConfig(type="file", path=str(path)))
    asyncio.run(dest.send(_alert(1)))
    whole = path.read_bytes()
    line2 = FileDestination("log", FileConfig(type="file", path=str(path))).record(_alert(2))
    path.write_bytes(whole + json.dumps(line2).encode()[:40])  # torn mid-line, no newline
    fresh = FileDestination("log", FileConfig(type="file", path=str(path)))
    asyncio.run(fresh.send(_alert(2)))
    asyncio.run(fresh.send(_alert(1)))
    lines = _lines(path)
    assert len(lines) == 3 and lines[0] == whole.decode().rstrip("\n")
    assert json.loads(lines[2])["outbox_id"] == 2  # the torn line stays, unreadable, on its own
    try:
        json.loads(lines[1])
        raise AssertionError("the torn line should not parse")
    except ValueError:
        pass


def test_keys_appended_by_another_writer_are_seen(tmp_path: Path) -> None:
    """Two destination objects on one file (two processes): each sees the other's lines."""
    path = tmp_path / "alerts.jsonl"
    a = FileDestination("log", FileConfig(type="file", path=str(path)))
    b = FileDestination("log", FileConfig(type="file", path=str(path)))

    async def scenario() -> None:
        await a.send(_alert(1))
        await b.send(_alert(2))
        await a.send(_alert(2))
        await b.send(_alert(1))

    asyncio.run(scenario())
    assert [json.loads(x)["outbox_id"] for x in _lines(path)] == [1, 2]
    assert a.skipped == b.skipped == 1


def test_sigkill_between_the_write_and_the_sent_mark_gives_one_line(tmp_path: Path) -> None:
    """A daemon whose process is SIGKILLed right after the file destination fsynced the line
    (before the outbox row was marked sent); the restarted daemon sends the row again, the
    destination finds the line and reports it sent: one line, the row sent."""
    cfg = write_config(tmp_path, None, None)
    (tmp_path / "in" / "feed.jsonl").write_text(
        canonical_line(1, "ordinary news") + canonical_line(2, "Group X claimed responsibility for the attack"),
        encoding="utf-8",
    )
    db = tmp_path / "archive.db"
    crash = (
        "import os, signal, sys\n"
        "from monitor.alerts.destinations import file as f\n"
        "write = f.FileDestination._append\n"
        "def write_then_die(self, line, key):\n"
        "    write(self, line, key)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "f.FileDestination._append = write_then_die\n"
        "from monitor.cli import main\n"
        f"sys.argv = ['claimwatch', 'run', '--config', {str(cfg)!r}, '--log-level', 'WARNING']\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    alerts = tmp_path / "alerts.jsonl"
    assert len(_lines(alerts)) == 1
    assert db_rows(db, "select status from outbox") == [("sending",)]

    again = subprocess.run(
        [sys.executable, "-c", "from monitor.cli import main; main()", "run", "--config", str(cfg), "--once",
         "--log-level", "INFO"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "not written again" in again.stdout + again.stderr
    lines = _lines(alerts)
    assert len(lines) == 1 and json.loads(lines[0])["delivery_key"].startswith("log:1:")
    assert db_rows(db, "select status, attempts from outbox") == [("sent", 2)]
    assert db_rows(db, "select count(*) from messages")[0][0] == 2
