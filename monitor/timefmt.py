"""Timestamps of the outbox: the archive's ``now_iso`` format, so strings compare in time order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from .model import to_utc

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # same as monitor.archive.store.now_iso


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
