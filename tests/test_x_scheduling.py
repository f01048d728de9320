"""The X source in the daemon: APScheduler job, read budget (projection, persistence,
rescheduling, exhaustion), backfill windows, configuration errors, a daemon run."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta, timezone
from pathlib import Path

import pytest
import structlog
import yaml
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.config import XConfig
from monitor.sources.base import SourceStopped
from monitor.sources.x import build_source, budget
from test_x_client import NOW, TOKEN, UNAUTHORIZED, FakeX, fake_x, page, post, users_lookup  # noqa: F401
from test_x_source import IRIMFA, QUERY, FakeTime, Sink, make_source, run_once, sink  # noqa: F401

TL = f"/2/users/{IRIMFA}/tweets"


async def wait_until(pred, timeout: float = 5.0) -> None:
    async def loop() -> None:
        while not pred():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(loop(), timeout)


# -- read budget -----------------------------------------------------------------------------
async def test_budget_projection_logged_and_interval_stretched(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX", "StateDeptSpox"))
    posts = [post("IRIMFA_SPOX", f"post {i}", NOW - timedelta(hours=i + 1)) for i in range(3)]
    fake_x.add(TL, page(posts, users=["IRIMFA_SPOX"]))
    src = make_source(fake_x, t, accounts=["@IRIMFA_SPOX", "@StateDeptSpox"], searches=[QUERY, "كرمان"],
                      monthly_read_cap=10_000, interval="2m")
    with structlog.testing.capture_logs() as logs:
        await run_once(src, sink)
    events = [e["event"] for e in logs]
    (line,) = [e for e in events if e.startswith("x: X read budget")]
    assert "0/10000 posts used" in line and "4 targets" in line and "over the cap" in line

    h = src.health()
    assert h["reads_used"] == 3 and h["reads_remaining"] == 9_997 and h["monthly_read_cap"] == 10_000
    # backfill reads count as used but not in the per-poll estimate: 4 targets x 1 post x time left
    left = budget.seconds_left_in_month(NOW)
    assert h["effective_interval"] == pytest.approx(4 * 1.0 * left / 9_997)
    assert h["interval"] == 120.0 and h["reads_projected"] <= 10_000 + 1
    saved = json.loads(sink.archive.get_checkpoint("x", "budget:2024-06"))
    assert saved == {"reads": 3, "polls": 0, "poll_reads": 0}

    # a restart continues this month's count
    src2 = make_source(fake_x, t, accounts=["@IRIMFA_SPOX", "@StateDeptSpox"], searches=[QUERY, "كرمان"],
                       monthly_read_cap=10_000)
    await run_once(src2, sink)
    saved = json.loads(sink.archive.get_checkpoint("x", "budget:2024-06"))
    # IRIMFA had a checkpoint (a steady poll); the quiet targets had their first poll (backfill)
    assert src2.health()["reads_used"] == 3 and saved == {"reads": 3, "polls": 1, "poll_reads": 0}


# A budget used up mid-poll: tests/test_x_gaps.py::test_budget_is_checked_before_each_page_and_never_overrun
# (the page asks for no more than is left, the unread posts are kept as a gap and read next month).


# -- scheduler ----------------------------------------------------------------------------------
async def test_scheduler_job_uses_effective_interval_and_stop_ends_run(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    scheduler = AsyncIOScheduler(timezone=timezone.utc)
    scheduler.start()
    src = make_source(fake_x, t, interval="90s")
    ctx = sink.ctx(scheduler)
    task = asyncio.create_task(src.run(ctx))
    try:
        await wait_until(lambda: scheduler.get_job("x-poll") is not None)
        job = scheduler.get_job("x-poll")
        assert job.trigger.interval.total_seconds() == 90.0
        assert job.max_instances == 1 and job.coalesce is True
        p = post("IRIMFA_SPOX", "scheduled", NOW - timedelta(minutes=1))
        fake_x.add(TL, page([p], users=["IRIMFA_SPOX"]))
        await job.func()  # what the scheduler runs
        assert sink.messages[-1].message_id == p["id"]
        ctx.stop.set()
        await asyncio.wait_for(task, 5)
        assert scheduler.get_job("x-poll") is None
    finally:
        scheduler.shutdown(wait=False)
        await src.close()


async def test_401_in_scheduled_poll_stops_run(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    scheduler = AsyncIOScheduler(timezone=timezone.utc)
    scheduler.start()
    src = make_source(fake_x, t)
    task = asyncio.create_task(src.run(sink.ctx(scheduler)))
    try:
        await wait_until(lambda: scheduler.get_job("x-poll") is not None)
        fake_x.add(TL, UNAUTHORIZED, status=401)
        await scheduler.get_job("x-poll").func()
        with pytest.raises(SourceStopped, match="invalid bearer token"):
            await asyncio.wait_for(task, 5)
        assert scheduler.get_job("x-poll") is None
    finally:
        scheduler.shutdown(wait=False)
        await src.close()


async def test_budget_reschedules_the_job_when_posts_per_poll_grow(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    scheduler = AsyncIOScheduler(timezone=timezone.utc)
    scheduler.start()
    src = make_source(fake_x, t, monthly_read_cap=100_000, interval="2m")
    task = asyncio.create_task(src.run(sink.ctx(scheduler)))
    try:
        await wait_until(lambda: scheduler.get_job("x-poll") is not None)
        job = scheduler.get_job("x-poll")
        before = job.trigger.interval.total_seconds()
        assert before == 120.0  # 1 target x 1 post/poll fits easily
        busy = [post("IRIMFA_SPOX", f"burst {i}", NOW + timedelta(seconds=i + 1)) for i in range(100)]
        fake_x.add(TL, page(busy, users=["IRIMFA_SPOX"]))
        await job.func()
        after = scheduler.get_job("x-poll").trigger.interval.total_seconds()
        per_poll = budget.reads_per_poll(1, 100)  # the first (backfill) poll does not count
        assert src.usage.polls == 1 and src.usage.poll_reads == 100
        assert per_poll == pytest.approx((100 + 20) / 21)
        assert after == pytest.approx(src.effective_interval) and after > before
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        scheduler.shutdown(wait=False)
        await src.close()


# -- backfill windows ---------------------------------------------------------------------------------
async def test_search_backfill_is_limited_to_seven_days(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    src = make_source(fake_x, t, searches=[QUERY], backfill="30d")
    with structlog.testing.capture_logs() as logs:
        await run_once(src, sink)
    assert any("recent search only reaches back 7 days" in e["event"] for e in logs)
    (tl,) = fake_x.seen(TL)
    assert tl.query["start_time"] == (NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (search,) = fake_x.seen("/2/tweets/search/recent")
    assert search.query["start_time"] == (NOW - timedelta(days=7) + timedelta(minutes=2)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


# -- configuration --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"accounts": ["@a"]}, "sources.x.bearer_token: not set"),
        ({"bearer_token": "t"}, "no accounts or searches"),
        ({"bearer_token": "t", "accounts": ["@ok", "not a handle!"]}, "sources.x.accounts[1]"),
        ({"bearer_token": "t", "searches": ["  "]}, "sources.x.searches[0]: empty query"),
        ({"bearer_token": "t", "accounts": ["@a"], "backfill": "soon"}, "sources.x.backfill"),
        ({"bearer_token": "t", "accounts": ["@a"], "monthly_read_cap": 0}, "monthly_read_cap"),
    ],
)
def test_configuration_errors_name_the_field(cfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_source(XConfig(**cfg))


def test_health_before_start_and_token_never_shown() -> None:
    src = build_source(XConfig(bearer_token=TOKEN, accounts=["@IRIMFA_SPOX", "1292392207", "@irimfa_spox"]))
    assert [a.ref for a in src.accounts] == ["@IRIMFA_SPOX", "1292392207"]
    h = src.health()
    assert h["reads_used"] == 0 and h["errors"] == 0 and h["stopped"] == {}
    assert TOKEN not in json.dumps(h) and TOKEN not in repr(src)


# -- in the daemon --------------------------------------------------------------------------------------
async def test_daemon_run_once_with_x_source(fake_x: FakeX, tmp_path: Path) -> None:
    from daemon_helpers import db_rows, write_config
    from monitor.config import load_config
    from monitor.daemon import Daemon

    path = write_config(tmp_path, None, None)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["sources"] = {"x": {"bearer_token": "${X_TEST_BEARER}", "accounts": ["@IRIMFA_SPOX"],
                             "searches": [QUERY], "base_url": fake_x.base_url}}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    claim = post("aamaq_watch", "The group claimed responsibility for the attack", NOW - timedelta(hours=1))
    fake_x.add("/2/tweets/search/recent", page([claim], users=["aamaq_watch"]))
    mp = pytest.MonkeyPatch()
    mp.setenv("X_TEST_BEARER", TOKEN)
    try:
        daemon = Daemon(load_config(path))
        assert await asyncio.wait_for(daemon.run(once=True), 30) == 0
    finally:
        mp.undo()
    db = tmp_path / "archive.db"
    assert db_rows(db, "select message_id, channel from messages") == [(claim["id"], "aamaq_watch")]
    assert db_rows(db, "select value from checkpoints where source='x' and channel=?", ("search:" + QUERY,)) == [
        (claim["id"],)]
    assert len(db_rows(db, "select id from hits")) == 1
    assert fake_x.seen("/2/users/by")[0].authorization == f"Bearer {TOKEN}"


# -- status and metrics ------------------------------------------------------------------------------
async def test_reads_shown_in_status_and_metrics(fake_x: FakeX, sink: Sink, db_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.config import Config, SourcesConfig
    from monitor.daemon import Daemon
    from monitor.daemon.health import DaemonCollector

    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, page([post("IRIMFA_SPOX", f"p{i}", NOW - timedelta(hours=i + 1)) for i in range(4)],
                        users=["IRIMFA_SPOX"]))
    src = make_source(fake_x, t, monthly_read_cap=1500)
    await run_once(src, sink)
    # what the daemon's heartbeat writes
    sink.archive.record_source_status("x", polled=True, info=src.health())

    result = CliRunner().invoke(app, ["status", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "x: 4 posts read this month of 1500, 1496 left; polling every" in " ".join(result.output.split())

    daemon = Daemon(Config(sources=SourcesConfig()))
    daemon.sources = {"x": src}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    text = generate_latest(registry).decode()
    assert 'claimwatch_source_reads{kind="used",source="x"} 4.0' in text
    assert 'claimwatch_source_reads{kind="remaining",source="x"} 1496.0' in text
    assert f'claimwatch_source_poll_interval_seconds{{source="x"}} {float(src.effective_interval)}' in text
