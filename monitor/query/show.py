"""Everything the archive holds about one message: row, versions, chain, hits, deliveries, raw."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from ..archive.columns import dict_rows, hit_score_sql, json_column
from ..model import PLATFORMS
from .filters import resolve_channels


class RefError(ValueError):
    """A message reference that cannot be parsed (the message says what is expected)."""


_TME = re.compile(r"^(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)/(?:s/)?(c/)?([^/?#]+)/(?:\d+/)?(\d+)/?(?:[?#].*)?$")
_XCOM = re.compile(
    r"^(?:https?://)?(?:www\.|mobile\.)?(?:x|twitter)\.com/(?:i/web|([^/?#]+))/status(?:es)?/(\d+)(?:/[^?#]*)?/?(?:[?#].*)?$"
)


def telegram_id_forms(value: str) -> list[str]:
    """A Telegram channel id as given, then its other form: the archive stores the bare id
    (``1234567890``), clients and bots show the marked one (``-1001234567890``)."""
    if value.startswith("-100") and value[4:].isdigit():
        return [value, value[4:]]
    if value.isdigit():
        return [value, "-100" + value]
    return [value]


def parse_ref(ref: str) -> tuple[str, str | None, str, str | None]:
    """``platform:channel_id:message_id`` or a t.me / x.com post link ->
    (platform, channel_id or None, message_id, channel name or None)."""
    ref = ref.strip().strip("<>")
    m = _TME.match(ref)
    if m:
        if m.group(1):  # t.me/c/<bare channel id>/<msg> (or /c/<id>/<topic>/<msg>): as stored
            return "telegram", m.group(2), m.group(3), None
        return "telegram", None, m.group(3), m.group(2)
    m = _XCOM.match(ref)
    if m:
        return "x", None, m.group(2), m.group(1) if m.group(1) != "i" else None
    platform, sep, rest = ref.partition(":")
    channel_id, sep2, message_id = rest.rpartition(":")
    if not sep or not sep2 or not channel_id or not message_id or platform not in PLATFORMS:
        raise RefError(
            f"not a message key: {ref!r} (use PLATFORM:CHANNEL_ID:MESSAGE_ID, e.g. telegram:1234567890:56, or a t.me / x.com post link)"
        )
    return platform, channel_id, message_id, None


def find_message_rowid(conn: sqlite3.Connection, ref: str) -> int | None:
    platform, channel_id, message_id, name = parse_ref(ref)
    if channel_id is not None:
        row = None
        for cid in telegram_id_forms(channel_id) if platform == "telegram" else [channel_id]:
            row = conn.execute(
                "SELECT id FROM messages WHERE platform=? AND channel_id=? AND message_id=?",
                (platform, cid, message_id),
            ).fetchone()
            if row:
                break
        if row or name is None:
            return row[0] if row else None
    if name is None:  # an x.com/i/status or /i/web/status link: the id alone
        rows = conn.execute("SELECT id FROM messages WHERE platform=? AND message_id=?", (platform, message_id)).fetchall()
        return rows[0][0] if len(rows) == 1 else None
    for p, cid in sorted(resolve_channels(conn, [name], [platform])):
        row = conn.execute(
            "SELECT id FROM messages WHERE platform=? AND channel_id=? AND message_id=?", (p, cid, message_id)
        ).fetchone()
        if row:
            return row[0]
    if platform == "x":  # a handle the archive does not know (renamed since): X post ids are unique
        rows = conn.execute("SELECT id FROM messages WHERE platform=? AND message_id=?", (platform, message_id)).fetchall()
        return rows[0][0] if len(rows) == 1 else None
    return None


def _rows(conn: sqlite3.Connection, sql: str, args: tuple) -> list[dict[str, Any]]:
    return dict_rows(conn.execute(sql, args))


def _chain_seq(conn: sqlite3.Connection, version_id: int) -> int | None:
    """The chain position of a version. ``chain`` has no index on version_id; claimwatch
    appends its records in the versions' insertion order, so the seq is looked for at and just
    around the version id first, and only then (an archive written otherwise) by a full scan."""
    row = conn.execute(
        "SELECT min(seq) FROM chain WHERE seq BETWEEN ? AND ? AND version_id=?",
        (version_id - 64, version_id + 64, version_id),
    ).fetchone()
    if row and row[0] is not None:
        return row[0]
    return conn.execute("SELECT min(seq) FROM chain WHERE version_id=?", (version_id,)).fetchone()[0]


def message_detail(conn: sqlite3.Connection, ref: str) -> dict[str, Any] | None:
    """The message row, every version (with its chain record), hits and their outbox rows,
    and the raw record parsed; None when the archive has no such message."""
    rowid = find_message_rowid(conn, ref)
    if rowid is None:
        return None
    msg = _rows(conn, "SELECT * FROM messages WHERE id=?", (rowid,))[0]
    msg.pop("search_text", None)
    raw = msg.pop("raw")
    for name in ("forwarded_from", "media", "extra"):
        msg[name] = json_column(msg[name])
    msg["key"] = f"{msg['platform']}:{msg['channel_id']}:{msg['message_id']}"
    versions = _rows(
        conn,
        "SELECT v.id, v.seen_at, v.edit_date, v.text, v.text_sha256, v.raw_sha256, v.record_sha256"
        " FROM versions v WHERE v.message_rowid=? ORDER BY v.id",
        (rowid,),
    )
    for v in versions:
        v["chain_seq"] = _chain_seq(conn, v["id"])
    hits = _rows(
        conn,
        "SELECT h.id, h.created_at, h.rule_id, h.rule_hash, h.level, h.kind, h.actors, h.title, h.tags, h.matches,"
        f" h.text_sha256, {hit_score_sql(conn)} AS score FROM hits h WHERE h.message_rowid=? ORDER BY h.id",
        (rowid,),
    )
    for h in hits:
        h["tags"] = json_column(h["tags"], [])
        h["matches"] = json_column(h["matches"], [])
        h["actors"] = json_column(h["actors"], [])
    deliveries = _rows(
        conn,
        "SELECT o.id, o.hit_id, o.destination, o.kind, o.status, o.attempts, o.last_error, o.created_at, o.sent_at"
        " FROM outbox o JOIN hits h ON h.id = o.hit_id WHERE h.message_rowid=? ORDER BY o.id",
        (rowid,),
    )
    return {
        "message": msg,
        "deleted_at": msg.get("deleted_at"),
        "versions": versions,
        "hits": hits,
        "deliveries": deliveries,
        "raw": json_column(raw, bad=raw),
    }
