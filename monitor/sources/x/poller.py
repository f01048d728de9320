"""Calling the X API with its failure modes handled, and paging through results.

* 429: wait until ``x-rate-limit-reset`` (+1 s), then retry; a monthly usage-cap 429
  is not retried (:class:`UsageCapped`).
* 5xx and network errors: exponential backoff with a cap, then :class:`RequestFailed`.

The retrying is tenacity's (:class:`Caller`).
* 401: :class:`~monitor.sources.base.SourceStopped` ("X: invalid bearer token").
* 403: :class:`EndpointForbidden` naming the endpoint and the access level it needs.
* other 4xx (bad query, unknown id): :class:`RequestFailed` with ``permanent=True``.

Sleeping and the clock are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tweepy.errors import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    TooManyRequests,
    TwitterServerError,
    Unauthorized,
)

from ...logs import get_logger
from ..base import SourceStopped
from .client import ENDPOINTS, SEARCH, TIMELINE, USERS, XApi

log = get_logger("claimwatch.x")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

INVALID_TOKEN = "X: invalid bearer token (401 Unauthorized); check sources.x.bearer_token"
PLAN_HINT = "https://developer.x.com/en/portal/product"
# Access level an endpoint needs, as X published it when this was written (see docs/x.md).
ACCESS_NEEDED = {
    TIMELINE: "Basic or higher",
    SEARCH: "Basic or higher (recent search: last 7 days)",
    USERS: "Basic or higher",
}


class XRequestError(Exception):
    """A request to X could not be completed."""

    def __init__(self, endpoint: str, message: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class EndpointForbidden(XRequestError):
    """403: the app's access level does not include this endpoint."""


class UsageCapped(XRequestError):
    """429 with the monthly usage cap: no more reads this month."""


class RequestFailed(XRequestError):
    """Retries exhausted (``permanent=False``) or a request X will never accept (``permanent=True``).

    ``parameters`` names the request parameters X's 400 complained about; one the source
    computes itself (``since_id``, ``start_time``, ...) is not permanent: the source asks again
    another way (a ``since_id`` that fell out of the 7-day search window, for instance)."""

    def __init__(self, endpoint: str, message: str, *, permanent: bool = False,
                 parameters: frozenset[str] = frozenset()) -> None:
        super().__init__(endpoint, message)
        self.permanent = permanent
        self.parameters = parameters


# Parameters the source computes (resume points, page size): a 400 naming one of them is
# the source's to fix, not a bad query of the user's.
COMPUTED_PARAMETERS = frozenset({"since_id", "until_id", "start_time", "end_time", "max_results",
                                 "next_token", "pagination_token"})


def bad_parameters(body: dict[str, Any]) -> frozenset[str]:
    names: set[str] = set()
    for err in body.get("errors") or []:
        params = err.get("parameters") if isinstance(err, dict) else None
        if isinstance(params, dict):
            names.update(str(k) for k in params)
    return frozenset(names)


def reset_header(exc: HTTPException) -> int | None:
    """``x-rate-limit-reset`` of a failed response, read from the headers (tweepy < 4.17 has
    no ``TooManyRequests.reset_time``)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        value = headers.get("x-rate-limit-reset")
        return int(value) if value else None
    except (TypeError, ValueError):
        return None


async def error_body(exc: HTTPException) -> dict[str, Any]:
    """The JSON body of a failed response (tweepy has already read it), or {}."""
    try:
        body = await exc.response.json(content_type=None)
    except Exception:
        return {}
    return body if isinstance(body, dict) else {}


def _detail(body: dict[str, Any], exc: Exception) -> str:
    parts = []
    for err in body.get("errors") or []:
        if isinstance(err, dict) and err.get("message"):
            code = f"{err['code']} - " if "code" in err else ""
            parts.append(f"{code}{err['message']}")
    if not parts:
        for key in ("title", "detail", "reason", "required_enrollment"):
            if body.get(key) and str(body[key]) not in parts:
                parts.append(str(body[key]))
    if not parts:
        parts.append(str(exc).replace("\n", " "))
    return "; ".join(parts)


def forbidden_message(endpoint: str, body: dict[str, Any], exc: Exception) -> str:
    return (
        f"X: {ENDPOINTS[endpoint]} is not included in this app's access level "
        f"(403 Forbidden: {_detail(body, exc)}). It needs {ACCESS_NEEDED[endpoint]} access: "
        f"check the plan of the app's Project at {PLAN_HINT}"
    )


def is_usage_cap(body: dict[str, Any]) -> bool:
    text = " ".join(str(body.get(k, "")) for k in ("type", "title", "detail")).lower()
    return "usage-capped" in text or "usagecapexceeded" in text or "usage cap" in text


@dataclass
class RetryPolicy:
    max_attempts: int = 5  # 5xx / network, per request
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    max_rate_waits: int = 3  # 429s per request before giving up this poll
    rate_fallback: float = 60.0  # wait when a 429 has no reset header
    rate_margin: float = 1.0


class _TryAgain(Exception):
    """One attempt failed in a way another attempt may fix: rate limited, or transient."""

    def __init__(self, why: str, *, rate_limited: bool = False, reset: int | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.rate_limited = rate_limited
        self.reset = reset


@dataclass
class Caller:
    """Runs one API call with the retry policy (tenacity): a 429 waits for the rate-limit
    reset, at most ``max_rate_waits`` times; a 5xx or network error backs off exponentially,
    at most ``max_attempts`` attempts; both counted per request."""

    api: XApi
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.time
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    async def _wait(self, endpoint: str, seconds: float, why: str) -> None:
        seconds = max(0.0, seconds)
        log.warning("x: waiting", endpoint=ENDPOINTS[endpoint], seconds=round(seconds, 1), reason=why)
        await self.sleep(seconds)

    async def call(self, endpoint: str, make: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        p = self.policy
        failures = {"rate": 0, "transient": 0}

        def failed(state: RetryCallState) -> _TryAgain:
            exc = state.outcome.exception() if state.outcome else None
            assert isinstance(exc, _TryAgain)
            return exc

        def count(state: RetryCallState) -> None:
            failures["rate" if failed(state).rate_limited else "transient"] += 1

        def wait(state: RetryCallState) -> float:
            exc = failed(state)
            if exc.rate_limited:
                return max(0.0, self._rate_delay(endpoint, exc.reset, failures["rate"]))
            return min(p.backoff_cap, p.backoff_base * 2 ** (failures["transient"] - 1))

        def stop(state: RetryCallState) -> bool:
            return failures["rate"] > p.max_rate_waits or failures["transient"] >= p.max_attempts

        def give_up(state: RetryCallState) -> dict[str, Any]:
            if failed(state).rate_limited:
                raise RequestFailed(endpoint, f"X: {ENDPOINTS[endpoint]} still rate limited after "
                                    f"{p.max_rate_waits} waits")
            raise RequestFailed(endpoint, f"X: {ENDPOINTS[endpoint]} failed {failures['transient']} times "
                                f"({failed(state).why})")

        def before_sleep(state: RetryCallState) -> None:
            seconds = state.next_action.sleep if state.next_action else 0.0
            log.warning("x: waiting", endpoint=ENDPOINTS[endpoint], seconds=round(seconds, 1),
                        reason=failed(state).why)

        retrying = AsyncRetrying(retry=retry_if_exception_type(_TryAgain), after=count, wait=wait, stop=stop,
                                 before_sleep=before_sleep, sleep=self.sleep, retry_error_callback=give_up)
        return await retrying(self._attempt, endpoint, make)

    async def _attempt(self, endpoint: str, make: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """One request: its result, a final error, or :class:`_TryAgain`."""
        until = self.api.exhausted_until(endpoint, self.clock())
        if until is not None:
            await self._wait(endpoint, until - self.clock() + self.policy.rate_margin,
                             "rate limit: 0 requests remaining")
        try:
            return await make()
        except Unauthorized:
            raise SourceStopped(INVALID_TOKEN) from None
        except Forbidden as exc:
            body = await error_body(exc)
            raise EndpointForbidden(endpoint, forbidden_message(endpoint, body, exc)) from None
        except TooManyRequests as exc:
            body = await error_body(exc)
            if is_usage_cap(body):
                raise UsageCapped(
                    endpoint, f"X: monthly usage cap reached ({_detail(body, exc)}); no reads until it resets"
                ) from None
            raise _TryAgain("429 Too Many Requests", rate_limited=True, reset=reset_header(exc)) from None
        except (BadRequest, NotFound) as exc:
            body = await error_body(exc)
            params = bad_parameters(body)
            raise RequestFailed(endpoint, f"X: {ENDPOINTS[endpoint]}: {_detail(body, exc)}",
                                permanent=not (params & COMPUTED_PARAMETERS), parameters=params) from None
        except TwitterServerError as exc:
            raise _TryAgain(f"{exc.response.status} server error") from None
        except HTTPException as exc:  # another 4xx
            body = await error_body(exc)
            raise RequestFailed(endpoint, f"X: {ENDPOINTS[endpoint]}: {_detail(body, exc)}", permanent=True) from None
        except (aiohttp.ClientResponseError, AttributeError, TypeError, ValueError) as exc:
            # tweepy could not read the body: an HTML page from a proxy, JSON that is not
            # an object, a 2xx that is not JSON. Decide by the HTTP status.
            if isinstance(exc, aiohttp.ClientResponseError):
                status: int | None = exc.status
            else:
                status = self.api.rate(endpoint).status
                if not isinstance(exc, ValueError) and (status is None or status < 400):
                    raise  # not a response problem: a bug
            why = f"HTTP {status}: unreadable response ({type(exc).__name__})"
            if status == 401:
                raise SourceStopped(INVALID_TOKEN) from None
            if status == 403:
                raise EndpointForbidden(endpoint, forbidden_message(endpoint, {}, exc)) from None
            if status == 429:
                raise _TryAgain("429 Too Many Requests", rate_limited=True) from None
            if status is not None and 400 <= status < 500:
                raise RequestFailed(endpoint, f"X: {ENDPOINTS[endpoint]}: {why}", permanent=True) from None
            raise _TryAgain(why) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _TryAgain(f"network: {type(exc).__name__}: {exc}") from None

    def _rate_delay(self, endpoint: str, reset: int | None, rate_waits: int) -> float:
        """Until ``x-rate-limit-reset`` (+margin); a missing or past reset waits 60 s, 120 s, ..."""
        p = self.policy
        reset = reset or self.api.rate(endpoint).reset
        if reset is not None and reset - self.clock() > 0:
            return reset - self.clock() + p.rate_margin
        return p.rate_fallback * rate_waits


@dataclass
class Fetched:
    """All pages one read of one target returned (newest first, as X sends them)."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    reads: int = 0  # posts received (what counts against the monthly cap)
    truncated: bool = False  # stopped with posts left unread (page or budget limit)
    budget_hit: bool = False  # ... because the read budget was used up
    errors: list[dict[str, Any]] = field(default_factory=list)  # partial errors in 200 bodies


async def fetch_pages(
    caller: Caller,
    endpoint: str,
    request: Callable[[str | None, int], Awaitable[dict[str, Any]]],
    *,
    max_pages: int,
    max_reads: int | None = None,
    page_size: int = 100,
    min_page: int = 1,
) -> Fetched:
    """Follow ``meta.next_token`` until the last page, ``max_pages`` or ``max_reads``.

    The budget is checked *before* each page: a page asks for no more posts than are left
    (``max_results``), and none is asked for when fewer are left than the endpoint's smallest
    page (``min_page``), so the reads never go over ``max_reads``."""
    out = Fetched()
    token: str | None = None
    while True:
        size = page_size
        if max_reads is not None:
            size = min(size, max_reads - out.reads)
            if size < min_page:
                out.truncated = out.budget_hit = True
                return out
        page = await caller.call(endpoint, lambda: request(token, size))
        if not isinstance(page, dict):
            raise RequestFailed(endpoint, f"X: {ENDPOINTS[endpoint]}: unexpected response {type(page).__name__}")
        out.pages.append(page)
        out.reads += len(page.get("data") or [])
        out.errors.extend(e for e in page.get("errors") or [] if isinstance(e, dict))
        token = (page.get("meta") or {}).get("next_token")
        if not token:
            return out
        if len(out.pages) >= max_pages:
            out.truncated = True
            return out
