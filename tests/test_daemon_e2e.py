"""`claimwatch run` as a real subprocess: followed JSONL in, loopback Slack and SMTP out,
SIGKILL mid-stream and restart (nothing lost, nothing duplicated), SIGTERM clean exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_helpers import (
    archive_progress, canonical_line, db_rows, outbox_report, slack_count, smtp_count, wait_progress, write_config,
)
from alerts_support import FakeSlack, SmtpSink



def start_daemon(config: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def text_for(i: int) -> str:
    # Every other message is a claim; each carries a unique token to count deliveries.
    if i % 2 == 0:
        return f"The group claimed responsibility for attack tok{i}x in Kerman"
    return f"Weather report tok{i}x for the region"


def append(path: Path, start: int, stop: int) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for i in range(start, stop):
            fh.write(canonical_line(i, text_for(i)))
            fh.flush()


async def test_kill_and_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    slack = FakeSlack().start()
    smtp = SmtpSink().start()
    config = write_config(tmp_path, slack.webhook_url, smtp.port)
    db = tmp_path / "archive.db"
    feed = tmp_path / "in" / "feed.jsonl"
    feed.touch()
    log = tmp_path / "daemon.log"
    expected_hits = len([i for i in range(80) if i % 2 == 0])

    # Waits end on progress, not on a fixed deadline: on a loaded host (2 cores, many jobs)
    # a restart alone can take tens of seconds. They fail when the daemon makes no progress
    # for two minutes (STALL_SECONDS) or exits, and say what the outbox holds.
    def progress() -> tuple:
        return (*archive_progress(db, log), len(slack.requests), len(smtp.messages))

    def report() -> str:
        return outbox_report(db, log) + f"\nslack requests {len(slack.requests)}, emails {len(smtp.messages)}"

    def settled() -> bool:
        # every message and hit stored, and no outbox row left to send (pending or sending)
        return (db_rows(db, "select count(*) from messages") == [(80,)]
                and db_rows(db, "select count(*) from hits") == [(expected_hits,)]
                and db_rows(db, "select count(*) from outbox where status in ('pending', 'sending')") == [(0,)])

    proc = start_daemon(config, log)
    try:
        append(feed, 0, 20)
        await wait_progress(lambda: slack_count(slack, "tok18x") == 1 and smtp_count(smtp, "tok18x") == 1,
                            "first alerts", progress=progress, report=report, proc=proc)
        append(feed, 20, 60)
        await wait_progress(lambda: len(db_rows(db, "select id from messages")) >= 30, "some of the second batch",
                            progress=progress, report=report, proc=proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        sent_before = db_rows(
            db,
            "select m.text, o.destination from outbox o join hits h on h.id=o.hit_id"
            " join messages m on m.id=h.message_rowid where o.status='sent'",
        )
        proc = start_daemon(config, log)
        append(feed, 60, 80)
        await wait_progress(settled, "all alerts delivered after restart", progress=progress, report=report, proc=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
            slack.stop()
            smtp.stop()
    # Every alert row was delivered (none failed, skipped or added), one per hit and destination.
    assert db_rows(db, "select status, count(*) from outbox group by status") == [("sent", expected_hits * 3)], report()
    # Every appended message is in the archive exactly once, every hit exists once.
    assert len(db_rows(db, "select id from messages")) == 80
    assert db_rows(db, "select count(distinct message_id) from messages")[0][0] == 80
    assert len(db_rows(db, "select id from hits")) == expected_hits
    assert len(db_rows(db, "select id from versions")) == 80
    for i in range(0, 80, 2):
        token = f"tok{i}x"
        assert slack_count(slack, token) >= 1, token
        assert smtp_count(smtp, token) >= 1, token
    # Exactly once for rows that were marked sent before the kill.
    for text, dest in sent_before:
        token = text.split()[6]
        if dest == "slack":
            assert slack_count(slack, token) == 1, token
        elif dest == "mail":
            assert smtp_count(smtp, token) == 1, token
    # Non-claims never alerted.
    assert slack_count(slack, "tok1x") == 0


async def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    db = tmp_path / "archive.db"
    feed = tmp_path / "in" / "feed.jsonl"
    append(feed, 0, 10)
    log = tmp_path / "daemon.log"
    proc = start_daemon(config, log)
    try:
        await wait_progress(lambda: len(db_rows(db, "select id from messages")) == 10, "messages stored",
                            progress=lambda: archive_progress(db, log), report=lambda: outbox_report(db, log), proc=proc)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)  # the drain and the last checkpoint: seconds on a loaded host
    finally:
        if proc.poll() is None:
            proc.kill()
    log_text = (tmp_path / "daemon.log").read_text()
    assert code == 0, log_text
    # log_format: json gives one JSON object per line.
    events = [json.loads(x) for x in log_text.splitlines() if x.strip()]
    assert any(e.get("event") == "claimwatch stopped" for e in events)
    # State flushed: the checkpoint is at the end of the file, alerts written, heartbeat recorded.
    (value,) = db_rows(db, "select value from checkpoints where source='files'")[0]
    assert int(value.split(":")[1]) == feed.stat().st_size
    lines = (tmp_path / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    assert db_rows(db, "select count(*) from outbox where status='sent'")[0][0] == 5
    assert db_rows(db, "select source from source_status where source='daemon'")


def test_broken_rules_refuse_to_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    (tmp_path / "rules" / "bad.yaml").write_text("id: bad\nmatch:\n  a: {any: [x]}\ncondition: a and nope\n")
    res = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(config), "--once"],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 2
    assert "bad.yaml" in res.stderr and "nope" in res.stderr
    assert not (tmp_path / "archive.db").exists() or not db_rows(tmp_path / "archive.db", "select id from messages")


def test_unusable_alert_config_refuses_to_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, None)
    text = config.read_text(encoding="utf-8").replace("alerts:\n", "alerts:\n  templates: /nonexistent/templates\n", 1)
    config.write_text(text, encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(config), "--once"],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 2
    assert "cannot start" in res.stderr and "/nonexistent/templates" in res.stderr
