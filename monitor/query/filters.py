"""Filters shared by search, hits and export: platform, channel, date range, rule.

Dates in the archive are ISO-8601 UTC strings (``2024-01-04T15:00:00Z``), so date filters
are string comparisons that use the ``messages(date)`` and ``messages(platform, channel_id,
date)`` indexes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..durations import parse_duration
from ..model import DateOutOfRange, MessageError, PLATFORMS, iso, to_utc


class FilterError(ValueError):
    """A filter value is invalid; the message names the option."""


def parse_when(value: str, option: str = "--since", *, end_of_day: bool = False, now: datetime | None = None) -> str:
    """An archive date string from ``2024-01-04``, an ISO-8601 datetime, a unix time or an age
    like ``7d``/``12h`` (that long before now). ``end_of_day`` makes a bare date mean the start
    of the next day (for an exclusive ``--until`` that includes the day given)."""
    s = str(value).strip()
    if not s:
        raise FilterError(f"{option}: empty date")
    shown = s if len(s) <= 40 else s[:37] + "..."
    out_of_range = f"{option}: {shown!r} is out of range (dates from year 1 to 9999)"
    if s[-1:].lower() in ("s", "m", "h", "d", "w") and s[:-1].replace(".", "", 1).isdigit():
        try:
            seconds = parse_duration(s)
        except ValueError as exc:
            raise FilterError(f"{option}: {exc}") from exc
        try:
            return iso((now or datetime.now(timezone.utc)) - timedelta(seconds=seconds))  # type: ignore[return-value]
        except (OverflowError, ValueError):
            raise FilterError(out_of_range) from None
    try:
        dt = to_utc(s, option)
    except DateOutOfRange:
        raise FilterError(out_of_range) from None
    except MessageError as exc:
        raise FilterError(f"{option}: not a date: {shown!r} (use 2024-01-31, 2024-01-31T12:00:00Z or 7d)") from exc
    except (OverflowError, ValueError, OSError):
        raise FilterError(out_of_range) from None
    assert dt is not None
    try:
        if end_of_day and len(s) == 10:
            dt += timedelta(days=1)
        return iso(dt)  # type: ignore[return-value]
    except (OverflowError, ValueError):
        raise FilterError(out_of_range) from None


@dataclass
class Filters:
    """What to keep. Empty lists / None mean "no restriction"."""

    platforms: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # channel id, @username or title
    since: str | None = None  # inclusive, archive date string
    until: str | None = None  # exclusive
    rules: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        *,
        platform: list[str] | str | None = None,
        channel: list[str] | str | None = None,
        since: str | None = None,
        until: str | None = None,
        rule: list[str] | str | None = None,
    ) -> "Filters":
        """Parse CLI-style values (raises :class:`FilterError`)."""
        platforms = _as_list(platform)
        for p in platforms:
            if p not in PLATFORMS:
                raise FilterError(f"--platform: unknown platform {p!r} (one of {', '.join(PLATFORMS)})")
        f = cls(
            platforms=platforms,
            channels=_as_list(channel),
            since=parse_when(since, "--since") if since else None,
            until=parse_when(until, "--until", end_of_day=True) if until else None,
            rules=_as_list(rule),
        )
        if f.since and f.until and f.since >= f.until:
            raise FilterError(f"--since {since} is not before --until {until}")
        return f

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v}

    def is_empty(self) -> bool:
        return not self.as_dict()

    def where(self, conn: sqlite3.Connection, alias: str = "m") -> tuple[list[str], list[Any]]:
        """SQL conditions (to AND together) and their arguments on the messages table ``alias``."""
        conds: list[str] = []
        args: list[Any] = []
        if self.platforms:
            conds.append(f"{alias}.platform IN ({','.join('?' * len(self.platforms))})")
            args += self.platforms
        if self.channels:
            keys = resolve_channels(conn, self.channels, self.platforms)
            if not keys:
                conds.append("0")  # no such channel: nothing matches
            else:
                conds.append(f"({alias}.platform, {alias}.channel_id) IN (VALUES {','.join(['(?,?)'] * len(keys))})")
                for k in sorted(keys):
                    args += list(k)
        if self.since:
            conds.append(f"{alias}.date >= ?")
            args.append(self.since)
        if self.until:
            conds.append(f"{alias}.date < ?")
            args.append(self.until)
        if self.rules:
            conds.append(
                f"{alias}.id IN (SELECT message_rowid FROM hits WHERE rule_id IN ({','.join('?' * len(self.rules))}))"
            )
            args += self.rules
        return conds, args


def _as_list(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    out: list[str] = []
    for v in value:
        out += [p.strip() for p in str(v).split(",") if p.strip()]
    return out


def resolve_channels(
    conn: sqlite3.Connection, refs: list[str], platforms: list[str] | None = None
) -> set[tuple[str, str]]:
    """The (platform, channel_id) pairs that channel references name.

    A reference is a channel id, a username (with or without ``@``) or a title, compared
    case-insensitively. The channels table is asked first; names it does not know are looked
    up among the channels that have messages (one scan of the channel index).
    """
    plats = list(platforms or PLATFORMS)
    found: set[tuple[str, str]] = set()
    unresolved: list[str] = []
    for ref in refs:
        name = ref.lstrip("@").lower()
        hits: set[tuple[str, str]] = set()
        for p in plats:
            if conn.execute(
                "SELECT 1 FROM messages WHERE platform=? AND channel_id=? LIMIT 1", (p, ref)
            ).fetchone():
                hits.add((p, ref))
        hits |= {
            (p, c)
            for p, c in conn.execute(
                f"SELECT platform, channel_id FROM channels WHERE platform IN ({','.join('?' * len(plats))})"
                " AND (channel_id=? OR lower(username)=? OR lower(title)=? OR resolved_from=?)",
                (*plats, ref, name, ref.lower(), ref),
            )
        }
        if hits:
            found |= hits
        else:
            unresolved.append(name)
    if unresolved:
        wanted = set(unresolved)
        pairs = conn.execute(
            f"SELECT DISTINCT platform, channel_id FROM messages WHERE platform IN ({','.join('?' * len(plats))})",
            plats,
        ).fetchall()
        for p, c in pairs:
            row = conn.execute(
                "SELECT channel, channel_title FROM messages WHERE platform=? AND channel_id=?"
                " ORDER BY date DESC LIMIT 1",
                (p, c),
            ).fetchone()
            names = {(row[0] or "").lstrip("@").lower(), (row[1] or "").lower()} if row else set()
            if names & wanted:
                found.add((p, c))
    return found
