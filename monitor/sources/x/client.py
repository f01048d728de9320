"""Thin wrapper around tweepy's asyncio client for the three endpoints the source reads.

tweepy builds the requests (route, fields, pagination parameters) and raises its typed
errors; responses come back as the API's own JSON (``return_type=dict``) so the raw
record is archived exactly as X sent it. ``wait_on_rate_limit`` is off: the poller
handles 429s itself. The aiohttp session handed to tweepy records the
``x-rate-limit-*`` headers of every response and, when ``base_url`` is set, sends the
requests there instead of https://api.twitter.com (tests use a loopback server).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from tweepy.asynchronous import AsyncClient

API_HOST = "https://api.twitter.com"

# Everything the converter can use: author, referenced (retweeted/quoted/replied) posts,
# attachments, long-post text, edit history, language, dates and entities.
EXPANSIONS = [
    "author_id",
    "referenced_tweets.id",
    "referenced_tweets.id.author_id",
    "attachments.media_keys",
    "edit_history_tweet_ids",
    "in_reply_to_user_id",
]
TWEET_FIELDS = [
    "attachments",
    "author_id",
    "conversation_id",
    "created_at",
    "edit_controls",
    "edit_history_tweet_ids",
    "entities",
    "in_reply_to_user_id",
    "lang",
    "note_tweet",
    "public_metrics",
    "referenced_tweets",
    "source",
]
USER_FIELDS = ["id", "name", "username", "verified", "created_at", "description"]
MEDIA_FIELDS = ["media_key", "type", "url", "preview_image_url", "alt_text", "duration_ms", "variants"]
PAGE_SIZE = 100  # the maximum max_results of both endpoints

# Endpoints, as named in messages to the user.
TIMELINE = "timeline"
SEARCH = "search"
USERS = "users"
ENDPOINTS = {
    TIMELINE: "GET /2/users/:id/tweets (user post timeline)",
    SEARCH: "GET /2/tweets/search/recent (recent search)",
    USERS: "GET /2/users/by (user lookup)",
}

# tweepy logs request headers (the bearer token) at DEBUG: never let that through.
logging.getLogger("tweepy.asynchronous.client").setLevel(logging.INFO)
logging.getLogger("tweepy.client").setLevel(logging.INFO)


def endpoint_of(path: str) -> str:
    """Which of our endpoints a request path belongs to."""
    if path.startswith("/2/tweets/search/"):
        return SEARCH
    if re.match(r"^/2/users/[^/]+/tweets", path):
        return TIMELINE
    return USERS


# The smallest max_results each endpoint accepts (X answers 400 below it).
MIN_PAGE = {TIMELINE: 5, SEARCH: 10}


def _page_params(since_id: str | None, start_time: str | None, until_id: str | None = None,
                 max_results: int | None = None) -> dict[str, Any]:
    """What every timeline/search page asks for: resume point, page size, expansions, fields."""
    return {
        "since_id": since_id,
        "start_time": None if since_id else start_time,  # since_id wins; start_time only without one
        "until_id": until_id,  # reading a gap below posts already read
        "max_results": max_results or PAGE_SIZE,
        "expansions": EXPANSIONS,
        "tweet_fields": TWEET_FIELDS,
        "user_fields": USER_FIELDS,
        "media_fields": MEDIA_FIELDS,
    }


@dataclass
class RateLimit:
    """Last ``x-rate-limit-*`` headers seen for one endpoint."""

    limit: int | None = None
    remaining: int | None = None
    reset: int | None = None  # epoch seconds
    status: int | None = None  # HTTP status of that response

    def as_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "remaining": self.remaining, "reset": self.reset}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _RecordingSession:
    """The session tweepy uses: rebases URLs and records rate-limit headers."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str | None, rates: dict[str, RateLimit]) -> None:
        self._session = session
        self._base = base_url.rstrip("/") if base_url else None
        self._rates = rates

    def request(self, method: str, url: Any, **kwargs: Any) -> "_RecordingRequest":
        text = str(url)
        path = text[len(API_HOST):] if text.startswith(API_HOST) else text
        if self._base and text.startswith(API_HOST):
            url = self._base + path
        return _RecordingRequest(self._session.request(method, url, **kwargs), self._rates, endpoint_of(path))

    async def close(self) -> None:
        await self._session.close()

    @property
    def closed(self) -> bool:
        return self._session.closed


class _RecordingRequest:
    def __init__(self, cm: Any, rates: dict[str, RateLimit], endpoint: str) -> None:
        self._cm = cm
        self._rates = rates
        self._endpoint = endpoint

    async def __aenter__(self) -> aiohttp.ClientResponse:
        resp = await self._cm.__aenter__()
        h = resp.headers
        rate = self._rates.setdefault(self._endpoint, RateLimit())
        rate.status = resp.status
        if "x-rate-limit-remaining" in h or "x-rate-limit-reset" in h:
            rate.limit = _int(h.get("x-rate-limit-limit"))
            rate.remaining = _int(h.get("x-rate-limit-remaining"))
            rate.reset = _int(h.get("x-rate-limit-reset"))
        return resp

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._cm.__aexit__(*exc)


class XApi:
    """The X API v2 calls the source makes (app-only bearer token)."""

    def __init__(self, bearer_token: str, *, base_url: str | None = None, timeout: float = 30.0) -> None:
        self._token = bearer_token
        self.base_url = base_url
        self.timeout = timeout
        self.rates: dict[str, RateLimit] = {}
        self._client: AsyncClient | None = None

    def __repr__(self) -> str:  # never show the token
        return f"XApi(base_url={self.base_url or API_HOST!r})"

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            client = AsyncClient(bearer_token=self._token, return_type=dict, wait_on_rate_limit=False)
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            client.session = _RecordingSession(session, self.base_url, self.rates)
            self._client = client
        return self._client

    async def close(self) -> None:
        if self._client is not None and self._client.session is not None:
            await self._client.session.close()
        self._client = None

    def rate(self, endpoint: str) -> RateLimit:
        return self.rates.setdefault(endpoint, RateLimit())

    def exhausted_until(self, endpoint: str, now: float | None = None) -> float | None:
        """Epoch seconds to wait for when the last response said no requests remain."""
        r = self.rates.get(endpoint)
        now = time.time() if now is None else now
        if r and r.remaining == 0 and r.reset is not None and r.reset > now:
            return float(r.reset)
        return None

    # -- endpoints -------------------------------------------------------------
    async def users_by_usernames(self, usernames: list[str]) -> dict[str, Any]:
        return await self.client.get_users(usernames=usernames, user_fields=USER_FIELDS)

    async def users_by_ids(self, ids: list[str]) -> dict[str, Any]:
        return await self.client.get_users(ids=ids, user_fields=USER_FIELDS)

    async def user_tweets(
        self, user_id: str, *, since_id: str | None = None, start_time: str | None = None,
        pagination_token: str | None = None, until_id: str | None = None, max_results: int | None = None,
    ) -> dict[str, Any]:
        return await self.client.get_users_tweets(
            user_id, pagination_token=pagination_token,
            **_page_params(since_id, start_time, until_id, max_results),
        )

    async def search_recent(
        self, query: str, *, since_id: str | None = None, start_time: str | None = None,
        next_token: str | None = None, until_id: str | None = None, max_results: int | None = None,
    ) -> dict[str, Any]:
        return await self.client.search_recent_tweets(
            query, next_token=next_token, **_page_params(since_id, start_time, until_id, max_results)
        )
