"""Reading what an alert needs from the archive (hits joined with their messages).

Plain SQL over ``archive.conn``; callers hold ``archive.lock``.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Mapping

from ..archive.columns import dict_rows, hit_score_sql, json_column

_HIT_SQL = """
SELECT h.id AS hit_id, h.rule_id, h.rule_hash, h.level, h.title, h.tags, h.matches, h.text_sha256,
       h.created_at AS hit_created_at, h.kind AS hit_kind, h.actors, {score} AS score,
       m.id AS message_rowid, m.platform, m.channel_id, m.message_id, m.channel, m.channel_title,
       m.date, m.edit_date, m.author, m.url, m.forwarded_from, m.media, m.deleted_at, m.grouped_id,
       m.text AS current_text,
       (SELECT v.text FROM versions v WHERE v.message_rowid = m.id AND v.text_sha256 = h.text_sha256
        LIMIT 1) AS hit_text
FROM hits h JOIN messages m ON m.id = h.message_rowid
WHERE h.id = ?
"""

_BRIEF_SQL = """
SELECT h.id AS hit_id, h.created_at AS hit_created_at, h.rule_id,
       m.platform, m.channel_id, m.message_id, m.channel, m.channel_title, m.date, m.url
FROM hits h JOIN messages m ON m.id = h.message_rowid
WHERE h.id IN ({marks})
ORDER BY h.id
"""


def load_hit(conn: sqlite3.Connection, hit_id: int) -> dict[str, Any] | None:
    """A hit with its message; ``text`` is the version of the text the rule matched."""
    rows = dict_rows(conn.execute(_HIT_SQL.format(score=hit_score_sql(conn)), (hit_id,)))
    if not rows:
        return None
    row = rows[0]
    row["text"] = row["hit_text"] if row["hit_text"] is not None else row["current_text"]
    row["matches"] = json_column(row["matches"], [])
    row["tags"] = json_column(row["tags"], [])
    actors = json_column(row.get("actors"), [])
    row["actors"] = [str(a) for a in actors] if isinstance(actors, list) else []
    row["forwarded_from"] = json_column(row["forwarded_from"], None)
    row["media"] = json_column(row["media"], [])
    if row.get("grouped_id"):
        _add_album(conn, row)
    return row


_ALBUM_SQL = """
SELECT message_id, media FROM messages
WHERE platform = ? AND channel_id = ? AND grouped_id = ?
ORDER BY length(message_id), message_id
"""


def _add_album(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    """A Telegram album is one message per item sharing ``grouped_id``, with the caption on
    one of them: the alert lists the media of every item stored so far, in post order."""
    items = conn.execute(_ALBUM_SQL, (row["platform"], row["channel_id"], row["grouped_id"])).fetchall()
    if len(items) < 2:
        return
    media: list[Any] = []
    for _mid, item_media in items:
        media.extend(json_column(item_media, []))
    row["media"] = media
    row["album_items"] = len(items)


_LISTED_SQL = """
SELECT h.id AS hit_id, h.rule_id, h.level, h.title, h.kind AS hit_kind, h.actors, h.matches, h.text_sha256,
       {score} AS score
FROM hits h WHERE h.id IN ({marks})
"""


def load_listed_hits(conn: sqlite3.Connection, hit_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Rule, level, title, kind, actors, matches and score of the hits an alert lists besides its
    lead, in the order of ``hit_ids`` (hits not found are left out)."""
    ids = [int(i) for i in hit_ids][:500]
    if not ids:
        return []
    found = {}
    sql = _LISTED_SQL.format(marks=",".join("?" * len(ids)), score=hit_score_sql(conn))
    for row in dict_rows(conn.execute(sql, ids)):
        row["matches"] = json_column(row["matches"], [])
        actors = json_column(row.get("actors"), [])
        row["actors"] = [str(a) for a in actors] if isinstance(actors, list) else []
        found[row["hit_id"]] = row
    return [found[i] for i in ids if i in found]


def load_hits_brief(conn: sqlite3.Connection, hit_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Channel, link and date of each hit (for follow-ups), in hit order."""
    ids = [int(i) for i in hit_ids]
    out: list[dict[str, Any]] = []
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        out.extend(dict_rows(conn.execute(_BRIEF_SQL.format(marks=",".join("?" * len(chunk))), chunk)))
    return out


def row_dict(cur: sqlite3.Cursor, row: Iterable[Any]) -> dict[str, Any]:
    return dict(zip([d[0] for d in cur.description], row))


def payload_of(row: Mapping[str, Any]) -> dict[str, Any]:
    return json_column(row.get("payload"), {}) or {}
