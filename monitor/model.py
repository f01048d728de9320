"""The normalised records that flow through every stage.

source -> :class:`Message` -> matcher (:class:`Hit`) -> archive -> outbox -> destinations

``Message`` is a frozen dataclass: cheap to build in the hot path of an import,
hashable by key, and serialisable to/from the canonical JSONL schema
(:meth:`Message.to_dict` / :meth:`Message.from_dict`) that ``claimwatch export`` writes
and the ``canonical`` importer reads back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Protocol

PLATFORMS = ("telegram", "x")
CANONICAL_SCHEMA = "claimwatch.message/1"


class MessageError(ValueError):
    """A record could not be turned into a Message (missing or invalid field)."""


class DateOutOfRange(MessageError):
    """A date past year 9999 (or before year 1) in UTC."""


def cut_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_utc(value: Any, field_name: str = "date") -> datetime | None:
    """Coerce a datetime, ISO-8601 string or unix timestamp into an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, bool):  # true is an int to Python, not a date
        raise MessageError(f"{field_name}: unsupported date value {value!r}")
    elif isinstance(value, (int, float)):
        dt = _from_timestamp(value, field_name)
    elif isinstance(value, str):
        s = value.strip()
        if s.isdigit():
            return _from_timestamp(int(s), field_name)
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError as exc:
            raise MessageError(f"{field_name}: not an ISO-8601 date: {value!r}") from exc
    else:
        raise MessageError(f"{field_name}: unsupported date value {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
        raise DateOutOfRange(f"{field_name}: not a date: {cut_repr(value)} is out of range in UTC") from None


def _from_timestamp(value: float, field_name: str) -> datetime:
    """A unix timestamp as a UTC datetime; one past year 9999 (or inf, NaN) is a MessageError,
    not the ValueError/OverflowError that ended an import in a traceback."""
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise DateOutOfRange(f"{field_name}: not a date: unix time {cut_repr(value)} is out of range") from None


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with a trailing Z (the archive's and the JSON output's date format)."""
    if dt is None:
        return None
    dt = dt.astimezone(timezone.utc)
    # the year padded to 4 digits: strftime's %Y gives "1-01-01" for year 1, which sorts after
    # "2024-…" as text (the archive orders and filters dates as text)
    return f"{dt.year:04d}-" + dt.strftime("%m-%dT%H:%M:%SZ")


def canonical_json(obj: Any) -> str:
    """Compact, deterministic JSON used for raw records and hashes."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(obj: Any) -> Any:
    # ijson yields Decimal for non-integer numbers; datetimes come from Telethon objects.
    from decimal import Decimal

    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, datetime):
        return iso(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Forward:
    """Where a forwarded/reposted message came from."""

    name: str | None = None
    id: str | None = None
    message_id: str | None = None
    date: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id, "message_id": self.message_id, "date": iso(self.date)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "Forward | None":
        if not d:
            return None
        return cls(
            name=d.get("name"),
            id=_opt_str(d.get("id"), "forwarded_from.id"),
            message_id=_opt_str(d.get("message_id"), "forwarded_from.message_id"),
            date=to_utc(d.get("date"), "forwarded_from.date"),
        )


@dataclass(frozen=True, slots=True)
class Media:
    """One attachment: type is photo | video | document | audio | voice | sticker | webpage | ..."""

    type: str
    file_name: str | None = None
    size: int | None = None
    mime: str | None = None
    sha256: str | None = None  # set when the file was downloaded to the media store
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"type": self.type, "file_name": self.file_name, "size": self.size, "mime": self.mime}
        if self.sha256:
            d["sha256"] = self.sha256
        if self.path:
            d["path"] = self.path
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Media":
        if "type" not in d:
            raise MessageError("media: missing 'type'")
        size = d.get("size")
        return cls(
            type=str(d["type"]),
            file_name=d.get("file_name"),
            size=int(size) if size is not None else None,
            mime=d.get("mime"),
            sha256=d.get("sha256"),
            path=d.get("path"),
        )


def _id_str(v: Any, field: str) -> str:
    """An id of a canonical record as text: a string or an integer (``12.5``, ``1e3``, ``true``,
    a list were stored as "12.5", "1000.0", "True": an id no source has)."""
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise MessageError(f"{field}: must be an integer or a string, not {cut_repr(v)}")


def _opt_str(v: Any, field: str) -> str | None:
    return None if v is None or v == "" else _id_str(v, field)


@dataclass(frozen=True, slots=True)
class Message:
    platform: str
    channel_id: str
    message_id: str
    date: datetime
    text: str = ""
    channel: str | None = None  # username / handle if known, else title
    channel_title: str | None = None
    edit_date: datetime | None = None
    author: str | None = None
    lang: str | None = None
    url: str | None = None
    reply_to: str | None = None
    forwarded_from: Forward | None = None
    media: tuple[Media, ...] = ()
    grouped_id: str | None = None  # Telegram album id
    extra: Mapping[str, Any] = field(default_factory=dict)  # views, quoted text, edit ids ...
    raw: Any = None  # the original record exactly as read (dict/list/str)

    # -- keys -----------------------------------------------------------------
    @property
    def key(self) -> str:
        """Stable identity: ``platform:channel_id:message_id``."""
        return f"{self.platform}:{self.channel_id}:{self.message_id}"

    @property
    def key_tuple(self) -> tuple[str, str, str]:
        return (self.platform, self.channel_id, self.message_id)

    def raw_json(self) -> str:
        raw = self.raw if self.raw is not None else self.to_dict(include_raw=False)
        return raw if isinstance(raw, str) else canonical_json(raw)

    def text_sha256(self) -> str:
        return sha256_hex(self.text)

    # -- canonical JSONL ------------------------------------------------------
    def to_dict(self, include_raw: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema": CANONICAL_SCHEMA,
            "platform": self.platform,
            "channel_id": self.channel_id,
            "channel": self.channel,
            "channel_title": self.channel_title,
            "message_id": self.message_id,
            "date": iso(self.date),
            "edit_date": iso(self.edit_date),
            "author": self.author,
            "text": self.text,
            "lang": self.lang,
            "url": self.url,
            "reply_to": self.reply_to,
            "forwarded_from": self.forwarded_from.to_dict() if self.forwarded_from else None,
            "media": [m.to_dict() for m in self.media],
            "grouped_id": self.grouped_id,
            "extra": dict(self.extra),
        }
        if include_raw:
            d["raw"] = self.raw
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Message":
        """Build from a canonical record; raises MessageError naming the missing/invalid field."""
        if not isinstance(d, Mapping):
            raise MessageError("record is not a JSON object")
        for name in ("platform", "channel_id", "message_id", "date"):
            if d.get(name) in (None, ""):
                raise MessageError(f"missing required field '{name}'")
        platform = d["platform"].strip().lower() if isinstance(d["platform"], str) else d["platform"]
        if platform not in PLATFORMS:  # "facebook" was archived, though no command can list it
            raise MessageError(f"platform: unknown platform {cut_repr(d['platform'])} (one of {', '.join(PLATFORMS)})")
        text = d.get("text") or ""
        if not isinstance(text, str):
            raise MessageError("field 'text' must be a string")
        media = d.get("media") or []
        if isinstance(media, Mapping):
            media = [media]
        return cls(
            platform=platform,
            channel_id=_id_str(d["channel_id"], "channel_id"),
            message_id=_id_str(d["message_id"], "message_id"),
            date=to_utc(d["date"], "date"),  # type: ignore[arg-type]
            text=text,
            channel=d.get("channel"),
            channel_title=d.get("channel_title"),
            edit_date=to_utc(d.get("edit_date"), "edit_date"),
            author=d.get("author"),
            lang=d.get("lang"),
            url=d.get("url"),
            reply_to=_opt_str(d.get("reply_to"), "reply_to"),
            forwarded_from=Forward.from_dict(d.get("forwarded_from")),
            media=tuple(Media.from_dict(m) for m in media),
            grouped_id=_opt_str(d.get("grouped_id"), "grouped_id"),
            extra=dict(d.get("extra") or {}),
            raw=d.get("raw"),
        )


@dataclass(frozen=True, slots=True)
class Deletion:
    """A source reports that messages were deleted (kept in the archive, marked deleted_at)."""

    platform: str
    channel_id: str | None
    message_ids: tuple[str, ...]
    date: datetime | None = None


@dataclass(frozen=True, slots=True)
class Match:
    selection: str
    term: str
    start: int  # character offsets in the original Message.text (or the field named)
    end: int
    field: str = "text"

    def to_dict(self) -> dict[str, Any]:
        return {"selection": self.selection, "term": self.term, "start": self.start, "end": self.end, "field": self.field}


# What a hit is (a rule's ``kind:``), strongest first; rules default to ``watch``.
KINDS = ("claim", "statement", "denial", "report", "watch")
# A rule's ``level:``, lowest first (an alert listing several hits takes the highest).
LEVELS = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule matched a message."""

    rule_id: str
    rule_hash: str
    level: str
    title: str
    matches: tuple[Match, ...] = ()
    destinations: tuple[str, ...] = ()  # resolved alert destination names
    throttle_seconds: int | None = None
    tags: tuple[str, ...] = ()
    kind: str = "watch"  # one of KINDS (the rule's ``kind:``)
    actors: tuple[str, ...] = ()  # ids of the actors the message names or that posted it
    score: float | None = None  # a learned classifier's probability for its hit; None for rule hits

    def selections(self) -> list[str]:
        return sorted({m.selection for m in self.matches})


def make_url(platform: str, channel: str | None, channel_id: str, message_id: str) -> str | None:
    """Public link to a post: t.me/<user>/<id>, t.me/c/<id>/<id>, x.com/<user>/status/<id>."""
    if platform == "telegram":
        if channel and not channel.startswith("-") and _is_username(channel):
            return f"https://t.me/{channel.lstrip('@')}/{message_id}"
        cid = str(channel_id)
        if cid.startswith("-100"):
            cid = cid[4:]
        cid = cid.lstrip("-")
        return f"https://t.me/c/{cid}/{message_id}"
    if platform == "x":
        handle = (channel or "").lstrip("@") or "i"
        if handle == "i":
            return f"https://x.com/i/status/{message_id}"
        return f"https://x.com/{handle}/status/{message_id}"
    return None


def _is_username(s: str) -> bool:
    s = s.lstrip("@")
    return 4 <= len(s) <= 64 and all(c.isascii() and (c.isalnum() or c == "_") for c in s)


def channel_label(platform: str | None, channel: str | None, title: str | None, channel_id: str | None) -> str:
    """``Title (@handle)``, ``@handle``, the title, or the id."""
    handle = None
    if channel and _is_username(channel):
        handle = "@" + channel.lstrip("@")
    name = title if title and title != channel else None
    if handle and name:
        return f"{name} ({handle})"
    return handle or name or channel or str(channel_id or "?")


def channel_url(platform: str | None, channel: str | None) -> str | None:
    """Public link to a channel/account, when it has a username."""
    if not channel or not _is_username(channel):
        return None
    handle = channel.lstrip("@")
    if platform == "telegram":
        return f"https://t.me/{handle}"
    if platform == "x":
        return f"https://x.com/{handle}"
    return None


class MatcherLike(Protocol):
    """What the importer and the pipeline need of a matcher (:class:`monitor.rules.Matcher`)."""

    def match(self, msg: Message) -> list[Hit]: ...
