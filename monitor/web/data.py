"""What each page shows, read from the archive (sync; run on a Datasette read connection).

Each function takes a ``sqlite3.Connection`` (read-only, ``query_only``) and returns plain
dicts for the templates. Every query here is bounded by an index (newest rows first, one
channel, one incident, one message, or the search window), so pages stay fast on archives
of millions of messages.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

from ..model import KINDS
from ..incidents.query import incident_detail, list_incidents, public, timeline
from ..timefmt import compact_duration, parse_iso
from ..model import PLATFORMS, channel_url, iso, make_url
from ..archive.columns import hit_score_sql, json_column, score_text
from ..query.show import message_detail
from .chart import bars, day_series
from .text import pieces, short, word_diff

LEVELS = ("critical", "high", "medium", "low")
HOME_HITS = 25
HOME_INCIDENTS = 6
HOME_TIMELINE = 6
HOME_CHANNELS = 30
CHANNEL_RECENT = 30
CHANNEL_DAYS = 90
OPEN_WINDOW = timedelta(hours=72)  # an incident with a message this recent is "open"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def message_key(platform: str, channel_id: str, message_id: str) -> str:
    return f"{platform}:{channel_id}:{message_id}"


def ago(then: str | None, now: datetime) -> str | None:
    if not then:
        return None
    try:
        secs = (now - parse_iso(then)).total_seconds()
    except ValueError:
        return None
    return compact_duration(max(secs, 0))


# -- home ---------------------------------------------------------------------------------------

def home(conn: sqlite3.Connection, titles: dict[str, str], now: datetime | None = None) -> dict[str, Any]:
    now = now or _now()
    latest = conn.execute("SELECT max(created_at) FROM hits").fetchone()[0]
    by_level_kind: dict[str, dict[str, int]] = {}
    since = None
    if latest:
        since = iso(parse_iso(latest) - timedelta(days=7))
        for level, kind, n in conn.execute(
            "SELECT level, kind, count(*) FROM hits WHERE created_at >= ? GROUP BY level, kind", (since,)
        ):
            by_level_kind.setdefault(level, {})[kind] = n
    levels = [lv for lv in LEVELS if lv in by_level_kind] + sorted(set(by_level_kind) - set(LEVELS))
    kinds = [k for k in KINDS if any(k in row for row in by_level_kind.values())]
    kinds += sorted({k for row in by_level_kind.values() for k in row} - set(kinds))
    hits = [_hit_row(r, titles) for r in conn.execute(
        "SELECT h.id, h.created_at, h.level, h.kind, h.actors, h.rule_id, h.title, m.platform, m.channel_id,"
        f" m.message_id, coalesce(m.channel, m.channel_title, m.channel_id), m.date, m.text, m.deleted_at,"
        f" {hit_score_sql(conn)}"
        " FROM hits h JOIN messages m ON m.id = h.message_rowid ORDER BY h.created_at DESC, h.id DESC LIMIT ?",
        (HOME_HITS,),
    )]
    incidents = []
    for inc in list_incidents(conn, limit=HOME_INCIDENTS):
        detail = incident_detail(conn, inc["id"])
        entries = timeline(detail) if detail else []
        inc["timeline"] = [_entry(e, titles) for e in entries[:HOME_TIMELINE]]
        inc["more"] = max(0, len(entries) - HOME_TIMELINE)
        inc["open"] = parse_iso(inc["end"]) >= now - OPEN_WINDOW
        inc["actor_titles"] = [titles.get(a, a) for a in inc["actors"]]
        incidents.append(inc)
    return {
        "hits_since": since, "levels": levels, "kinds": kinds, "by_level_kind": by_level_kind,
        "hits": hits, "incidents": incidents, "channels": channel_health(conn, now)[:HOME_CHANNELS],
        "channel_count": len(channel_keys(conn)), "sources": sources(conn, now),
    }


def _hit_row(r: tuple, titles: dict[str, str]) -> dict[str, Any]:
    (hid, created, level, kind, actors, rule_id, title, platform, channel_id, message_id, channel, date, text,
     deleted, score) = r
    return {
        "id": hid, "created_at": created, "level": level, "kind": kind,
        "actors": [titles.get(a, a) for a in json_column(actors, [])], "rule_id": rule_id, "title": title,
        "key": message_key(platform, channel_id, message_id), "platform": platform, "channel_id": channel_id,
        "channel": channel, "date": date, "text": short(text, 200), "deleted_at": deleted,
        "score": score, "score_text": score_text(score),  # a learned classifier's probability ("" for a rule)
    }


def _entry(e: dict[str, Any], titles: dict[str, str]) -> dict[str, Any]:
    return {
        "offset": e["offset"], "date": e["date"], "kind": e["kind"], "channel": e["channel"],
        "platform": e["platform"], "channel_id": e["channel_id"],
        "key": message_key(e["platform"], e["channel_id"], e["message_id"]), "url": e.get("url"),
        "actors": [titles.get(a, a) for a in e["actors"]], "rules": e["rules"], "text": short(e["text"], 240),
        "note": e.get("family_note"),
        "reposts": [_entry(r, titles) for r in e.get("reposts", [])],
    }


def channel_keys(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Every (platform, channel_id) with messages: one index seek per channel (a skip scan of
    ``idx_messages_channel``), plus the channels the collectors resolved."""
    keys: list[tuple[str, str]] = []
    row = conn.execute("SELECT platform, channel_id FROM messages ORDER BY platform, channel_id LIMIT 1").fetchone()
    while row is not None:
        keys.append((row[0], row[1]))
        # two equality/range steps: a row-value comparison would bound only the platform
        nxt = conn.execute(
            "SELECT channel_id FROM messages WHERE platform=? AND channel_id > ? ORDER BY channel_id LIMIT 1", row,
        ).fetchone()
        if nxt is not None:
            row = (row[0], nxt[0])
        else:
            row = conn.execute(
                "SELECT platform, channel_id FROM messages WHERE platform > ? ORDER BY platform, channel_id LIMIT 1",
                (row[0],),
            ).fetchone()
    seen = set(keys)
    for p, c in conn.execute("SELECT platform, channel_id FROM channels"):
        if (p, c) not in seen:
            keys.append((p, c))
    return keys


def channel_health(conn: sqlite3.Connection, now: datetime) -> list[dict[str, Any]]:
    """Each channel: name, last message posted and how long ago (lag), newest first."""
    names = {(p, c): (u, t) for p, c, u, t in conn.execute("SELECT platform, channel_id, username, title FROM channels")}
    out = []
    for platform, channel_id in channel_keys(conn):
        last = conn.execute(
            "SELECT date, coalesce(channel, channel_title) FROM messages WHERE platform=? AND channel_id=?"
            " ORDER BY date DESC LIMIT 1", (platform, channel_id),
        ).fetchone()
        username, title = names.get((platform, channel_id), (None, None))
        out.append({
            "platform": platform, "channel_id": channel_id,
            "name": username or title or (last[1] if last else None) or channel_id, "title": title,
            "last_message": last[0] if last else None, "lag": ago(last[0] if last else None, now),
        })
    out.sort(key=lambda c: c["last_message"] or "", reverse=True)
    return out


def sources(conn: sqlite3.Connection, now: datetime) -> list[dict[str, Any]]:
    out = []
    for source, last_msg, last_poll, errors, last_error, updated in conn.execute(
        "SELECT source, last_message_at, last_poll_at, errors, last_error, updated_at FROM source_status ORDER BY source"
    ):
        out.append({"source": source, "last_message_at": last_msg, "last_poll_at": last_poll, "errors": errors,
                    "last_error": short(last_error, 300) if last_error else None, "updated_at": updated,
                    "lag": ago(last_msg, now), "poll_ago": ago(last_poll, now)})
    return out


# -- incident -----------------------------------------------------------------------------------

def incident(conn: sqlite3.Connection, incident_id: int, titles: dict[str, str]) -> dict[str, Any] | None:
    detail = incident_detail(conn, incident_id)
    if detail is None:
        return None
    entries = timeline(detail)
    c = detail["counts"]
    return {
        "id": detail["id"], "title": detail["title"], "places": detail["places"],
        "actors": [titles.get(a, a) for a in detail["actors"]], "start": detail["start"], "end": detail["end"],
        "first_seen": detail["first_seen"], "counts": c, "kinds": [(k, c[k]) for k in KINDS if c.get(k)],
        "merged_from": detail.get("merged_from"),
        "timeline": [_entry(e, titles) for e in entries],
        "_detail": detail,
    }


def incident_json(detail: dict[str, Any]) -> dict[str, Any]:
    return public(detail)


# -- message ------------------------------------------------------------------------------------

def message(conn: sqlite3.Connection, key: str, titles: dict[str, str]) -> dict[str, Any] | None:
    d = message_detail(conn, key)
    if d is None:
        return None
    m = d["message"]
    hits = d["hits"]
    by_text: dict[str, list[tuple[int, int]]] = {}
    for h in hits:
        h["actor_titles"] = [titles.get(a, a) for a in h["actors"]]
        h["terms"] = sorted({x.get("term", "") for x in h["matches"] if isinstance(x, dict)} - {""})
        h["score_text"] = score_text(h.get("score"))  # a learned classifier's hit: no terms, a probability
        for x in h["matches"]:
            if isinstance(x, dict) and x.get("field", "text") == "text" and "start" in x and "end" in x:
                by_text.setdefault(h["text_sha256"], []).append((x["start"], x["end"]))
    versions = []
    prev = None
    for i, v in enumerate(d["versions"], 1):
        versions.append({
            "n": i, "seen_at": v["seen_at"], "edit_date": v["edit_date"], "text_sha256": v["text_sha256"],
            "raw_sha256": v["raw_sha256"], "record_sha256": v["record_sha256"], "chain_seq": v["chain_seq"],
            "pieces": pieces(v["text"], by_text.get(v["text_sha256"], [])),
            "diff": word_diff(prev, v["text"]) if prev is not None else None,
            "hits": [h["rule_id"] for h in hits if h["text_sha256"] == v["text_sha256"]],
        })
        prev = v["text"]
    deliveries = d["deliveries"]
    for o in deliveries:
        o["last_error"] = short(o["last_error"], 300) if o["last_error"] else None
    inc = conn.execute(
        "SELECT im.incident_id, coalesce(i.merged_into, i.id), i.title FROM incident_messages im"
        " JOIN incidents i ON i.id = im.incident_id WHERE im.message_rowid=?", (m["id"],),
    ).fetchone()
    media = m.get("media") or []
    if not isinstance(media, list):
        media = []
    return {
        "message": m, "key": m["key"], "deleted_at": d["deleted_at"], "versions": versions, "hits": hits,
        "deliveries": deliveries, "media": [x for x in media if isinstance(x, dict)],
        "raw": json.dumps(d["raw"], ensure_ascii=False, indent=2, sort_keys=True),
        "url": m.get("url") or make_url(m["platform"], m.get("channel"), m["channel_id"], m["message_id"]),
        "channel": m.get("channel") or m.get("channel_title") or m["channel_id"],
        "incident": {"id": inc[1], "title": inc[2]} if inc else None,
        "forwarded_from": m.get("forwarded_from") if isinstance(m.get("forwarded_from"), dict) else None,
    }


# -- channel ------------------------------------------------------------------------------------

def channel(conn: sqlite3.Connection, platform: str, channel_id: str, titles: dict[str, str],
            now: datetime | None = None) -> dict[str, Any] | None:
    now = now or _now()
    info = conn.execute(
        "SELECT username, title, kind, resolved_from, resolved_at, updated_at FROM channels"
        " WHERE platform=? AND channel_id=?", (platform, channel_id),
    ).fetchone()
    last = conn.execute(
        "SELECT date, coalesce(channel, channel_title) FROM messages WHERE platform=? AND channel_id=?"
        " ORDER BY date DESC LIMIT 1", (platform, channel_id),
    ).fetchone()
    if info is None and last is None:
        return None
    first = conn.execute(
        "SELECT date FROM messages WHERE platform=? AND channel_id=? ORDER BY date LIMIT 1", (platform, channel_id)
    ).fetchone()
    total = conn.execute(
        "SELECT count(*) FROM messages WHERE platform=? AND channel_id=?", (platform, channel_id)
    ).fetchone()[0]
    per_day: dict[str, int] = {}
    if last:
        since = iso(parse_iso(last[0]) - timedelta(days=CHANNEL_DAYS - 1))[:10]
        per_day = dict(conn.execute(
            "SELECT substr(date, 1, 10) AS day, count(*) FROM messages WHERE platform=? AND channel_id=? AND date >= ?"
            " GROUP BY day", (platform, channel_id, since),
        ).fetchall())
    score = hit_score_sql(conn)
    # a learned classifier's hits: one row per kind (claim, statement), with their mean probability
    rules = [
        {"rule_id": r[0], "level": r[1], "kind": r[2], "hits": r[3], "last": r[4], "score_text": score_text(r[5])}
        for r in conn.execute(
            f"SELECT h.rule_id, max(h.level), max(h.kind), count(*), max(m.date), avg({score}) FROM messages m"
            " JOIN hits h ON h.message_rowid = m.id WHERE m.platform=? AND m.channel_id=?"
            f" GROUP BY h.rule_id, CASE WHEN {score} IS NOT NULL THEN h.kind END ORDER BY count(*) DESC, h.rule_id, 3",
            (platform, channel_id),
        )
    ]
    recent = []
    rows = conn.execute(
        "SELECT id, message_id, date, edit_date, deleted_at, text, media FROM messages"
        " WHERE platform=? AND channel_id=? ORDER BY date DESC LIMIT ?", (platform, channel_id, CHANNEL_RECENT),
    ).fetchall()
    levels: dict[int, list[str]] = {}
    if rows:
        ids = [r[0] for r in rows]
        for mid, level in conn.execute(
            f"SELECT message_rowid, level FROM hits WHERE message_rowid IN ({','.join('?' * len(ids))})", ids
        ):
            levels.setdefault(mid, []).append(level)
    for rid, mid, date, edit_date, deleted, text, media in rows:
        recent.append({"key": message_key(platform, channel_id, mid), "date": date, "edit_date": edit_date,
                       "deleted_at": deleted, "text": short(text, 300), "media": len(json_column(media, [])),
                       "levels": sorted(set(levels.get(rid, [])), key=lambda lv: LEVELS.index(lv) if lv in LEVELS else 9)})
    username, title = (info[0], info[1]) if info else (None, None)
    name = username or title or (last[1] if last else None) or channel_id
    checkpoints = [
        {"source": s, "channel": c, "value": v, "updated_at": u}
        for s, c, v, u in conn.execute(
            "SELECT source, channel, value, updated_at FROM checkpoints WHERE channel IN (?, ?, ?, ?)",
            (channel_id, username or "", f"@{username}" if username else "", title or ""),
        )
    ]
    return {
        "platform": platform, "channel_id": channel_id, "name": name, "title": title, "username": username,
        "kind": info[2] if info else None, "resolved_at": info[4] if info else None,
        "url": channel_url(platform, username),
        "total": total, "first": first[0] if first else None, "last": last[0] if last else None,
        "lag": ago(last[0] if last else None, now), "chart": bars(day_series(per_day, CHANNEL_DAYS)),
        "rules": rules, "recent": recent, "checkpoints": checkpoints,
        "sources": [s for s in sources(conn, now) if s["source"].split(":")[0] in (platform, "daemon")],
    }


def valid_platform(p: str) -> bool:
    return p in PLATFORMS

