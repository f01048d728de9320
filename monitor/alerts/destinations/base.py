"""What every destination implements, and the two ways a delivery can fail."""

from __future__ import annotations

import abc
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from ...logs import redact
from ..alert import Alert


class DeliveryError(Exception):
    """A delivery failed; ``reason`` is short, human-readable and has secrets redacted."""

    def __init__(self, reason: str) -> None:
        self.reason = redact(str(reason))[:1000]
        super().__init__(self.reason)


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later (5xx, 429, connection errors, timeouts). ``retry_after``: seconds
    the service asked us to wait (Slack's ``Retry-After``), if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help (4xx other than 429, bad address, auth refused...)."""


class Destination(abc.ABC):
    """An alert destination. ``send`` delivers one alert or raises a :class:`DeliveryError`.

    Network clients are created lazily inside the running event loop; ``aclose`` releases them.
    """

    type: str = "?"

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    async def send(self, alert: Alert) -> str | None:
        """Deliver; a destination that can thread returns the reference later alerts of the
        same incident reply to (Slack ``ts``, email ``Message-ID``) and replies to
        ``alert.thread_ref`` when set."""

    async def aclose(self) -> None:
        """Release connections (safe to call more than once)."""

    async def close(self) -> None:
        """Same as :meth:`aclose`."""
        await self.aclose()

    def __repr__(self) -> str:  # never shows URLs, tokens or passwords
        return f"<{type(self).__name__} {self.name!r}>"


def secret_path(url: str | None) -> str | None:
    """The path and query of a URL when they are long enough to carry a secret (a Slack
    webhook's ``/services/T…/B…/token``), so they are redacted even without the host."""
    if not url:
        return None
    parts = urlsplit(url)
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return rest if len(rest) >= 12 else None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def classify_http(status: int, body: str = "", retry_after: str | None = None, what: str = "HTTP") -> None:
    """Raise the right error for a non-2xx HTTP status (return quietly on 2xx).

    429 and 5xx are temporary (429 honours ``Retry-After``); every other 4xx is permanent.
    """
    if 200 <= status < 300:
        return
    detail = " ".join((body or "").split())[:200]
    reason = f"{what} {status}" + (f": {detail}" if detail else "")
    if status == 429:
        raise TemporaryDeliveryError(reason, parse_retry_after(retry_after))
    if status >= 500:
        raise TemporaryDeliveryError(reason)
    raise PermanentDeliveryError(reason)
