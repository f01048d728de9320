"""Issue 09, cases 1-2: nothing lost, nothing corrupted when the archive is full or a
second process writes to it. Real SQLite errors: a tmpfs the test mounts (root only) or
SQLite's max_page_count (``CLAIMWATCH_MAX_PAGE_COUNT``); ``claimwatch verify`` after each."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from daemon_helpers import canonical_line, db_rows, wait_for, write_config

from monitor.archive import Archive
from monitor.daemon.pipeline import Pipeline
from monitor.model import Message
from monitor.sources.base import Envelope


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def start_daemon(config: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def append(path: Path, start: int, stop_: int, pad: int = 0) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for i in range(start, stop_):
            fh.write(canonical_line(i, f"Weather report tok{i}x " + "x" * pad))


def count(db: Path) -> int:
    rows = db_rows(db, "select count(*) from messages")
    return rows[0][0] if rows else 0


def verify_ok(db: Path) -> None:
    res = cli("verify", "--db", str(db))
    assert res.returncode == 0, res.stdout + res.stderr


def log_events(log: Path) -> list[dict]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


# -- case 2: a second writer -------------------------------------------------------------
async def test_import_while_daemon_runs_keeps_the_chain(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    db = tmp_path / "archive.db"
    feed = tmp_path / "in" / "feed.jsonl"
    append(feed, 0, 10)
    other = tmp_path / "other.jsonl"
    other.write_text("".join(canonical_line(i, f"imported tok{i}x", channel_id="777") for i in range(20)))
    proc = start_daemon(config, tmp_path / "daemon.log")
    try:
        await wait_for(lambda: count(db) == 10, 30, "first messages")
        res = cli("import", str(other), "--db", str(db), "--no-rules")
        assert res.returncode == 0, res.stderr
        assert count(db) == 30
        append(feed, 10, 20)  # the daemon extends the chain after the import's rows
        await wait_for(lambda: count(db) == 40, 30, "messages after the import")
    finally:
        stop(proc)
    verify_ok(db)


# -- case 1: the archive is full -----------------------------------------------------------
def test_once_on_a_full_archive_exits_non_zero_and_loses_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    db = tmp_path / "archive.db"
    feed = tmp_path / "in" / "feed.jsonl"
    append(feed, 0, 5)
    first = cli("run", "--config", str(config), "--once")
    assert first.returncode == 0, first.stderr
    pages = db_rows(db, "pragma page_count")[0][0]
    append(feed, 5, 3000, pad=300)  # far more than 40 free pages hold
    full = cli("run", "--config", str(config), "--once", env={"CLAIMWATCH_MAX_PAGE_COUNT": str(pages + 40)})
    out = full.stdout + full.stderr
    assert full.returncode != 0, out
    assert "database or disk is full" in out
    assert "cannot rollback" not in out
    stored_while_full = count(db)
    assert stored_while_full < 3000
    # The follow position did not pass what was not stored: a run with room stores all of it.
    again = cli("run", "--config", str(config), "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    assert count(db) == 3000
    assert db_rows(db, "select count(distinct message_id) from messages")[0][0] == 3000
    verify_ok(db)


def _message(i: int) -> Message:
    return Message.from_dict(json.loads(canonical_line(i, f"report tok{i}x " + "y" * 2000)))


async def test_pipeline_retries_a_failed_batch_until_it_commits(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path / "a.db")
    pages = archive.conn.execute("pragma page_count").fetchone()[0]
    archive.conn.execute(f"pragma max_page_count={pages + 2}")  # SQLite itself refuses the writes
    committed: list[int] = []
    errors: list[str] = []
    pipe = Pipeline(archive, lambda: None, retry_initial=0.01, retry_max=0.05,
                    on_write_error=lambda e: errors.append(e) if e else None)
    pipe.start()
    for i in range(200):
        await pipe.emit(Envelope(_message(i), "test", on_commit=lambda i=i: committed.append(i)))
    await wait_for(lambda: pipe.stats.write_errors >= 3, 20, "failed writes")
    assert committed == [] or committed == list(range(len(committed)))
    assert pipe.write_error is not None and "database or disk is full" in pipe.write_error
    assert len(errors) == 1  # reported once, not once per attempt
    with archive.lock:
        archive.conn.execute("pragma max_page_count=1073741823")  # room again
    await pipe.close()
    assert committed == list(range(200))  # every envelope, in emit order, after its commit
    assert pipe.write_error is None and pipe.stats.unstored == 0
    assert archive.conn.execute("select count(*) from messages").fetchone()[0] == 200
    archive.close()
    verify_ok(tmp_path / "a.db")


def port(log: Path) -> int:
    for e in log_events(log):
        if e.get("event") == "health endpoint listening":
            return int(e["url"].rsplit(":", 1)[1].split("/")[0])
    raise AssertionError("no health endpoint in the log")


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


async def test_disk_full_while_following_is_retried_reported_and_alerted_once(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "16m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        config = write_config(tmp_path, None, None)
        cfg_text = config.read_text().replace(str(tmp_path / "archive.db"), str(disk / "archive.db"))
        port_cfg = cfg_text + "http:\n  enabled: true\n  host: 127.0.0.1\n  port: 0\n"
        config.write_text(port_cfg)
        db = disk / "archive.db"
        feed = tmp_path / "in" / "feed.jsonl"
        append(feed, 0, 10)
        log = tmp_path / "daemon.log"
        proc = start_daemon(config, log)
        try:
            await wait_for(lambda: count(db) == 10, 30, "first messages")
            filler = disk / "filler"
            with filler.open("wb") as fh:  # fill the disk for real
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError:
                    pass
            append(feed, 10, 3010, pad=100)
            await wait_for(lambda: any(e.get("event", "").startswith("archive write failed") for e in log_events(log)),
                           60, "a failed write")
            status: list[str] = []

            def status_reports_it() -> bool:
                status.append(cli("status", "--db", str(db)).stdout)
                return "archive writes failing" in status[-1] and "database or disk is full" in status[-1]

            await wait_for(status_reports_it, 30, "status reporting the failure")
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port(log)}/metrics", timeout=10).read().decode()
            assert "claimwatch_archive_write_failing 1.0" in metrics
            filler.unlink()  # free the disk: the retried batch commits
            append(feed, 3010, 3110)
            await wait_for(lambda: count(db) == 3110, 90, "everything stored after the disk was freed")
        finally:
            code = stop(proc)
        assert code == 0
        events = log_events(log)
        failures = [e for e in events if e.get("event", "").startswith("archive write failed")]
        assert all("full" in str(e.get("error")) for e in failures), failures
        assert not any("cannot rollback" in json.dumps(e) for e in events)
        alerts = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
        notices = [a for a in alerts if a.get("kind") == "notice" and "archive" in a.get("title", "")]
        assert len(notices) == 1, notices
        verify_ok(db)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
