"""The delivery worker: restarts, leases, retries, give-up, wake-ups, file/webhook/console."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

from alerts_support import hit_for, message, outbox_rows, slack  # noqa: F401
from daemon_helpers import archive_progress, outbox_report, wait_progress

from monitor.alerts.destinations import ConsoleDestination, build_destinations
from monitor.alerts.outbox import DeliveryWorker, list_deliveries, retry_failed, status_counts
from monitor.timefmt import ts
from monitor.archive import Archive, utcnow
from monitor.config import Config


def _cfg(**destinations) -> Config:
    return Config.model_validate({"alerts": {"destinations": destinations}})


def _slack_cfg(url: str) -> Config:
    return _cfg(slack={"type": "slack", "webhook_url": url})


def _store_many(archive, n: int, dest: str = "slack") -> None:
    items = []
    for i in range(n):
        msg = message(f"alert-{i:03d} claimed responsibility", mid=str(i))
        items.append((msg, [hit_for(msg, destinations=(dest,))]))
    archive.store(items)


def _alert_ids(requests) -> Counter:
    ids = Counter()
    for r in requests:
        text = r["json"]["blocks"][2]["text"]["text"]
        ids[text.split(" ", 1)[0]] += 1
    return ids


async def test_restart_midway_delivers_every_alert_exactly_once(db_path, slack):
    slack.delay = 0.03  # slow enough to cancel worker A with sends in flight
    first = Archive.open(db_path)
    _store_many(first, 30)
    worker_a = DeliveryWorker(first, build_destinations(_slack_cfg(slack.webhook_url)), concurrency=3, poll_interval=30)
    task = asyncio.create_task(worker_a.run(asyncio.Event()))
    await asyncio.to_thread(slack.wait_for, 8)
    task.cancel()  # the "kill": the process goes away in the middle of delivering
    try:
        await task
    except asyncio.CancelledError:
        pass
    await worker_a.aclose()
    first.close()
    sent_by_a = len(slack.requests)
    assert 8 <= sent_by_a < 30

    second = Archive.open(db_path)  # the restarted process: a new worker over the same DB file
    try:
        assert [r["status"] for r in outbox_rows(second)].count("sent") == sent_by_a
        worker_b = DeliveryWorker(second, build_destinations(_slack_cfg(slack.webhook_url)), concurrency=3)
        try:
            assert await worker_b.drain(20) == 30 - sent_by_a
        finally:
            await worker_b.aclose()
        rows = outbox_rows(second)
    finally:
        second.close()
    ids = _alert_ids(slack.requests)
    assert len(ids) == 30 and set(ids.values()) == {1}
    assert all(r["status"] == "sent" for r in rows)


_WORKER_SCRIPT = """
import asyncio, sys
from monitor.alerts.destinations import build_destinations
from monitor.alerts.outbox import DeliveryWorker
from monitor.archive import Archive
from monitor.config import Config

async def main(db, url):
    archive = Archive.open(db)
    cfg = Config.model_validate({"alerts": {"destinations": {"slack": {"type": "slack", "webhook_url": url}}}})
    await DeliveryWorker(archive, build_destinations(cfg), concurrency=2).run(asyncio.Event())

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_sigkill_midway_then_restart_loses_nothing(db_path, slack):
    """A real process killed with SIGKILL mid-delivery: after the restart every alert
    arrives; only the sends that were on the wire (at most ``concurrency``) may repeat."""
    slack.delay = 0.03
    with Archive.open(db_path) as archive:
        _store_many(archive, 30)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER_SCRIPT, str(db_path), slack.webhook_url],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # No fixed deadlines (a loaded host only makes this slower): the waits fail when nothing
    # moves for two minutes (daemon_helpers.STALL_SECONDS), and then say what the outbox holds.
    try:
        await wait_progress(lambda: len(slack.requests) >= 8, "8 alerts from the process to kill",
                            progress=lambda: (len(slack.requests), *archive_progress(db_path)),
                            report=lambda: outbox_report(db_path), proc=proc)
    finally:
        proc.kill()
        proc.wait(10)
    killed_after = len(slack.requests)
    assert killed_after < 30
    with Archive.open(db_path) as archive:
        worker = DeliveryWorker(archive, build_destinations(_slack_cfg(slack.webhook_url)), concurrency=2)
        try:
            idle = 0  # drains in a row that sent nothing while rows were left
            while status_counts(archive).keys() - {"sent"} and idle < 3:
                idle = idle + 1 if await worker.drain(20) == 0 else 0
        finally:
            await worker.aclose()
        rows = outbox_rows(archive)
        assert all(r["status"] == "sent" for r in rows), outbox_report(db_path)
    ids = _alert_ids(slack.requests)
    assert len(ids) == 30  # nothing lost
    assert sum(n - 1 for n in ids.values()) <= 2  # repeats: only what was in flight
    assert all(r["status"] == "sent" for r in rows)


async def test_row_left_sending_by_a_crashed_worker_is_sent_after_its_lease(archive, slack):
    _store_many(archive, 2)
    past = ts(utcnow() - timedelta(seconds=1))
    future = ts(utcnow() + timedelta(seconds=600))
    archive.conn.execute("UPDATE outbox SET status='sending', attempts=1, next_attempt_at=? WHERE id=1", (past,))
    archive.conn.execute("UPDATE outbox SET status='sending', attempts=1, next_attempt_at=? WHERE id=2", (future,))
    worker = DeliveryWorker(archive, build_destinations(_slack_cfg(slack.webhook_url)))
    try:
        assert await worker.deliver_due() == 1  # row 2 is still leased by a live worker
    finally:
        await worker.aclose()
    rows = outbox_rows(archive)
    assert rows[0]["status"] == "sent" and rows[0]["attempts"] == 2
    assert rows[1]["status"] == "sending"
    assert list(_alert_ids(slack.requests)) == ["alert-000"]


async def test_a_restarted_worker_recovers_rows_left_sending_at_once(archive, slack):
    _store_many(archive, 3)
    future = ts(utcnow() + timedelta(seconds=600))  # leased by a process that was killed
    archive.conn.execute("UPDATE outbox SET status='sending', attempts=1, next_attempt_at=?", (future,))
    worker = DeliveryWorker(archive, build_destinations(_slack_cfg(slack.webhook_url)))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.to_thread(slack.wait_for, 3, 5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await worker.aclose()
    assert [r["status"] for r in outbox_rows(archive)] == ["sent"] * 3
    assert sorted(_alert_ids(slack.requests)) == ["alert-000", "alert-001", "alert-002"]


async def test_sent_rows_are_never_sent_again(archive, slack):
    _store_many(archive, 3)
    worker = DeliveryWorker(archive, build_destinations(_slack_cfg(slack.webhook_url)))
    try:
        assert await worker.deliver_due() == 3
        archive.conn.execute("UPDATE outbox SET next_attempt_at='2000-01-01T00:00:00.000000Z'")
        assert await worker.deliver_due() == 0
        assert retry_failed(archive) == 0  # sent rows are not "failed"
        assert await worker.deliver_due() == 0
    finally:
        await worker.aclose()
    assert len(slack.requests) == 3


async def test_failed_rows_can_be_retried(archive, slack):
    slack.respond((403, {}, "action_prohibited"), (403, {}, "action_prohibited"))
    _store_many(archive, 2)
    worker = DeliveryWorker(archive, build_destinations(_slack_cfg(slack.webhook_url)))
    try:
        assert await worker.deliver_due() == 0
        assert status_counts(archive) == {"failed": 2}
        assert retry_failed(archive, [2]) == 1
        assert retry_failed(archive, [2, 99]) == 0  # already pending / unknown
        rows = outbox_rows(archive)
        assert rows[1]["status"] == "pending" and rows[1]["attempts"] == 0
        assert await worker.deliver_due() == 1
        assert retry_failed(archive) == 1
        assert await worker.deliver_due() == 1
    finally:
        await worker.aclose()
    assert [r["status"] for r in outbox_rows(archive)] == ["sent", "sent"]
    assert len(slack.requests) == 4


async def test_gives_up_after_max_retry_seconds_of_backoff(archive, slack):
    slack.respond(*[(500, {}, "down")] * 10)
    _store_many(archive, 1)
    # nominal delays 0.01, 0.02, 0.04: the schedule spans 0.05 s at the 3rd attempt
    worker = DeliveryWorker(
        archive, build_destinations(_slack_cfg(slack.webhook_url)),
        base_delay=0.01, max_delay=1, max_retry_seconds=0.05,
    )
    try:
        await worker.drain(5)
    finally:
        await worker.aclose()
    [row] = outbox_rows(archive)
    assert row["status"] == "failed" and row["attempts"] == 3
    assert row["last_error"] == "gave up after 3 attempts: Slack webhook HTTP 500: down"
    assert len(slack.requests) == 3


async def test_a_deadline_while_a_failure_is_recorded_still_records_it(archive, slack):
    """drain's deadline cancels the delivery while the outcome of a failed send is being
    written (in a thread): the row was left 'sending' (on a busy host the write had not even
    started, and a cancelled thread job never runs). The outcome is written before drain ends."""
    slack.respond(*[(503, {}, "unavailable")] * 10)
    _store_many(archive, 1)
    worker = DeliveryWorker(archive, build_destinations(_slack_cfg(slack.webhook_url)), base_delay=5, max_delay=5)
    record = worker._record_retry

    def slow_record(*args):
        threading.Event().wait(3)  # a busy host: the deadline falls while this runs
        return record(*args)

    worker._record_retry = slow_record
    try:
        await worker.drain(1.5)
    finally:
        await worker.aclose()
    [row] = outbox_rows(archive)
    assert row["status"] == "pending" and row["last_error"] == "Slack webhook HTTP 503: unavailable", row


async def test_drain_leaves_rows_that_still_fail_pending(archive, slack):
    slack.respond(*[(503, {}, "unavailable")] * 100)
    _store_many(archive, 1)
    worker = DeliveryWorker(archive, build_destinations(_slack_cfg(slack.webhook_url)), base_delay=0.05, max_delay=0.1)
    try:
        assert await worker.drain(0.6) == 0
    finally:
        await worker.aclose()
    [row] = outbox_rows(archive)
    assert row["status"] == "pending" and row["attempts"] >= 3
    # the deadline can fall while a retry is on the wire: that send is handed back as interrupted
    # (it may or may not have reached Slack); otherwise the row keeps the last failure
    assert row["last_error"] in ("Slack webhook HTTP 503: unavailable", "interrupted while sending")
    assert len(slack.requests) >= row["attempts"] - 1  # every attempt but an interrupted last one arrived


async def test_run_wakes_up_when_told_and_stops(archive, slack):
    worker = DeliveryWorker(archive, build_destinations(_slack_cfg(slack.webhook_url)), poll_interval=60)
    stop, wake = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(worker.run(stop, wake))
    try:
        await asyncio.sleep(0.05)  # the worker is idle, sleeping up to poll_interval
        _store_many(archive, 1)
        wake.set()
        await asyncio.to_thread(slack.wait_for, 1, 5)  # long before the 60 s poll
        # a retry due soon is picked up without another wake-up
        slack.respond((500, {}, "oops"))
        msg = message("second claimed responsibility", mid="x")
        archive.store([(msg, [hit_for(msg)])])
        wake.set()
        await asyncio.to_thread(slack.wait_for, 3, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await worker.aclose()
    assert [r["status"] for r in outbox_rows(archive)] == ["sent", "sent"]


async def test_unknown_destination_fails_with_reason(archive):
    msg = message()
    archive.store([(msg, [hit_for(msg, destinations=("gone",))])])
    worker = DeliveryWorker(archive, {"console": ConsoleDestination(stream=io.StringIO())})
    assert await worker.deliver_due() == 0
    [row] = outbox_rows(archive)
    assert row["status"] == "failed" and row["last_error"] == "unknown destination 'gone' (not in the configuration)"


async def test_file_destination_writes_one_json_object_per_alert(archive, tmp_path):
    path = tmp_path / "out" / "alerts.jsonl"
    hostile = 'line1\n"quoted" <!channel> {{ 7*7 }} claimed responsibility'
    msg = message(hostile)
    archive.store([(msg, [hit_for(msg, destinations=("log",))])])
    with archive.lock, archive.transaction():
        archive.enqueue(1, "log", kind="edited", payload={"previous_text": hostile, "new_text": "changed"})
        archive.enqueue(1, "log", kind="deleted", payload={"previous_text": "changed", "new_text": None})
        archive.enqueue(None, "log", kind="notice", payload={"title": "rules reload failed", "text": "rules/x.yml:3: bad"},
                        dedup_key="notice:1")
    worker = DeliveryWorker(archive, build_destinations(_cfg(log={"type": "file", "path": str(path)})))
    assert await worker.deliver_due() == 4
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    recs = [json.loads(line) for line in lines]
    assert [r["kind"] for r in recs] == ["alert", "edited", "deleted", "notice"]
    assert [r["outbox_id"] for r in recs] == [1, 2, 3, 4]
    alert = recs[0]
    assert alert["message"]["text"] == hostile
    assert alert["rule_id"] == "claims" and alert["level"] == "HIGH"
    assert alert["matches"][0]["term"] == "claimed responsibility"
    assert alert["channel"]["label"] == "Amaq Example (@amaq_example)"
    assert alert["message"]["url"] == "https://t.me/amaq_example/1"
    assert recs[1]["change"] == {"previous_text": hostile, "new_text": "changed"}
    assert recs[1]["subject"].startswith("[claimwatch][HIGH] Edited: ")
    assert recs[2]["subject"].startswith("[claimwatch][HIGH] Deleted: ")
    assert recs[3]["subject"] == "[claimwatch][NOTICE] rules reload failed"


async def test_generic_webhook_posts_json_with_headers(archive, slack):
    msg = message()
    archive.store([(msg, [hit_for(msg, destinations=("hook",))])])
    url = f"http://127.0.0.1:{slack.port}/ingest/claimwatch"
    cfg = _cfg(hook={"type": "webhook", "url": url, "headers": {"Authorization": "Bearer hook-token", "X-Team": "desk"}})
    worker = DeliveryWorker(archive, build_destinations(cfg))
    try:
        assert await worker.deliver_due() == 1
    finally:
        await worker.aclose()
    [req] = slack.requests
    assert req["path"] == "/ingest/claimwatch"
    assert req["headers"]["Authorization"] == "Bearer hook-token" and req["headers"]["X-Team"] == "desk"
    body = req["json"]
    assert body["kind"] == "alert" and body["outbox_id"] == 1
    assert body["data"]["message"]["text"] == "The group claimed responsibility for the attack"
    assert body["subject"] == "[claimwatch][HIGH] Claim of responsibility · Amaq Example (@amaq_example)"


async def test_webhook_header_secrets_never_reach_errors(archive, slack):
    slack.respond((401, {}, "bad key hook-secret-token-123 for /ingest?key=query-secret-abc"))
    msg = message()
    archive.store([(msg, [hit_for(msg, destinations=("hook",))])])
    url = f"http://127.0.0.1:{slack.port}/ingest?key=query-secret-abc"
    cfg = _cfg(hook={"type": "webhook", "url": url, "headers": {"X-Api-Key": "hook-secret-token-123"}})
    worker = DeliveryWorker(archive, build_destinations(cfg))
    try:
        assert await worker.deliver_due() == 0
    finally:
        await worker.aclose()
    [row] = outbox_rows(archive)
    assert row["status"] == "failed"
    assert row["last_error"] == "webhook HTTP 401: bad key *** for ***"
    assert "hook-secret-token-123" not in row["last_error"]


async def test_from_config_uses_the_user_templates(archive, tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "alert.txt.j2").write_text("MY TEMPLATE: {{ title }}\n", encoding="utf-8")
    cfg = Config.model_validate({"alerts": {"templates": str(tmp_path / "tpl"), "max_retry_seconds": 60}})
    msg = message()
    archive.store([(msg, [hit_for(msg, destinations=("console",))])])
    out = io.StringIO()
    worker = DeliveryWorker.from_config(archive, {"console": ConsoleDestination(stream=out)}, cfg)
    assert worker.max_retry_seconds == 60
    assert await worker.deliver_due() == 1
    assert "MY TEMPLATE: Claim of responsibility" in out.getvalue()


async def test_console_shows_terminal_control_characters_visibly(archive):
    msg = message("\x1b]0;pwned\x07\x1b[2J claimed responsibility")
    archive.store([(msg, [hit_for(msg, destinations=("console",))])])
    out = io.StringIO()
    worker = DeliveryWorker(archive, {"console": ConsoleDestination(stream=out)})
    assert await worker.deliver_due() == 1
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;pwned\\x07\\x1b[2J claimed responsibility" in text
    assert "[claimwatch][HIGH] Claim of responsibility" in text


async def test_list_deliveries_shows_rule_channel_and_errors(archive, slack):
    slack.respond((400, {}, "invalid_blocks"))
    _store_many(archive, 2)
    worker = DeliveryWorker(archive, build_destinations(_slack_cfg(slack.webhook_url)))
    try:
        await worker.deliver_due()
    finally:
        await worker.aclose()
    rows = list_deliveries(archive)
    assert [r["id"] for r in rows] == [2, 1]
    failed = list_deliveries(archive, status="failed")
    assert len(failed) == 1 and failed[0]["last_error"] == "Slack webhook HTTP 400: invalid_blocks"
    assert failed[0]["rule_id"] == "claims" and failed[0]["channel"] == "amaq_example"
    assert list_deliveries(archive, limit=1)[0]["id"] == 2


async def test_drain_deadline_during_a_claim_hands_the_rows_back(archive, slack):
    """The deadline may cancel drain while rows are being claimed in a thread: the claim
    still completes, and its rows must go back to pending, not stay 'sending' for a lease."""
    import time as _time

    class SlowClaim(DeliveryWorker):
        awaiting: asyncio.Task | None = None  # the task whose claim runs in the thread

        async def _dispatch_due(self, *args, **kwargs):
            self.awaiting = asyncio.current_task()
            return await super()._dispatch_due(*args, **kwargs)

        def _prepare(self, *args, **kwargs):
            result = super()._prepare(*args, **kwargs)
            # The claim is committed; hold it until drain's deadline has cancelled the task
            # awaiting it (a condition, not a fixed time).
            end = _time.monotonic() + 10
            while not (self.awaiting is not None and self.awaiting.cancelling()) and _time.monotonic() < end:
                _time.sleep(0.005)
            return result

    _store_many(archive, 2)
    worker = SlowClaim(archive, build_destinations(_slack_cfg(slack.webhook_url)))
    try:
        assert await worker.drain(0.1) == 0
    finally:
        await worker.aclose()
    rows = outbox_rows(archive)
    assert [r["status"] for r in rows] == ["pending", "pending"]
    assert [r["attempts"] for r in rows] == [0, 0]
    assert slack.requests == []


async def test_rendering_does_not_hold_the_archive_lock(archive, tmp_path):
    """While the worker renders a claimed alert, the archiver can commit its next batch: the
    render reads through the worker's own connection, and only the claim and the outcome
    take the archive lock (before, the whole claim-and-render pass held it, and a store
    transaction due meanwhile waited for it)."""
    from monitor.alerts.render import Renderer

    stored_while_rendering: list[bool] = []
    stores: list[threading.Thread] = []

    class StoringRenderer(Renderer):
        def render(self, ctx):
            later = message("second claimed responsibility", mid="2")
            t = threading.Thread(target=archive.store, args=([(later, [hit_for(later, destinations=("log",))])],))
            t.start()
            stores.append(t)
            t.join(10)  # waits the whole 10 s if this thread holds the archive lock
            stored_while_rendering.append(not t.is_alive())
            return super().render(ctx)

    first = message(mid="1")
    archive.store([(first, [hit_for(first, destinations=("log",))])])
    path = tmp_path / "alerts.jsonl"
    worker = DeliveryWorker(archive, build_destinations(_cfg(log={"type": "file", "path": str(path)})),
                            renderer=StoringRenderer())
    try:
        assert await worker.deliver_due() == 2  # the first alert, then the one stored meanwhile
    finally:
        await worker.aclose()
        for t in stores:
            await asyncio.to_thread(t.join)
    assert stored_while_rendering == [True, True]
    assert [r["status"] for r in outbox_rows(archive)] == ["sent", "sent"]
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
