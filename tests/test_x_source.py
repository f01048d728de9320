"""The X source against the loopback X API: resolution and cache, backfill, pagination,
since_id resume across restarts, long posts, retweets, quotes, edits."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from monitor.archive import Archive
from monitor.config import XConfig
from monitor.sources.base import Envelope, SourceContext
from monitor.sources.x import XSource, build_source
from test_x_client import NOW, TOKEN, USERS_DATA, FakeX, fake_x, page, post, snowflake, users_lookup  # noqa: F401

IRIMFA = USERS_DATA["IRIMFA_SPOX"]["id"]
STATE = USERS_DATA["StateDeptSpox"]["id"]
KHAMENEI = USERS_DATA["khamenei_ir"]["id"]
QUERY = '"claimed responsibility" lang:en -is:retweet'


class FakeTime:
    """Injected clock and sleep: sleeping advances the clock at once."""

    def __init__(self, now: datetime = NOW) -> None:
        self.t = now.timestamp()
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.t += seconds


class Sink:
    """Stands in for the pipeline: stores each envelope with its checkpoint in one transaction."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.envelopes: list[Envelope] = []

    async def emit(self, env: Envelope) -> None:
        self.envelopes.append(env)
        cps = {(env.source, env.checkpoint[0]): env.checkpoint[1]} if env.checkpoint else None
        self.archive.store([(env.event, [])], checkpoints=cps)
        if env.on_commit is not None:  # as the pipeline does once the transaction committed
            env.on_commit()

    def ctx(self, scheduler: Any = None) -> SourceContext:
        return SourceContext(self.archive, self.emit, scheduler)

    @property
    def messages(self):
        return [e.event for e in self.envelopes]


def make_source(fake: FakeX, time: FakeTime, *, api: Any = None, **cfg: Any) -> XSource:
    base = {"bearer_token": TOKEN, "accounts": ["@IRIMFA_SPOX"], "searches": [], "base_url": fake.base_url}
    base.update(cfg)
    return build_source(XConfig(**base), clock=time.clock, sleep=time.sleep, api=api)


@pytest.fixture
def sink(db_path: Path):
    a = Archive.open(db_path)
    yield Sink(a)
    a.close()


async def run_once(src: XSource, sink: Sink) -> None:
    try:
        await src.run(sink.ctx(), once=True)
    finally:
        await src.close()


# -- first start, pagination, checkpoints, restart --------------------------------------
async def test_first_start_backfills_paginates_and_emits_oldest_first(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    p1 = post("IRIMFA_SPOX", "Statement one", NOW - timedelta(hours=20))
    p2 = post("IRIMFA_SPOX", "Statement two", NOW - timedelta(hours=10))
    p3 = post("IRIMFA_SPOX", "Statement three https://t.co/x1Yz", NOW - timedelta(hours=1))
    s1 = post("StateDeptSpox", "Readout of the call", NOW - timedelta(hours=5))
    q1 = post("aamaq_watch", "Group claimed responsibility for the blast", NOW - timedelta(hours=3))
    q2 = post("aamaq_watch", "Second group claimed responsibility", NOW - timedelta(hours=2))
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX", "StateDeptSpox"))
    fake_x.add(f"/2/users/{IRIMFA}/tweets", page([p3, p2], users=["IRIMFA_SPOX"], next_token="7140dibdnow9c7btw481"))
    fake_x.add(f"/2/users/{IRIMFA}/tweets", page([p1], users=["IRIMFA_SPOX"]))
    fake_x.add(f"/2/users/{STATE}/tweets", page([s1], users=["StateDeptSpox"]))
    fake_x.add("/2/tweets/search/recent", page([q2, q1], users=["aamaq_watch"]))

    src = make_source(fake_x, t, accounts=["@IRIMFA_SPOX", "StateDeptSpox"], searches=[QUERY])
    await run_once(src, sink)

    (lookup,) = fake_x.seen("/2/users/by")
    assert lookup.query["usernames"] == "IRIMFA_SPOX,StateDeptSpox"
    first, second = fake_x.seen(f"/2/users/{IRIMFA}/tweets")
    backfill_start = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first.query["start_time"] == backfill_start and "since_id" not in first.query
    assert "pagination_token" not in first.query
    assert second.query["pagination_token"] == "7140dibdnow9c7btw481"
    assert second.query["start_time"] == backfill_start
    (search,) = fake_x.seen("/2/tweets/search/recent")
    assert search.query["query"] == QUERY and search.query["start_time"] == backfill_start

    by_channel: dict[str, list[Envelope]] = {}
    for env in sink.envelopes:
        by_channel.setdefault(env.event.channel_id, []).append(env)
    irimfa = by_channel[IRIMFA]
    assert [e.event.message_id for e in irimfa] == [p1["id"], p2["id"], p3["id"]]  # oldest first, across pages
    assert [e.checkpoint for e in irimfa] == [(IRIMFA, p1["id"]), (IRIMFA, p2["id"]), (IRIMFA, p3["id"])]
    last = irimfa[-1].event
    assert last.url == f"https://x.com/IRIMFA_SPOX/status/{p3['id']}"
    assert last.channel == "IRIMFA_SPOX" and last.channel_title == "Spokesman of MFA"
    assert last.date == NOW - timedelta(hours=1) and last.lang == "en"
    # search results belong to their authors; the checkpoint is the search's
    found = by_channel[USERS_DATA["aamaq_watch"]["id"]]
    assert [e.event.message_id for e in found] == [q1["id"], q2["id"]]
    assert found[-1].checkpoint == ("search:" + QUERY, q2["id"])

    archive = sink.archive
    assert archive.get_checkpoint("x", IRIMFA) == p3["id"]
    assert archive.get_checkpoint("x", STATE) == s1["id"]
    assert archive.get_checkpoint("x", "search:" + QUERY) == q2["id"]
    cached = archive.find_channel("x", "@IRIMFA_SPOX")
    assert cached is not None and cached["channel_id"] == IRIMFA and cached["username"] == "IRIMFA_SPOX"
    assert cached["title"] == "Spokesman of MFA" and cached["resolved_from"] == "@IRIMFA_SPOX"
    assert archive.find_channel("x", "StateDeptSpox")["resolved_from"] == "@StateDeptSpox"
    assert archive.stats()["messages"] == 6
    h = src.health()
    assert h["reads_used"] == 6 and h["reads_remaining"] is None
    assert h["accounts"] == ["@IRIMFA_SPOX", "@StateDeptSpox"]


async def test_restart_resumes_from_since_id_without_lookup(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    old = post("IRIMFA_SPOX", "Before the restart", NOW - timedelta(hours=2))
    q_old = post("aamaq_watch", "claimed responsibility, old", NOW - timedelta(hours=2))
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(f"/2/users/{IRIMFA}/tweets", page([old], users=["IRIMFA_SPOX"]))
    fake_x.add("/2/tweets/search/recent", page([q_old], users=["aamaq_watch"]))
    await run_once(make_source(fake_x, t, searches=[QUERY]), sink)

    # "restart": a new source object over the same archive
    t.t += 3600
    new = post("IRIMFA_SPOX", "After the restart", NOW + timedelta(minutes=30))
    fake_x.add(f"/2/users/{IRIMFA}/tweets", page([new], users=["IRIMFA_SPOX"]))
    fake_x.requests.clear()
    await run_once(make_source(fake_x, t, searches=[QUERY]), sink)

    assert fake_x.seen("/2/users/by") == []  # resolved from the channel cache
    (tl,) = fake_x.seen(f"/2/users/{IRIMFA}/tweets")
    assert tl.query["since_id"] == old["id"] and "start_time" not in tl.query
    (search,) = fake_x.seen("/2/tweets/search/recent")
    assert search.query["since_id"] == q_old["id"] and "start_time" not in search.query
    assert sink.messages[-1].message_id == new["id"]
    assert sink.archive.get_checkpoint("x", IRIMFA) == new["id"]


async def test_next_poll_uses_in_memory_since_id_and_quiet_target_keeps_start_time(
    fake_x: FakeX, sink: Sink
) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    src = make_source(fake_x, t, searches=[QUERY])
    p1 = post("IRIMFA_SPOX", "One", NOW - timedelta(minutes=5))
    fake_x.add(f"/2/users/{IRIMFA}/tweets", page([p1], users=["IRIMFA_SPOX"]))
    try:
        await src.run(sink.ctx(), once=True)
        t.t += 120
        await src.poll_all()
    finally:
        await src.close()
    first, second = fake_x.seen(f"/2/users/{IRIMFA}/tweets")
    assert second.query["since_id"] == p1["id"]
    s1, s2 = fake_x.seen("/2/tweets/search/recent")
    # a search that found nothing yet asks again from the same start (no gap)
    assert s1.query["start_time"] == s2.query["start_time"]
    assert "since_id" not in s2.query


async def test_numeric_ids_need_no_handle_lookup(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users", {"data": [USERS_DATA["khamenei_ir"]]})
    p = post("khamenei_ir", "Message to the nation", NOW - timedelta(hours=3), lang="fa")
    fake_x.add(f"/2/users/{KHAMENEI}/tweets", page([p], users=["khamenei_ir"]))
    await run_once(make_source(fake_x, t, accounts=[KHAMENEI]), sink)
    assert fake_x.seen("/2/users/by") == []
    assert fake_x.seen("/2/users")[0].query["ids"] == KHAMENEI
    assert sink.messages[0].channel == "khamenei_ir"
    assert sink.archive.find_channel("x", "@khamenei_ir")["channel_id"] == KHAMENEI


async def test_unknown_handle_is_reported_and_others_polled(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX", missing=("no_such_ministry",)))
    p = post("IRIMFA_SPOX", "Still here", NOW - timedelta(hours=1))
    fake_x.add(f"/2/users/{IRIMFA}/tweets", page([p], users=["IRIMFA_SPOX"]))
    src = make_source(fake_x, t, accounts=["@IRIMFA_SPOX", "@no_such_ministry"])
    await run_once(src, sink)
    assert [m.message_id for m in sink.messages] == [p["id"]]
    assert "@no_such_ministry not found" in src.health()["last_error"]
    assert "Could not find user with usernames: [no_such_ministry]" in src.health()["last_error"]
    status = sink.archive.conn.execute("select errors, last_error from source_status where source='x'").fetchone()
    assert status[0] == 1 and "no_such_ministry" in status[1]


# -- content: long posts, retweets, quotes ---------------------------------------------------
LONG = ("بیانیه وزارت امور خارجه درباره حمله تروریستی در کرمان. " * 12).strip()


async def test_long_post_retweet_and_quote(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    long_post = post("IRIMFA_SPOX", LONG[:270] + "… https://t.co/Long1", NOW - timedelta(hours=4), lang="fa",
                     note=LONG)
    original = post("khamenei_ir", LONG[:270] + "…", NOW - timedelta(hours=6), lang="fa", note=LONG)
    retweet = post("IRIMFA_SPOX", "RT @khamenei_ir: " + LONG[:120] + "…", NOW - timedelta(hours=3), lang="fa",
                   refs=[("retweeted", original["id"])])
    quoted = post("StateDeptSpox", "We condemn the attack in Kerman.", NOW - timedelta(hours=5))
    quote = post("IRIMFA_SPOX", "Hypocrisy. https://t.co/Q1", NOW - timedelta(hours=2),
                 refs=[("quoted", quoted["id"])])
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(f"/2/users/{IRIMFA}/tweets",
               page([long_post, retweet, quote], users=["IRIMFA_SPOX", "khamenei_ir", "StateDeptSpox"],
                    tweets=[original, quoted]))
    await run_once(make_source(fake_x, t), sink)

    long_msg, rt_msg, quote_msg = sink.messages
    assert long_msg.text == LONG  # note_tweet, not the truncated text
    assert rt_msg.text == LONG  # the original's full text
    assert rt_msg.forwarded_from is not None
    assert rt_msg.forwarded_from.name == "khamenei_ir" and rt_msg.forwarded_from.id == KHAMENEI
    assert rt_msg.forwarded_from.message_id == original["id"]
    assert rt_msg.channel_id == IRIMFA
    assert quote_msg.text == "Hypocrisy. https://t.co/Q1"
    assert quote_msg.extra["quoted_text"] == "We condemn the attack in Kerman."
    assert quote_msg.extra["quoted_author"] == "StateDeptSpox"
    # the archive keeps the record exactly as X sent it
    row = sink.archive.get_message("x", IRIMFA, long_post["id"])
    assert row is not None and '"note_tweet"' in row["raw"]


# -- edits ------------------------------------------------------------------------------------
async def test_edit_becomes_a_version_of_the_original(fake_x: FakeX, sink: Sink) -> None:
    t = FakeTime()
    created = NOW - timedelta(minutes=20)
    a = post("IRIMFA_SPOX", "The attack killed 12 people", created)
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(f"/2/users/{IRIMFA}/tweets", page([a], users=["IRIMFA_SPOX"]))
    src = make_source(fake_x, t)
    edited_at = NOW - timedelta(minutes=5)
    b_id = snowflake(edited_at)
    b = post("IRIMFA_SPOX", "The attack killed 21 people", edited_at, id=b_id, history=[a["id"], b_id])
    a_in_includes = dict(a)
    fake_x.add(f"/2/users/{IRIMFA}/tweets", page([b], users=["IRIMFA_SPOX"], tweets=[a_in_includes]))
    try:
        await src.run(sink.ctx(), once=True)
        t.t += 600
        await src.poll_all()
    finally:
        await src.close()

    second = fake_x.seen(f"/2/users/{IRIMFA}/tweets")[1]
    assert second.query["since_id"] == a["id"]
    edit_env = sink.envelopes[-1]
    assert edit_env.event.message_id == a["id"]  # the original's id
    assert edit_env.event.extra["version_id"] == b_id
    assert edit_env.event.extra["edit_history_tweet_ids"] == [a["id"], b_id]
    assert edit_env.event.edit_date == edited_at and edit_env.event.date == created
    assert edit_env.event.url == f"https://x.com/IRIMFA_SPOX/status/{b_id}"
    assert edit_env.checkpoint == (IRIMFA, b_id)  # since_id follows the newest post id
    archive = sink.archive
    rows = archive.conn.execute("select id, message_id, text from messages").fetchall()
    assert [(r[1], r[2]) for r in rows] == [(a["id"], "The attack killed 21 people")]
    versions = archive.conn.execute("select text from versions order by id").fetchall()
    assert [v[0] for v in versions] == ["The attack killed 12 people", "The attack killed 21 people"]
    assert archive.get_checkpoint("x", IRIMFA) == b_id


async def test_edit_between_polls_keeps_the_first_text(fake_x: FakeX, sink: Sink) -> None:
    """Posted and edited between two polls: the earlier version comes from includes."""
    t = FakeTime()
    created = NOW - timedelta(minutes=10)
    a = post("IRIMFA_SPOX", "We claim the strike on the base", created)
    b_id = snowflake(NOW - timedelta(minutes=3))
    b = post("IRIMFA_SPOX", "We deny any role in the strike", NOW - timedelta(minutes=3), id=b_id,
             history=[a["id"], b_id])
    fake_x.add("/2/users/by", users_lookup("IRIMFA_SPOX"))
    fake_x.add(f"/2/users/{IRIMFA}/tweets", page([b], users=["IRIMFA_SPOX"], tweets=[a]))
    await run_once(make_source(fake_x, t), sink)

    first, latest = sink.envelopes
    assert first.event.message_id == latest.event.message_id == a["id"]
    assert first.event.text == "We claim the strike on the base" and first.event.edit_date is None
    assert first.checkpoint is None and latest.checkpoint == (IRIMFA, b_id)
    texts = [v[0] for v in sink.archive.conn.execute("select text from versions order by id")]
    assert texts == ["We claim the strike on the base", "We deny any role in the strike"]
    assert sink.archive.conn.execute("select count(*) from messages").fetchone()[0] == 1


def test_edit_folding_matches_the_file_importer() -> None:
    """A page saved to JSONL (twarc2-style) and imported gives the same archive keys."""
    from monitor.sources.files import parse_jsonl_record
    from monitor.sources.x.convert import page_items

    a = post("IRIMFA_SPOX", "First text", NOW - timedelta(minutes=30))
    b_id = snowflake(NOW - timedelta(minutes=10))
    b = post("IRIMFA_SPOX", "Second text", NOW - timedelta(minutes=10), id=b_id, history=[a["id"], b_id])
    plain = post("IRIMFA_SPOX", "Unedited", NOW - timedelta(minutes=5))
    body = page([b, plain], users=["IRIMFA_SPOX"], tweets=[a])
    errors: list[str] = []
    live = [it.message for it in page_items(body, errors) if it.latest]
    imported = parse_jsonl_record(body)
    assert errors == []
    assert sorted(m.key for m in live) == sorted(m.key for m in imported)
    by_key = {m.key: m for m in imported}
    for m in live:
        other = by_key[m.key]
        assert (m.text, m.date, m.edit_date, m.url, m.extra.get("version_id")) == (
            other.text, other.date, other.edit_date, other.url, other.extra.get("version_id"))
    edited = by_key[f"x:{IRIMFA}:{a['id']}"]
    assert edited.text == "Second text" and edited.extra["version_id"] == b_id
    # a single tweet line (not a page) folds the same way
    (single,) = parse_jsonl_record(b)
    assert single.key == edited.key and single.edit_date == edited.edit_date


async def test_sample_pages_served_as_a_search(fake_x: FakeX, sink: Sink) -> None:
    """The repository's X API v2 sample pages (Kerman, January 2024) through the collector."""
    import json
    from datetime import datetime

    from conftest import SAMPLES
    from monitor.sources.files import parse_jsonl_record

    lines = [json.loads(x) for x in (SAMPLES / "x" / "tweets.jsonl").read_text(encoding="utf-8").splitlines()]
    pages = [{k: v for k, v in o.items() if k != "__twarc"} for o in lines if "data" in o and "meta" in o]
    assert len(pages) == 2 and pages[0]["meta"].get("next_token")
    for p in pages:
        fake_x.add("/2/tweets/search/recent", p)
    t = FakeTime(datetime(2024, 1, 5, 18, 0, tzinfo=timezone.utc))
    await run_once(make_source(fake_x, t, accounts=[], searches=["Kerman"]), sink)

    first, second = fake_x.seen("/2/tweets/search/recent")
    assert second.query["next_token"] == pages[0]["meta"]["next_token"]
    expected = [m for p in pages for m in parse_jsonl_record(p)]
    # oldest first by the id of the version X returned (an edit keeps the original's message_id)
    ids = [int(e.event.extra.get("version_id", e.event.message_id)) for e in sink.envelopes]
    assert ids == sorted(ids)
    # the sample holds an edited post whose first version is in includes.tweets: emitted too
    (earlier,) = [e for e in sink.envelopes if e.checkpoint is None]
    (latest,) = [e for e in sink.envelopes if e.event.key == earlier.event.key and e is not earlier]
    assert latest.event.extra["version_id"] != earlier.event.message_id == latest.event.message_id
    assert earlier.event.text != latest.event.text
    assert len(sink.envelopes) == len(expected) + 1 == 10
    versions = sink.archive.conn.execute(
        "select count(*) from versions v join messages m on m.id = v.message_rowid where m.message_id=?",
        (earlier.event.message_id,)).fetchone()[0]
    assert versions == 2
    newest = max(int(d["id"]) for p in pages for d in p["data"])
    assert sink.archive.get_checkpoint("x", "search:Kerman") == str(newest)
    assert {m.key for m in sink.messages} == {m.key for m in expected}
