"""The X API stand-in (a real HTTP server on 127.0.0.1 speaking X API v2 JSON) and the
client wrapper: the requests tweepy builds, rate-limit headers, error bodies.

Other test_x_* modules import FakeX and the payload builders from here.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from tweepy.errors import Forbidden, TooManyRequests, Unauthorized

from monitor.sources.x.client import PAGE_SIZE, SEARCH, TIMELINE, USERS, XApi
from monitor.sources.x.poller import reset_header

TWITTER_EPOCH_MS = 1288834974657
NOW = datetime(2024, 6, 3, 12, 0, tzinfo=timezone.utc)
TOKEN = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4XsNiRVBChTYbJcE3F"


def snowflake(dt: datetime, seq: int = 0) -> str:
    """A post id as X would mint it at ``dt`` (ids sort by time)."""
    ms = int(dt.timestamp() * 1000) - TWITTER_EPOCH_MS
    return str((ms << 22) | seq)


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# -- users --------------------------------------------------------------------------
USERS_DATA = {
    "khamenei_ir": {"id": "1292392207", "name": "Khamenei.ir", "username": "khamenei_ir",
                    "verified": False, "created_at": "2013-03-18T07:40:59.000Z",
                    "description": "The Office of the Supreme Leader of Iran"},
    "IRIMFA_SPOX": {"id": "1138060478468710400", "name": "Spokesman of MFA", "username": "IRIMFA_SPOX",
                    "verified": False, "created_at": "2019-06-10T12:00:00.000Z", "description": ""},
    "StateDeptSpox": {"id": "1148310931081048064", "name": "Department Spokesperson",
                      "username": "StateDeptSpox", "verified": False,
                      "created_at": "2019-07-08T19:06:27.000Z", "description": "Official account"},
    "aamaq_watch": {"id": "1500000000000000001", "name": "Claims Watch", "username": "aamaq_watch",
                    "verified": False, "created_at": "2022-03-05T10:00:00.000Z", "description": ""},
}


def users_lookup(*names: str, missing: tuple[str, ...] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"data": [USERS_DATA[n] for n in names]} if names else {}
    if missing:
        body["errors"] = [
            {
                "value": m,
                "detail": f"Could not find user with usernames: [{m}].",
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "usernames",
                "resource_id": m,
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }
            for m in missing
        ]
    return body


# -- posts --------------------------------------------------------------------------
def post(author: str, text: str, created: datetime, *, id: str | None = None, lang: str = "en",
         note: str | None = None, refs: list[tuple[str, str]] | None = None,
         history: list[str] | None = None, reply_to_user: str | None = None,
         media_keys: list[str] | None = None) -> dict[str, Any]:
    """A post object with the fields the collector requests, shaped as X returns them."""
    pid = id or snowflake(created)
    user = USERS_DATA[author]
    p: dict[str, Any] = {
        "edit_history_tweet_ids": history or [pid],
        "conversation_id": pid,
        "lang": lang,
        "author_id": user["id"],
        "public_metrics": {"retweet_count": 12, "reply_count": 3, "like_count": 40, "quote_count": 1,
                           "bookmark_count": 0, "impression_count": 5120},
        "created_at": ts(created),
        "edit_controls": {"edits_remaining": 5 - (len(history) - 1 if history else 0), "is_edit_eligible": True,
                          "editable_until": ts(created + timedelta(hours=1))},
        "id": pid,
        "text": text,
    }
    if note is not None:
        p["note_tweet"] = {"text": note, "entities": {"hashtags": [{"start": 0, "end": 5, "tag": "Iran"}]}}
    if refs:
        p["referenced_tweets"] = [{"type": t, "id": i} for t, i in refs]
    if reply_to_user:
        p["in_reply_to_user_id"] = reply_to_user
    if media_keys:
        p["attachments"] = {"media_keys": media_keys}
    if "https://" in text:
        start = text.index("https://")
        url = text[start:].split()[0]
        p["entities"] = {"urls": [{"start": start, "end": start + len(url), "url": url,
                                   "expanded_url": "https://mfa.ir/statement", "display_url": "mfa.ir/statement"}]}
    return p


def page(posts: list[dict[str, Any]], *, users: list[str] = (), tweets: list[dict[str, Any]] = (),
         next_token: str | None = None, media: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """A timeline/search page: newest first, includes, meta (newest_id/oldest_id/next_token)."""
    posts = sorted(posts, key=lambda p: int(p["id"]), reverse=True)
    body: dict[str, Any] = {}
    if posts:
        body["data"] = posts
        includes: dict[str, Any] = {"users": [USERS_DATA[u] for u in users]}
        if tweets:
            includes["tweets"] = list(tweets)
        if media:
            includes["media"] = list(media)
        body["includes"] = includes
    meta: dict[str, Any] = {"result_count": len(posts)}
    if posts:
        meta["newest_id"] = posts[0]["id"]
        meta["oldest_id"] = posts[-1]["id"]
    if next_token:
        meta["next_token"] = next_token
    body["meta"] = meta
    return body


# -- error bodies, as the API returns them -------------------------------------------
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
FORBIDDEN_453 = {"errors": [{"message": "You currently have access to a subset of X API V2 endpoints and "
                             "limited v1.1 endpoints (e.g. media post, oauth) only. If you need access to this "
                             "endpoint, you may need a different access level. You can learn more here: "
                             "https://developer.x.com/en/portal/product", "code": 453}]}
FORBIDDEN_NOT_ENROLLED = {
    "client_id": "28080218",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from "
              "a Twitter developer App that is attached to a Project. You can create a project via the "
              "developer portal.",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}
TOO_MANY = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
USAGE_CAPPED = {"account_id": "1600000000", "product_name": "standard-basic", "title": "UsageCapExceeded",
                "period": "Monthly", "scope": "Product", "detail": "Usage cap exceeded: Monthly product cap",
                "type": "https://api.twitter.com/2/problems/usage-capped"}
UNAVAILABLE = {"title": "Service Unavailable", "detail": "Service Unavailable", "type": "about:blank",
               "status": 503}
INVALID_QUERY = {
    "errors": [{"parameters": {"query": ["(("]},
                "message": "There were errors processing your request: Unbalanced parentheses (at position 1)"}],
    "title": "Invalid Request",
    "detail": "One or more parameters to your request was invalid.",
    "type": "https://api.twitter.com/2/problems/invalid-request",
}


# -- the stand-in server -----------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    disconnect: bool = False  # drop the connection instead of answering
    delay: float = 0.0  # answer this late (client timeouts)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


def snowflake_time(post_id: str | int) -> datetime:
    return datetime.fromtimestamp(((int(post_id) >> 22) + TWITTER_EPOCH_MS) / 1000, tz=timezone.utc)


def stale_since_id(value: str, now: datetime) -> dict[str, Any]:
    """X's 400 for a recent-search ``since_id`` older than the 7-day window."""
    floor = (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%MZ")
    return {
        "errors": [{"parameters": {"since_id": [value]},
                    "message": f"Invalid 'since_id':'{value}'. 'since_id' must be a tweet id created after "
                               f"{floor}. Please use a 'since_id' that is larger than the "
                               f"oldest tweet in the 7 day search window."}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


def bad_max_results(value: str, low: int) -> dict[str, Any]:
    return {
        "errors": [{"parameters": {"max_results": [value]},
                    "message": f"The `max_results` query parameter value [{value}] is not between {low} and 100"}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value.replace(".000Z", "Z"), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


class FakeX:
    """X API v2 on 127.0.0.1, every request recorded.

    Timelines and searches answer *by the query*, as X does, from the posts published with
    :meth:`publish`: ``since_id``/``until_id`` (exclusive), ``start_time``/``end_time``,
    newest first, at most ``max_results`` (5..100 timeline, 10..100 search, else X's 400),
    ``next_token``/``pagination_token`` continuing where the page ended; a recent search
    with a ``since_id`` older than 7 days (by its snowflake time, against :attr:`now`)
    gets X's 400; a search only finds posts of the last 7 days.

    Replies scripted with :meth:`add` (an error, a literal page) are served first, first-in
    first-out, for that path. A path with neither answers ``{"meta": {"result_count": 0}}``.
    """

    def __init__(self) -> None:
        self.now: datetime = NOW  # X's clock, for the 7-day window of recent search
        self.published: dict[str, list[tuple[dict[str, Any], str]]] = {}  # path/"search:q" -> (post, author)
        self.tokens: dict[str, int] = {}  # next_token -> id the next page starts below
        self.replies: dict[str, list[Reply]] = {}
        self.requests: list[Seen] = []
        self.clock_reset = 0  # x-rate-limit-reset sent with 200s (0: now + 900)
        self.remaining = 299
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def add(self, path: str, body: Any = None, status: int = 200, headers: dict[str, str] | None = None,
            *, disconnect: bool = False, delay: float = 0.0) -> None:
        self.replies.setdefault(path, []).append(Reply(status, body, headers or {}, disconnect, delay))

    def publish(self, where: str, *posts: dict[str, Any], author: str | None = None) -> None:
        """Posts that exist: ``where`` is a timeline path or ``"search:<query>"``."""
        for p in posts:
            name = author or next(n for n, u in USERS_DATA.items() if u["id"] == p["author_id"])
            self.published.setdefault(where, []).append((p, name))

    def _answer(self, request: web.Request, where: str) -> tuple[int, dict[str, Any]]:
        q = request.query
        search = where.startswith("search:")
        low = 10 if search else 5
        size = q.get("max_results", "10")
        if not size.isdigit() or not low <= int(size) <= 100:
            return 400, bad_max_results(size, low)
        if search and q.get("since_id") and snowflake_time(q["since_id"]) < self.now - timedelta(days=7):
            return 400, stale_since_id(q["since_id"], self.now)
        posts = sorted(self.published.get(where, []), key=lambda pa: int(pa[0]["id"]), reverse=True)
        token = q.get("next_token") or q.get("pagination_token")
        if token is not None and token not in self.tokens:
            return 400, {"errors": [{"parameters": {"pagination_token": [token]},
                                     "message": "The `pagination_token` query parameter value is not valid"}],
                         "title": "Invalid Request", "type": "https://api.twitter.com/2/problems/invalid-request"}
        below = self.tokens.get(token) if token else None
        since = int(q["since_id"]) if q.get("since_id") else None
        until = int(q["until_id"]) if q.get("until_id") else None
        start = _parse_time(q["start_time"]) if q.get("start_time") else None
        end = _parse_time(q["end_time"]) if q.get("end_time") else None
        window = self.now - timedelta(days=7) if search else None

        def keep(p: dict[str, Any]) -> bool:
            pid = int(p["id"])
            created = snowflake_time(pid)
            return ((since is None or pid > since) and (until is None or pid < until)
                    and (below is None or pid < below) and (start is None or created >= start)
                    and (end is None or created < end) and (window is None or created >= window)
                    and created <= self.now)

        match = [(p, a) for p, a in posts if keep(p)]
        chunk, rest = match[: int(size)], match[int(size):]
        next_token = None
        if rest:
            next_token = f"7140dibdnow9c7b{len(self.tokens):05d}"
            self.tokens[next_token] = int(chunk[-1][0]["id"])
        return 200, page([p for p, _ in chunk], users=sorted({a for _, a in chunk}), next_token=next_token)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> "FakeX":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Seen(request.method, request.path, dict(request.query),
                                  request.headers.get("Authorization")))
        where = None
        if request.path == "/2/tweets/search/recent":
            where = "search:" + request.query.get("query", "")
        elif request.path.endswith("/tweets") and request.path.startswith("/2/users/"):
            where = request.path
        queue = self.replies.get(request.path) or []
        if where is not None and not queue:
            status, body = self._answer(request, where)
            reply = Reply(status, body)
        else:
            reply = queue.pop(0) if queue else Reply(200, {"meta": {"result_count": 0}})
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.disconnect:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        headers = {"x-rate-limit-limit": "300", "x-rate-limit-remaining": str(self.remaining),
                   "x-rate-limit-reset": str(self.clock_reset or int(NOW.timestamp()) + 900)}
        headers.update(reply.headers)
        headers = {k: v for k, v in headers.items() if v != ""}  # "" drops a header
        if isinstance(reply.body, str):  # an HTML error page (a proxy, a load balancer)
            return web.Response(status=reply.status, text=reply.body, content_type="text/html", headers=headers)
        return web.Response(status=reply.status, text=json.dumps(reply.body), content_type="application/json",
                            headers=headers)


@pytest.fixture
async def fake_x():
    server = await FakeX().start()
    yield server
    await server.stop()


# -- client tests --------------------------------------------------------------------------
async def test_timeline_request_built_by_tweepy(fake_x: FakeX) -> None:
    api = XApi(TOKEN, base_url=fake_x.base_url)
    p = post("IRIMFA_SPOX", "Statement on the attack in Kerman", NOW - timedelta(hours=1))
    fake_x.add("/2/users/1138060478468710400/tweets", page([p], users=["IRIMFA_SPOX"]))
    try:
        body = await api.user_tweets("1138060478468710400", since_id="1797000000000000000",
                                     start_time="2024-06-02T12:00:00Z", pagination_token="7140dibdnow9c7btw3z2")
    finally:
        await api.close()
    assert body["data"][0]["id"] == p["id"]
    (req,) = fake_x.requests
    assert req.path == "/2/users/1138060478468710400/tweets"
    assert req.authorization == f"Bearer {TOKEN}"
    q = req.query
    assert q["since_id"] == "1797000000000000000"
    assert "start_time" not in q  # since_id wins; start_time only for the first poll
    assert q["pagination_token"] == "7140dibdnow9c7btw3z2"
    assert q["max_results"] == str(PAGE_SIZE)
    expansions = q["expansions"].split(",")
    for e in ("author_id", "referenced_tweets.id", "referenced_tweets.id.author_id", "attachments.media_keys",
              "edit_history_tweet_ids"):
        assert e in expansions
    fields = q["tweet.fields"].split(",")
    for f in ("note_tweet", "edit_history_tweet_ids", "lang", "created_at", "entities", "referenced_tweets",
              "attachments", "author_id"):
        assert f in fields
    assert "username" in q["user.fields"].split(",")


async def test_search_request_uses_next_token_and_start_time(fake_x: FakeX) -> None:
    api = XApi(TOKEN, base_url=fake_x.base_url)
    fake_x.add("/2/tweets/search/recent", page([]))  # the token is made up: a scripted answer
    try:
        await api.search_recent('"claimed responsibility" lang:en -is:retweet', start_time="2024-06-02T12:00:00Z",
                                next_token="b26v89c19zqg8o3fpdg")
        await api.users_by_usernames(["khamenei_ir", "StateDeptSpox"])
    finally:
        await api.close()
    search, users = fake_x.requests
    assert search.path == "/2/tweets/search/recent"
    assert search.query["query"] == '"claimed responsibility" lang:en -is:retweet'
    assert search.query["start_time"] == "2024-06-02T12:00:00Z"
    assert search.query["next_token"] == "b26v89c19zqg8o3fpdg"
    assert "since_id" not in search.query
    assert users.path == "/2/users/by"
    assert users.query["usernames"] == "khamenei_ir,StateDeptSpox"


async def test_rate_limit_headers_recorded_per_endpoint(fake_x: FakeX) -> None:
    api = XApi(TOKEN, base_url=fake_x.base_url)
    reset = int(NOW.timestamp()) + 600
    fake_x.add("/2/tweets/search/recent", page([]), headers={"x-rate-limit-remaining": "0",
                                                               "x-rate-limit-reset": str(reset),
                                                               "x-rate-limit-limit": "60"})
    try:
        await api.search_recent("كرمان")
        await api.user_tweets("1292392207")
    finally:
        await api.close()
    assert api.rates[SEARCH].as_dict() == {"limit": 60, "remaining": 0, "reset": reset}
    assert api.rates[TIMELINE].remaining == 299
    assert api.exhausted_until(SEARCH, now=NOW.timestamp()) == reset
    assert api.exhausted_until(SEARCH, now=reset + 1) is None
    assert api.exhausted_until(TIMELINE, now=NOW.timestamp()) is None
    assert USERS not in api.rates


async def test_error_bodies_become_tweepy_errors(fake_x: FakeX) -> None:
    api = XApi(TOKEN, base_url=fake_x.base_url)
    reset = int(NOW.timestamp()) + 120
    fake_x.add("/2/users/1/tweets", UNAUTHORIZED, status=401)
    fake_x.add("/2/users/2/tweets", FORBIDDEN_NOT_ENROLLED, status=403)
    fake_x.add("/2/users/3/tweets", TOO_MANY, status=429, headers={"x-rate-limit-reset": str(reset),
                                                                  "x-rate-limit-remaining": "0"})
    try:
        with pytest.raises(Unauthorized):
            await api.user_tweets("1")
        with pytest.raises(Forbidden) as forbidden:
            await api.user_tweets("2")
        with pytest.raises(TooManyRequests) as too_many:
            await api.user_tweets("3")
    finally:
        await api.close()
    assert "When authenticating requests" in str(forbidden.value)
    assert reset_header(too_many.value) == reset  # reset_time exists only since tweepy 4.17
    assert api.rates[TIMELINE].status == 429


def test_repr_hides_token() -> None:
    api = XApi(TOKEN)
    assert TOKEN not in repr(api) and TOKEN not in str(api)


async def test_users_lookup_by_ids(fake_x: FakeX) -> None:
    api = XApi(TOKEN, base_url=fake_x.base_url)
    try:
        await asyncio.wait_for(api.users_by_ids(["1292392207"]), timeout=5)
    finally:
        await api.close()
    assert fake_x.requests[0].path == "/2/users" and fake_x.requests[0].query["ids"] == "1292392207"
