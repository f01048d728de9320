"""Loopback stand-ins for Slack and SMTP, and helpers to write daemon configs and inputs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from monitor.model import Message
from alerts_support import FakeSlack, SmtpSink

T0 = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)

RULE = """\
id: test-claim
title: Test claim of responsibility
level: high
match:
  claim:
    any: ["claimed responsibility", "أعلن مسؤوليته"]
  denial:
    any: ["denies"]
condition: claim and not denial
"""


def slack_count(slack: FakeSlack, token: str) -> int:
    """How many Slack requests the loopback stand-in received that mention ``token``."""
    return sum(1 for r in list(slack.requests) if token in json.dumps(r["json"], ensure_ascii=False))


def smtp_count(sink: SmtpSink, token: str) -> int:
    """How many received emails carry ``token`` in their text part."""
    n = 0
    for m in list(sink.messages):
        body = m["msg"].get_body(preferencelist=("plain",))
        if body is not None and token in body.get_content():
            n += 1
    return n


def canonical_line(mid: int, text: str, channel_id: str = "555") -> str:
    m = Message(
        "telegram", channel_id, str(mid), T0 + timedelta(seconds=mid), text, channel="claims_test",
        channel_title="Claims Test", raw={"id": mid, "text": text},
    )
    return json.dumps(m.to_dict(), ensure_ascii=False) + "\n"


def write_config(tmp: Path, slack_url: str | None, smtp_port: int | None, *, poll: float = 0.05) -> Path:
    (tmp / "rules").mkdir(exist_ok=True)
    (tmp / "rules" / "claim.yaml").write_text(RULE, encoding="utf-8")
    (tmp / "in").mkdir(exist_ok=True)
    dests: dict[str, Any] = {"log": {"type": "file", "path": str(tmp / "alerts.jsonl")}}
    default = ["log"]
    if slack_url:
        dests["slack"] = {"type": "slack", "webhook_url": slack_url}
        default.append("slack")
    if smtp_port:
        dests["mail"] = {
            "type": "email", "host": "127.0.0.1", "port": smtp_port, "security": "none",
            "from": "claimwatch <cw@example.org>", "to": ["desk@example.org"],
        }
        default.append("mail")
    cfg = {
        "database": str(tmp / "archive.db"),
        "rules": str(tmp / "rules"),
        "sources": {"files": [{"path": str(tmp / "in" / "*.jsonl"), "follow": True, "poll_interval": poll}]},
        "alerts": {"default": default, "destinations": dests, "max_retry_seconds": 120},
        "log_format": "json",
    }
    import yaml

    path = tmp / "claimwatch.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def db_rows(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


async def wait_for(pred: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def outbox_report(db: Path, log: Path | None = None) -> str:
    """The archive's delivery state in a few lines, for a failed wait's message: messages and
    hits stored, outbox rows by kind, destination and status (with their attempts), every row
    not yet sent (status, attempts, next_attempt_at, last_error), the time now, and the last
    lines of the daemon's ``log`` that are not ``alert_sent``."""
    out = [f"now {datetime.now(timezone.utc).isoformat(timespec='milliseconds')}"]
    if not db.exists():
        out.append(f"{db}: no archive yet")
    else:
        counts = [db_rows(db, f"select count(*) from {t}") for t in ("messages", "hits")]
        out.append("messages {}, hits {}".format(*(c[0][0] if c else "?" for c in counts)))
        for kind, dest, status, n, lo, hi in db_rows(
            db, "select kind, destination, status, count(*), min(attempts), max(attempts) from outbox"
            " group by kind, destination, status order by kind, destination, status"
        ):
            out.append(f"outbox {kind}/{dest}/{status}: {n} rows, attempts {lo}-{hi}")
        unsent = db_rows(
            db, "select id, kind, destination, status, attempts, next_attempt_at, last_error from outbox"
            " where status != 'sent' order by id"
        )
        for row in unsent[:40]:
            out.append("  row {} {}/{} {} attempts={} next_attempt_at={} last_error={!r}".format(*row))
        if len(unsent) > 40:
            out.append(f"  ... {len(unsent) - 40} more rows not sent")
    if log is not None and log.exists():
        lines = [x for x in log.read_text(encoding="utf-8", errors="replace").splitlines()
                 if x.strip() and '"alert_sent"' not in x]
        out.append("daemon log (without alert_sent):")
        out.extend("  " + x[:400] for x in lines[-15:])
    return "\n".join(out)


def archive_progress(db: Path, *files: Path) -> tuple:
    """What a daemon has done so far: messages and hits stored, outbox rows per status, their
    attempts, the sizes of ``files`` (its log). Changes whenever it makes progress."""
    state: list[Any] = [f.stat().st_size if f.exists() else -1 for f in files]
    if db.exists():
        state += db_rows(db, "select (select count(*) from messages), (select count(*) from hits),"
                             " (select coalesce(sum(attempts), 0) from outbox)")
        state += db_rows(db, "select status, count(*) from outbox group by status order by status")
    return tuple(state)


# wait_progress: how long a daemon may show no progress (nothing stored, no outbox row changed,
# no log line) before a wait fails. Longer than any wait the daemon tests' retry policy allows
# (write_config: max_retry_seconds 120, so backoffs of at most 64 s) and than a daemon's start on
# a starved host (31 s seen at a third of a CPU share on a host at load 12); far shorter than
# the outbox's lease (300 s) that a row left 'sending' would wait for if a restart missed it.
STALL_SECONDS = 120.0
LIMIT_SECONDS = 600.0  # and at most this long in all


def _progress_polls(
    pred: Callable[[], bool], what: str, progress: Callable[[], Any], report: Callable[[], str],
    procs: Sequence[Any], stall: float, limit: float,
) -> Iterator[None]:
    """The loop of :func:`wait_progress`: yields while the caller should sleep between polls."""
    start = time.monotonic()
    last, changed = progress(), start
    while True:
        if pred():
            return
        now = time.monotonic()
        why = None
        exited = [p for p in procs if p.poll() is not None]
        if exited:
            why = f"a daemon exited with {exited[0].returncode}: {' '.join(map(str, exited[0].args))}"
        elif now - changed > stall:
            why = f"no progress for {stall:g} s"
        elif now - start > limit:
            why = f"still not done after {limit:g} s"
        if why is not None:
            raise AssertionError(f"timed out waiting for {what} ({why}, {now - start:.1f} s in all)\n{report()}")
        yield
        snap = progress()
        if snap != last:
            last, changed = snap, time.monotonic()


async def wait_progress(
    pred: Callable[[], bool],
    what: str,
    *,
    progress: Callable[[], Any],
    report: Callable[[], str],
    proc: Any = None,
    procs: Sequence[Any] = (),
    stall: float = STALL_SECONDS,
    limit: float = LIMIT_SECONDS,
) -> None:
    """Poll ``pred`` until it holds. Unlike :func:`wait_for` there is no fixed deadline for
    the work: a loaded host only makes it slower. It fails when ``progress()`` (a snapshot of
    what the daemon has done, e.g. :func:`archive_progress`) has not changed for ``stall``
    seconds, after ``limit`` seconds in all, or at once when ``proc`` (the daemon's Popen; or
    one of ``procs``) has exited; the message says which, and carries ``report()`` (e.g.
    :func:`outbox_report`)."""
    for _ in _progress_polls(pred, what, progress, report, (*procs, *([proc] if proc is not None else [])), stall, limit):
        await asyncio.sleep(0.1)


def wait_progress_sync(
    pred: Callable[[], bool],
    what: str,
    *,
    progress: Callable[[], Any],
    report: Callable[[], str],
    procs: Sequence[Any] = (),
    stall: float = STALL_SECONDS,
    limit: float = LIMIT_SECONDS,
) -> None:
    """:func:`wait_progress` for a test that is not a coroutine."""
    for _ in _progress_polls(pred, what, progress, report, procs, stall, limit):
        time.sleep(0.1)


async def feed_first_hit(tmp: Path, text: str = "They claimed responsibility for it") -> tuple[Path, Path]:
    """Write message 1 into the running daemon's followed feed (``tmp/in/feed.jsonl``) and wait
    until its hit is stored; returns (feed, archive db) for the test to go on with."""
    feed, db = tmp / "in" / "feed.jsonl", tmp / "archive.db"
    feed.write_text(canonical_line(1, text), encoding="utf-8")
    await wait_for(lambda: len(db_rows(db, "select id from hits")) == 1, 20, "first hit")
    return feed, db
