"""X polls that miss nothing, against the query-aware loopback X API: a quiet search whose
since_id left the 7-day window, polls cut short by the page limit or the read budget (the
gap is kept and filled), progress only from what the archive committed, and 429 handling
with the exception shape of the lowest tweepy pyproject.toml allows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from tweepy.errors import HTTPException, TooManyRequests

from monitor.sources.base import Envelope
from test_x_client import NOW, TOO_MANY, FakeX, fake_x, post, users_lookup  # noqa: F401
from test_x_source import IRIMFA, QUERY, FakeTime, Sink, make_source, sink  # noqa: F401

TL = f"/2/users/{IRIMFA}/tweets"
SEARCH = "/2/tweets/search/recent"


def at(t: FakeTime, fake: FakeX, when: datetime) -> None:
    """Move the collector's clock and X's clock together."""
    t.t = when.timestamp()
    fake.now = when


def stored_ids(sink: Sink) -> list[str]:
    return [r[0] for r in sink.archive.conn.execute("select message_id from messages order by message_id")]


# -- 1. a quiet search is not disabled -------------------------------------------------------
async def test_quiet_search_past_seven_days_asks_from_the_window_not_the_stale_since_id(
    fake_x: FakeX, sink: Sink
) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    old = post("aamaq_watch", "claimed responsibility, long ago", NOW - timedelta(hours=1))
    fake_x.publish("search:" + QUERY, old)
    src = make_source(fake_x, t, accounts=[], searches=[QUERY])
    try:
        await src.run(sink.ctx(), once=True)
        assert sink.archive.get_checkpoint("x", "search:" + QUERY) == old["id"]
        # eight quiet days (or eight days of downtime), then a match
        at(t, fake_x, NOW + timedelta(days=8))
        new = post("aamaq_watch", "claimed responsibility again", NOW + timedelta(days=8, hours=-1))
        fake_x.publish("search:" + QUERY, new)
        await src.poll_all()
        await src.poll_all()  # and it goes on polling
    finally:
        await src.close()
    first, second, third = fake_x.seen(SEARCH)
    assert "since_id" not in second.query  # X would answer 400 to it
    window = NOW + timedelta(days=1, minutes=2)
    assert second.query["start_time"] == window.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert third.query["since_id"] == new["id"]
    assert [m.message_id for m in sink.messages] == [old["id"], new["id"]]
    h = src.health()
    assert "beyond the 7 days recent search covers" in h["last_error"]
    assert all(not t.disabled for t in src._targets.values())


async def test_a_400_for_a_stale_since_id_is_not_permanent(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    old = post("aamaq_watch", "claimed responsibility", NOW - timedelta(hours=1))
    fake_x.publish("search:" + QUERY, old)
    src = make_source(fake_x, t, accounts=[], searches=[QUERY])
    try:
        await src.run(sink.ctx(), once=True)
        # our clock says 6.9 days, X's clock says 7.1: X rejects the since_id
        at(t, fake_x, NOW + timedelta(days=6, hours=21))
        fake_x.now = NOW + timedelta(days=7, hours=2)
        new = post("aamaq_watch", "claimed responsibility, new", NOW + timedelta(days=6, hours=20))
        fake_x.publish("search:" + QUERY, new)
        await src.poll_all()
    finally:
        await src.close()
    _, rejected, retried = fake_x.seen(SEARCH)
    assert rejected.query["since_id"] == old["id"] and "since_id" not in retried.query
    assert [m.message_id for m in sink.messages] == [old["id"], new["id"]]
    assert not src._targets["search:" + QUERY].disabled
    assert "since_id" in src.health()["last_error"]


# -- 2. a poll cut short keeps the gap and fills it --------------------------------------------
async def test_page_limit_keeps_the_gap_and_the_next_poll_fills_it_after_a_restart(
    fake_x: FakeX, sink: Sink
) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    p0 = post("IRIMFA_SPOX", "before", NOW - timedelta(hours=1))
    fake_x.publish(TL, p0)
    src = make_source(fake_x, t)
    await src.run(sink.ctx(), once=True)
    await src.close()
    burst = [post("IRIMFA_SPOX", f"burst {i}", NOW + timedelta(seconds=i + 1)) for i in range(250)]
    fake_x.publish(TL, *burst)
    at(t, fake_x, NOW + timedelta(minutes=10))

    src = make_source(fake_x, t)
    src.poll_max_pages = 2  # (POLL_MAX_PAGES is 10: 1000 posts would do the same)
    await src.run(sink.ctx(), once=True)
    await src.close()
    assert len(stored_ids(sink)) == 1 + 200
    from monitor.sources.x.source import Progress

    progress = Progress.decode(sink.archive.get_checkpoint("x", IRIMFA))
    assert progress.since_id == int(burst[-1]["id"])
    (gap,) = progress.gaps
    assert gap.after == int(p0["id"]) and gap.before == int(burst[50]["id"])

    src = make_source(fake_x, t)  # a restart: the gap comes from the checkpoint
    src.poll_max_pages = 2
    await src.run(sink.ctx(), once=True)
    await src.close()
    head, fill = fake_x.seen(TL)[-2:]
    assert head.query["since_id"] == burst[-1]["id"]
    assert fill.query["since_id"] == p0["id"] and fill.query["until_id"] == burst[50]["id"]
    assert stored_ids(sink) == sorted([p0["id"]] + [p["id"] for p in burst])
    assert sink.archive.get_checkpoint("x", IRIMFA) == burst[-1]["id"]  # no gap left


async def test_budget_is_checked_before_each_page_and_never_overrun(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    p0 = post("IRIMFA_SPOX", "before", NOW - timedelta(hours=1))
    fake_x.publish(TL, p0)
    src = make_source(fake_x, t, monthly_read_cap=130)
    try:
        await src.run(sink.ctx(), once=True)
        burst = [post("IRIMFA_SPOX", f"burst {i}", NOW + timedelta(seconds=i + 1)) for i in range(140)]
        fake_x.publish(TL, *burst)
        at(t, fake_x, NOW + timedelta(minutes=10))
        await src.poll_all()
        sizes = [r.query["max_results"] for r in fake_x.seen(TL)]
        assert sizes == ["100", "100", "29"]  # backfill, then 100 + the 29 left
        assert src.health()["reads_used"] == 130 and src.health()["reads_remaining"] == 0
        assert len(stored_ids(sink)) == 130
        await src.poll_all()
        assert len(fake_x.seen(TL)) == 3  # nothing more this month
        at(t, fake_x, NOW.replace(month=7, day=1, hour=1))  # a new month, a new budget
        await src.poll_all()
    finally:
        await src.close()
    assert stored_ids(sink) == sorted([p0["id"]] + [p["id"] for p in burst])  # the gap was read
    assert json.loads(sink.archive.get_checkpoint("x", "budget:2024-06"))["reads"] == 130
    assert sink.archive.get_checkpoint("x", IRIMFA) == burst[-1]["id"]


async def test_search_gap_older_than_the_window_is_reported_not_kept(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    q0 = post("aamaq_watch", "claimed responsibility 0", NOW - timedelta(hours=1))
    fake_x.publish("search:" + QUERY, q0)
    src = make_source(fake_x, t, accounts=[], searches=[QUERY])
    try:
        await src.run(sink.ctx(), once=True)
        burst = [post("aamaq_watch", f"claimed responsibility {i}", NOW + timedelta(seconds=i + 1))
                 for i in range(150)]
        fake_x.publish("search:" + QUERY, *burst)
        at(t, fake_x, NOW + timedelta(minutes=10))
        src.poll_max_pages = 1
        await src.poll_all()
        assert len(src._targets["search:" + QUERY].gaps) == 1
        at(t, fake_x, NOW + timedelta(days=8))
        await src.poll_all()
    finally:
        await src.close()
    assert src._targets["search:" + QUERY].gaps == ()
    assert "were not read and are now older than the 7 days" in src.health()["last_error"]


# -- 6. progress only from what the archive committed -----------------------------------------
class RollbackSink(Sink):
    """A pipeline whose batch rolled back while ``failing``: nothing stored, no on_commit."""

    failing = False

    async def emit(self, env: Envelope) -> None:
        if self.failing:
            self.envelopes.append(env)
            return
        await super().emit(env)


async def test_since_id_advances_only_from_on_commit(fake_x: FakeX, db_path) -> None:
    from monitor.archive import Archive

    archive = Archive.open(db_path)
    sink = RollbackSink(archive)
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    p1 = post("IRIMFA_SPOX", "one", NOW - timedelta(hours=1))
    fake_x.publish(TL, p1)
    src = make_source(fake_x, t)
    try:
        await src.run(sink.ctx(), once=True)
        p2 = post("IRIMFA_SPOX", "two, lost by a rolled-back batch", NOW + timedelta(minutes=1))
        fake_x.publish(TL, p2)
        at(t, fake_x, NOW + timedelta(minutes=2))
        sink.failing = True
        await src.poll_all()
        sink.failing = False
        at(t, fake_x, NOW + timedelta(minutes=4))
        await src.poll_all()
    finally:
        await src.close()
        archive.close()
    assert fake_x.seen(TL)[2].query["since_id"] == p1["id"]  # not p2: it never committed
    assert [m.message_id for m in sink.messages] == [p1["id"], p2["id"], p2["id"]]


# -- 3. 429 with the exception shape of tweepy 4.14 (no reset_time) --------------------------
async def test_429_with_tweepy_414_exception_shape_waits_for_the_reset_header(
    fake_x: FakeX, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def old_init(self, response, *, response_json=None, **_ignored):  # tweepy 4.14-4.16
        HTTPException.__init__(self, response, response_json=response_json)

    monkeypatch.setattr(TooManyRequests, "__init__", old_init)
    t = FakeTime()
    reset = int(NOW.timestamp()) + 300
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, TOO_MANY, status=429, headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    p = post("IRIMFA_SPOX", "after the wait", NOW - timedelta(hours=1))
    fake_x.publish(TL, p)
    src = make_source(fake_x, t)
    try:
        await src.run(sink.ctx(), once=True)
    finally:
        await src.close()
    assert t.sleeps == [301.0]
    assert [m.message_id for m in sink.messages] == [p["id"]]
