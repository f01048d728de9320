"""X API failures: 429 with reset header, 401, 403 per endpoint, 5xx/network backoff,
monthly usage cap, invalid search query."""

from __future__ import annotations

from datetime import timedelta

import pytest
import structlog

from monitor.sources.base import SourceStopped
from monitor.sources.x.client import XApi
from test_x_client import (  # noqa: F401
    FORBIDDEN_453,
    FORBIDDEN_NOT_ENROLLED,
    INVALID_QUERY,
    NOW,
    TOKEN,
    TOO_MANY,
    UNAUTHORIZED,
    UNAVAILABLE,
    USAGE_CAPPED,
    FakeX,
    fake_x,
    page,
    post,
    users_lookup,
)
from test_x_source import IRIMFA, QUERY, FakeTime, Sink, make_source, run_once, sink  # noqa: F401

TL = f"/2/users/{IRIMFA}/tweets"
SEARCH = "/2/tweets/search/recent"


def one_post(hours: float = 1, text: str = "Statement") -> dict:
    return post("IRIMFA_SPOX", text, NOW - timedelta(hours=hours))


async def test_429_waits_until_reset_then_retries(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    reset = int(NOW.timestamp()) + 300
    p = one_post()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, TOO_MANY, status=429, headers={"x-rate-limit-limit": "5", "x-rate-limit-remaining": "0",
                                                   "x-rate-limit-reset": str(reset)})
    fake_x.add(TL, page([p], users=["IRIMFA_SPOX"]), headers={"x-rate-limit-remaining": "4",
                                                             "x-rate-limit-reset": str(reset + 900)})
    src = make_source(fake_x, t)
    await run_once(src, sink)
    assert t.sleeps == [301.0]  # until x-rate-limit-reset, +1 s
    assert len(fake_x.seen(TL)) == 2
    assert fake_x.seen(TL)[0].query == fake_x.seen(TL)[1].query  # the same request again
    assert [m.message_id for m in sink.messages] == [p["id"]]
    rate = src.health()["rate_limits"]["timeline"]
    assert rate["remaining"] == 4 and rate["reset"] == reset + 900 and rate["reset_at"].endswith("Z")


async def test_no_requests_left_waits_before_asking(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    reset = int(NOW.timestamp()) + 420
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, page([one_post()], users=["IRIMFA_SPOX"]),
               headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    src = make_source(fake_x, t)
    try:
        await src.run(sink.ctx(), once=True)
        assert t.sleeps == []
        t.t += 120
        await src.poll_all()
    finally:
        await src.close()
    assert t.sleeps == [301.0]  # reset - (now + 120) + 1
    assert len(fake_x.seen(TL)) == 2


async def test_repeated_429_gives_up_this_poll_only(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    reset = str(int(NOW.timestamp()) + 300)
    fake_x.add(TL, TOO_MANY, status=429, headers={"x-rate-limit-reset": reset})
    fake_x.add(TL, TOO_MANY, status=429, headers={"x-rate-limit-reset": reset})  # reset passed: fallback
    fake_x.add(TL, TOO_MANY, status=429, headers={"x-rate-limit-reset": ""})  # no header: fallback
    fake_x.add(TL, TOO_MANY, status=429)
    src = make_source(fake_x, t)
    await run_once(src, sink)
    assert t.sleeps == [301.0, 120.0, 180.0]
    assert len(fake_x.seen(TL)) == 4
    assert "still rate limited" in src.health()["last_error"]
    assert src.health()["stopped"] == {}


async def test_401_stops_the_source_without_leaking_the_token(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, UNAUTHORIZED, status=401)
    src = make_source(fake_x, t)
    with structlog.testing.capture_logs() as logs, pytest.raises(SourceStopped) as stopped:
        await run_once(src, sink)
    assert str(stopped.value).startswith("X: invalid bearer token")
    assert TOKEN not in str(stopped.value)
    assert all(TOKEN not in repr(entry) for entry in logs)
    status = sink.archive.conn.execute("select last_error from source_status where source='x'").fetchone()
    assert status[0].startswith("X: invalid bearer token")


async def test_401_on_lookup_stops_at_start(fake_x: FakeX, sink: Sink) -> None:
    fake_x.add("/2/users/by", UNAUTHORIZED, status=401)
    with pytest.raises(SourceStopped, match="invalid bearer token"):
        await run_once(make_source(fake_x, FakeTime()), sink)
    assert fake_x.seen(TL) == []


async def test_403_on_search_stops_search_only(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(SEARCH, FORBIDDEN_453, status=403)
    p1, p2 = one_post(2, "first"), one_post(1, "second")
    fake_x.add(TL, page([p1], users=["IRIMFA_SPOX"]))
    fake_x.add(TL, page([p2], users=["IRIMFA_SPOX"]))
    src = make_source(fake_x, t, searches=[QUERY, "كرمان"])
    try:
        await src.run(sink.ctx(), once=True)
        await src.poll_all()
    finally:
        await src.close()
    msg = src.health()["stopped"]["search"]
    assert "GET /2/tweets/search/recent" in msg and "Basic or higher" in msg
    assert "453" in msg and "different access level" in msg
    assert "Searches stopped; account timelines continue" in msg
    assert len(fake_x.seen(SEARCH)) == 1  # not asked again, and the second query never
    assert [m.message_id for m in sink.messages] == [p1["id"], p2["id"]]
    row = sink.archive.conn.execute("select last_error from source_status where source='x'").fetchone()
    assert "GET /2/tweets/search/recent" in row[0]


async def test_403_on_both_parts_stops_the_source(fake_x: FakeX, sink: Sink) -> None:
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, FORBIDDEN_NOT_ENROLLED, status=403)
    fake_x.add(SEARCH, FORBIDDEN_453, status=403)
    with pytest.raises(SourceStopped) as stopped:
        await run_once(make_source(fake_x, FakeTime(), searches=[QUERY]), sink)
    text = str(stopped.value)
    assert "GET /2/users/:id/tweets" in text and "Client Forbidden" in text
    assert "Appropriate Level of API Access" in text
    assert "GET /2/tweets/search/recent" in text


async def test_5xx_and_network_errors_back_off_exponentially(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    p = one_post()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, UNAVAILABLE, status=503)
    fake_x.add(TL, {"meta": {}}, delay=2.0)  # longer than the client timeout
    fake_x.add(TL, "<html>502 Bad Gateway</html>", status=502)
    fake_x.add(TL, page([p], users=["IRIMFA_SPOX"]))
    src = make_source(fake_x, t, api=XApi(TOKEN, base_url=fake_x.base_url, timeout=0.3))
    await run_once(src, sink)
    assert t.sleeps == [2.0, 4.0, 8.0]
    assert [m.message_id for m in sink.messages] == [p["id"]]


async def test_5xx_retries_are_capped_and_the_next_poll_tries_again(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    p = one_post()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    for _ in range(5):
        fake_x.add(TL, UNAVAILABLE, status=503)
    fake_x.add(TL, page([p], users=["IRIMFA_SPOX"]))
    src = make_source(fake_x, t)
    try:
        await src.run(sink.ctx(), once=True)
        assert t.sleeps == [2.0, 4.0, 8.0, 16.0]
        assert "failed 5 times" in src.health()["last_error"] and sink.messages == []
        await src.poll_all()
    finally:
        await src.close()
    assert [m.message_id for m in sink.messages] == [p["id"]]
    assert "start_time" in fake_x.seen(TL)[-1].query  # still the backfill: nothing was lost


async def test_monthly_usage_cap_pauses_until_next_month(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, USAGE_CAPPED, status=429)
    src = make_source(fake_x, t)
    try:
        await src.run(sink.ctx(), once=True)
        h = src.health()
        assert h["paused_until"] == "2024-07-01T00:00:00Z"
        assert "monthly usage cap" in h["last_error"]
        assert t.sleeps == []  # not retried
        await src.poll_all()
        assert len(fake_x.seen(TL)) == 1
        t.t = NOW.replace(month=7, day=1, hour=0, minute=5).timestamp()
        fake_x.add(TL, page([one_post()], users=["IRIMFA_SPOX"]))
        await src.poll_all()
    finally:
        await src.close()
    assert len(fake_x.seen(TL)) == 2 and len(sink.messages) == 1


async def test_invalid_query_disables_that_search_only(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(SEARCH, INVALID_QUERY, status=400)
    good = post("aamaq_watch", "claimed responsibility", NOW - timedelta(hours=1))
    fake_x.add(SEARCH, page([good], users=["aamaq_watch"]))
    src = make_source(fake_x, t, searches=["((", QUERY])
    try:
        await src.run(sink.ctx(), once=True)
        await src.poll_all()
    finally:
        await src.close()
    queries = [r.query["query"] for r in fake_x.seen(SEARCH)]
    assert queries == ["((", QUERY, QUERY]
    last_error = sink.archive.conn.execute("select last_error from source_status where source='x'").fetchone()[0]
    assert "Unbalanced parentheses" in last_error and "search '((' disabled" in last_error
    assert [m.message_id for m in sink.messages] == [good["id"]]


async def test_stop_cuts_a_rate_limit_wait_short(fake_x: FakeX, sink: Sink) -> None:
    import asyncio
    import time

    from monitor.config import XConfig
    from monitor.sources.x import build_source

    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, TOO_MANY, status=429, headers={"x-rate-limit-reset": str(int(time.time()) + 600)})
    src = build_source(XConfig(bearer_token=TOKEN, accounts=["@IRIMFA_SPOX"], base_url=fake_x.base_url))
    ctx = sink.ctx()
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(src.run(ctx, once=True))

        def waiting() -> bool:  # the source said it waits for the rate-limit reset
            return any(e["event"] == "x: waiting" and e.get("reason") == "429 Too Many Requests" for e in logs)

        for _ in range(500):
            if waiting() or task.done():
                break
            await asyncio.sleep(0.01)
    try:
        assert waiting() and not task.done()  # waiting for the reset, 10 minutes away
        ctx.stop.set()
        await asyncio.wait_for(task, 5)  # returns at once, without an error
    finally:
        await src.close()
    assert len(fake_x.seen(TL)) == 1 and sink.messages == []


async def test_suspended_account_reported_once(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    suspended = {"errors": [{"value": IRIMFA, "detail": f"User has been suspended: [{IRIMFA}].", "title": "Forbidden",
                             "resource_type": "user", "parameter": "id", "resource_id": IRIMFA,
                             "type": "https://api.twitter.com/2/problems/resource-not-found"}]}
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(TL, suspended)
    fake_x.add(TL, suspended)
    src = make_source(fake_x, t)
    try:
        await src.run(sink.ctx(), once=True)
        await src.poll_all()
    finally:
        await src.close()
    assert len(fake_x.seen(TL)) == 2 and sink.messages == []
    assert src.health()["errors"] == 1
    assert src.health()["last_error"] == f"X: @IRIMFA_SPOX: User has been suspended: [{IRIMFA}]."


async def test_nothing_to_poll_stops_with_the_reasons(fake_x: FakeX, sink: Sink) -> None:
    fake_x.add("/2/users/by", users_lookup(missing=("gone_ministry",)))
    with pytest.raises(SourceStopped, match=r"@gone_ministry not found: Could not find user"):
        await run_once(make_source(fake_x, FakeTime(), accounts=["@gone_ministry"]), sink)
