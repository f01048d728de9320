"""Issue 09 case 10: ``claimwatch status`` tells whether a daemon is running (after ``run
--once`` none is), formats long lags readably and never prints ``- ago, pid -``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from daemon_helpers import canonical_line, db_rows, wait_for, write_config

from monitor.timefmt import approx_duration


def cw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def test_status_after_run_once_says_no_daemon_is_running(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    (tmp_path / "in" / "feed.jsonl").write_text(canonical_line(1, "The group claimed responsibility"))
    assert cw("run", "--config", str(config), "--once").returncode == 0
    out = cw("status", "--config", str(config)).stdout
    assert "daemon: not running (last run ended" in out, out
    assert "pid" not in out and "- ago" not in out


def test_status_of_an_archive_no_daemon_ever_ran_on(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(canonical_line(1, "hello"))
    db = tmp_path / "a.db"
    assert cw("import", str(src), "--db", str(db), "--no-rules").returncode == 0
    out = cw("status", "--db", str(db)).stdout
    assert "daemon: not running (never started on this archive)" in out, out
    assert "- ago" not in out and "pid -" not in out


async def test_status_while_the_daemon_runs(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    (tmp_path / "in" / "feed.jsonl").write_text(canonical_line(1, "hello"))
    log = (tmp_path / "d.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        await wait_for(lambda: bool(db_rows(tmp_path / "archive.db", "select id from messages")), 30, "stored")
        out = cw("status", "--config", str(config)).stdout
        assert f"daemon: running, pid {proc.pid}" in out, out
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert "daemon: not running" in cw("status", "--config", str(config)).stdout


def test_lag_formatting() -> None:
    assert approx_duration(45) == "45s"
    assert approx_duration(12 * 60) == "12m"
    assert approx_duration(5 * 3600) == "5h"
    assert approx_duration(3 * 86400 + 4 * 3600) == "3d 4h"
    assert approx_duration(25439.7 * 3600) == "2y 329d"  # was "25439.7h"


def test_run_once_explains_pending_throttled_followups(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    rule = tmp_path / "rules" / "claim.yaml"
    rule.write_text(rule.read_text() + "throttle: 30m\n")
    feed = tmp_path / "in" / "feed.jsonl"
    feed.write_text("".join(canonical_line(i, f"The group claimed responsibility for attack {i}") for i in range(4)))
    res = cw("run", "--config", str(config), "--once", "--log-level", "WARNING")
    assert res.returncode == 0, res.stderr
    pending = db_rows(tmp_path / "archive.db", "select kind from outbox where status='pending'")
    assert pending and {k for (k,) in pending} == {"followup"}
    lines = [x for x in res.stderr.splitlines() if "left pending" in x]
    assert len(lines) == 1, res.stderr
    assert f"{len(pending)} alert(s) left pending: {len(pending)} throttled follow-up(s)" in lines[0]
    assert "due from" in lines[0] and "daemon" in lines[0]


def test_hits_table_shows_when_the_post_was_published(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    (tmp_path / "in" / "feed.jsonl").write_text(canonical_line(5, "The group claimed responsibility"))
    assert cw("run", "--config", str(config), "--once").returncode == 0
    out = cw("hits", "--config", str(config)).stdout
    assert "posted" in out and "2024-01-04 15:00" in out, out  # the post's date (daemon_helpers.T0 + 5 s)
    import json

    row = json.loads(cw("hits", "--config", str(config), "--json").stdout.splitlines()[0])
    assert row["date"].startswith("2024-01-04T15:00:05") and row["created_at"] > row["date"]  # detection kept


def test_status_shows_a_sources_last_error_as_text(tmp_path: Path) -> None:
    # A source's last error can quote what it read (a title, a post, X's reply): "[/]" was read
    # as rich markup (MarkupError: a traceback) and an ESC sequence reached the terminal.
    import sqlite3

    src = tmp_path / "in.jsonl"
    src.write_text(canonical_line(1, "hello"))
    db = tmp_path / "a.db"
    assert cw("import", str(src), "--db", str(db), "--no-rules").returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO source_status (source, errors, last_error, info, updated_at) VALUES"
                     " ('telegram', 1, 'channel [/] \x1b[2J private', '{}', '2024-01-01T00:00:00Z')")
    res = cw("status", "--db", str(db))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "channel [/] \\x1b[2J private" in res.stdout and "\x1b" not in res.stdout, res.stdout


def test_status_counts_the_errors_of_the_files_source(tmp_path: Path) -> None:
    """A configured file that is missing or a Telegram export that is cut short is a warning
    in the log of ``run --once``; ``status`` (its errors column and last error, and the
    top-level fields of ``--json``) showed 0 and nothing, the count sat in ``info`` only."""
    import json

    import yaml

    config = write_config(tmp_path, None, None)
    cfg = yaml.safe_load(config.read_text())
    cut = tmp_path / "cut.json"
    cut.write_text('{"name": "c", "type": "public_channel", "id": 1, "messages": [{"id": 1, "type": "mess')
    cfg["sources"]["files"] = [{"path": str(tmp_path / "missing.json")}, {"path": str(cut)}]
    config.write_text(yaml.safe_dump(cfg))
    res = cw("run", "--config", str(config), "--once", "--log-level", "ERROR")
    # a configured file that is missing or cut short is an input error: exit 2, one line each
    # naming the config and the entry (it exited 0: a cron job never knew)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {config}: sources.files[0]: {tmp_path / 'missing.json'}: no such file",
                      f"error: {config}: sources.files[1]: {cut}: truncated JSON: the file ends at byte 85,"
                      " in messages[0]"], res.stderr
    [files] = [s for s in json.loads(cw("status", "--config", str(config), "--json").stdout)["sources"]
               if s["source"] == "files"]
    assert files["errors"] == 2, files
    assert "cut.json: truncated JSON" in files["last_error"], files
    out = cw("status", "--config", str(config)).stdout
    [row] = [line for line in out.splitlines() if "│ files" in line]
    assert [c.strip() for c in row.split("│")][5] == "2" and "cut.json" in row, out
    # a second run adds its own errors, not the first run's again
    assert cw("run", "--config", str(config), "--once").returncode == 2
    [files] = [s for s in json.loads(cw("status", "--config", str(config), "--json").stdout)["sources"]
               if s["source"] == "files"]
    assert files["errors"] == 4, files
