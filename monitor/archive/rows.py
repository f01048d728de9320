"""A Message as the values of its archive row (pure work, no database).

:func:`prepare_row` is everything the archive computes per message before SQL: dates,
JSON of the nested fields, the raw record and its hash, the text hash and the search
column. The archive calls it inline (:meth:`Archive.store`); big imports call it in a
preparer process and hand the rows to :meth:`Archive.store_rows`, so the writer process
only runs SQLite.

A row is a tuple: the 19 leading ``INSERT INTO messages`` parameters (up to
``search_text``) then the text's SHA-256 and the version's record hash; ``search_text``
and the record hash may be None (computed when needed).
"""

from __future__ import annotations

from datetime import datetime, timezone
from hashlib import sha256 as _sha256

from ..model import Message, canonical_json, iso
from ..text import search_text

Row = tuple  # see the module docstring

PLATFORM, CHANNEL_ID, MESSAGE_ID, CHANNEL, CHANNEL_TITLE, DATE, EDIT_DATE = range(7)
TEXT, MEDIA, EXTRA, RAW, RAW_SHA, SEARCH, TEXT_SHA, RECORD_SHA = 8, 13, 15, 16, 17, 18, 19, 20


def record_hash(key: str, text: str, raw_sha256: str) -> str:
    """Hash of one version record, covered by the chain."""
    return _sha256(f"{key}\n{raw_sha256}\n{text}".encode("utf-8")).hexdigest()


def iso_utc(dt: datetime | None) -> str | None:
    """:func:`monitor.model.iso` (``%Y-%m-%dT%H:%M:%SZ``), without strftime for UTC datetimes."""
    if dt is None:
        return None
    if dt.tzinfo is timezone.utc and dt.year >= 1000:
        return dt.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    return iso(dt)


def prepare_row(msg: Message, *, search: bool = True) -> Row:
    """The row values of ``msg``; ``search=False`` leaves ``search_text`` and the record
    hash None (lazy: an unchanged message needs neither)."""
    raw_json = msg.raw_json()
    raw_sha = _sha256(raw_json.encode("utf-8")).hexdigest()
    text = msg.text
    return (
        msg.platform,
        msg.channel_id,
        msg.message_id,
        msg.channel,
        msg.channel_title,
        iso_utc(msg.date),
        iso_utc(msg.edit_date),
        msg.author,
        text,
        msg.lang,
        msg.url,
        msg.reply_to,
        canonical_json(msg.forwarded_from.to_dict()) if msg.forwarded_from else None,
        canonical_json([m.to_dict() for m in msg.media]) if msg.media else None,
        msg.grouped_id,
        canonical_json(msg.extra) if msg.extra else None,
        raw_json,
        raw_sha,
        search_text(text) if search else None,
        _sha256(text.encode("utf-8")).hexdigest(),
        record_hash(msg.key, text, raw_sha) if search else None,
    )


def row_key(row: Row) -> str:
    """``platform:channel_id:message_id`` (:attr:`Message.key`)."""
    return f"{row[0]}:{row[1]}:{row[2]}"


def complete_row(row: Row) -> Row:
    """``row`` with its lazy values (search column, record hash) computed."""
    if row[SEARCH] is not None and row[RECORD_SHA] is not None:
        return row
    return (*row[:SEARCH], search_text(row[TEXT]), row[TEXT_SHA], record_hash(row_key(row), row[TEXT], row[RAW_SHA]))


INSERT_MESSAGE = (
    "INSERT INTO messages(platform, channel_id, message_id, channel, channel_title, date, edit_date,"
    " author, text, lang, url, reply_to, forwarded_from, media, grouped_id, extra, raw, raw_sha256,"
    " search_text, first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_NEW_MESSAGE = INSERT_MESSAGE + " ON CONFLICT(platform, channel_id, message_id) DO NOTHING"
INSERT_FTS = "INSERT INTO messages_fts(rowid, search_text) VALUES (?, ?)"


def insert_params(row: Row, now: str) -> tuple:
    """The INSERT_MESSAGE parameters of a row (search text computed if the row has none)."""
    if row[SEARCH] is None:
        return (*row[:SEARCH], search_text(row[TEXT]), now, now)
    return (*row[:TEXT_SHA], now, now)
