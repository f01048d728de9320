"""Every timestamp, age and duration format in one place.

* archive timestamps (``created_at``, ``next_attempt_at`` …): :func:`now_iso`, :func:`ts`,
  microseconds and a trailing Z, so strings compare in time order; :func:`parse_ts`, :func:`shift`;
* message dates (second precision, trailing Z): :func:`monitor.model.iso` (with the Message
  model it validates), :func:`iso_now`;
* :func:`parse_iso` (a stored ISO-8601 date, fast: no coercion of other types);
* for people: :func:`human_utc` (``2024-05-01 12:00:00 UTC``), :func:`approx_duration`
  (``3d 4h``), :func:`exact_duration` (``1m30s``), :func:`compact_duration` (``1d2h``,
  incident offsets), :func:`offset` (``T+2h10m``), :func:`age` / :func:`ago` of a timestamp.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

from .model import iso, to_utc

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the format of now_iso


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def now_iso() -> str:
    """UTC now as ``%Y-%m-%dT%H:%M:%S.%fZ`` (isoformat: several times faster than strftime)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"


def from_epoch(seconds: float) -> str:
    """A ``time.time()`` value as ISO-8601 UTC with an offset (``…+00:00``: the daemon's status
    rows and file; :func:`age` reads it)."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def iso_now() -> str:
    """UTC now to the second, as message dates are written (``2024-05-01T12:00:00Z``)."""
    return iso(utcnow()) or ""


def ts(dt: datetime) -> str:
    """Format an aware datetime like the archive does (microseconds, trailing Z)."""
    return dt.astimezone(timezone.utc).strftime(TS_FORMAT)


def parse_ts(value: Any) -> datetime:
    """Aware UTC datetime from an archive timestamp (or any ISO-8601 string / datetime)."""
    dt = to_utc(value, "timestamp")
    if dt is None:
        raise ValueError("empty timestamp")
    return dt


def shift(value: str, seconds: float) -> str:
    """The archive timestamp ``seconds`` after ``value``."""
    return ts(parse_ts(value) + timedelta(seconds=seconds))


def human_utc(value: Any) -> str:
    """``2024-05-01 12:00:00 UTC`` (for people), or ``""`` for no value."""
    if value in (None, ""):
        return ""
    try:
        return parse_ts(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(value)


def approx_duration(secs: float) -> str:
    """A duration for people, rounded: 45s, 12m, 5h, 3d 4h, 2y 15d (negative: 'in the future')."""
    if secs < 0:
        return "in the future"
    if secs < 120:
        return f"{secs:.0f}s"
    if secs < 7200:
        return f"{secs / 60:.0f}m"
    if secs < 48 * 3600:
        return f"{secs / 3600:.0f}h"
    days = int(secs // 86400)
    if days < 365:
        hours = int(secs % 86400 // 3600)
        return f"{days}d {hours}h" if hours else f"{days}d"
    return f"{days // 365}y {days % 365}d"


def exact_duration(seconds: float) -> str:
    """``90`` -> ``1m30s``; ``inf`` -> ``never`` (settings such as poll intervals)."""
    if math.isinf(seconds):
        return "never"
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s else ""]
    return "".join(parts) or "0s"


def seconds_since(value: str | None) -> float | None:
    """Seconds from an ISO-8601 timestamp to now (None for none or a bad one)."""
    if not value:
        return None
    try:
        then = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - then).total_seconds()


def age(value: str | None) -> str:
    """How long ago a timestamp was (:func:`approx_duration`), ``-`` for none or a bad one."""
    secs = seconds_since(value)
    return "-" if secs is None else approx_duration(secs)


def ago(value: str | None) -> str:
    """``5h ago`` (``-`` for none)."""
    text = age(value)
    return text if text == "-" else f"{text} ago"


def parse_iso(s: str) -> datetime:
    """A stored ISO-8601 date (``…Z`` or with an offset) as a datetime."""
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def compact_duration(secs: float) -> str:
    """``1d2h``, ``3h5m``, ``7m`` (whole minutes; minutes shown with days only under 2 days)."""
    secs = int(secs)
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    if d:
        return f"{d}d{h}h" if not m or d >= 2 else f"{d}d{h}h{m}m"
    if h:
        return f"{h}h{m}m"
    return f"{m}m"


def offset(t0: str, t: str) -> str:
    """``T+2h10m`` (``T+0m`` for the first message; days as ``T+1d2h``; ``T-5m`` before T0)."""
    secs = int((parse_iso(t) - parse_iso(t0)).total_seconds())
    sign = "+" if secs >= 0 else "-"
    return "T" + sign + compact_duration(abs(secs))
