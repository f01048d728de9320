"""The scheduled digest: counts per rule, top channels and links to the latest hits.

The daemon schedules :func:`enqueue_digest` (APScheduler ``CronTrigger.from_crontab(
cfg.alerts.digest.cron)``); the digest is an outbox row like any alert (``kind='digest'``),
so it is retried and survives restarts. Hits are counted by when they were *detected*
(``hits.created_at``), in ``[now - digest.window, now)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..archive import Archive, utcnow
from ..config import Config
from ..model import make_url
from ..archive.columns import classifier_why, hit_score_sql, score_text
from .records import row_dict
from ..model import channel_label, channel_url
from .render import one_line
from ..timefmt import ts

TOP_CHANNELS = 10
LATEST_HITS = 20
TOP_INCIDENTS = 10


def build_digest(archive: Archive, since: datetime, until: datetime) -> dict[str, Any]:
    """The digest payload for hits detected in ``[since, until)``."""
    lo, hi = ts(since), ts(until)
    conn = archive.conn
    with archive.lock:
        total = conn.execute("SELECT count(*) FROM hits WHERE created_at >= ? AND created_at < ?", (lo, hi)).fetchone()[0]
        score = hit_score_sql(conn, "hits")
        # a learned classifier's hits (score set) are counted per kind under their rule id
        # ("Learned classifier: claim" and "…: statement" are two lines), with their mean probability
        rules = [
            {"rule_id": rid, "title": one_line(title or rid, 300), "level": level or "", "count": n,
             **({"score": round(mean, 4), "why": f"mean probability {score_text(mean)}"} if mean is not None else {})}
            for rid, title, level, n, mean in conn.execute(
                f"SELECT rule_id, max(title), max(level), count(*), avg({score}) FROM hits"
                " WHERE created_at >= ? AND created_at < ?"
                f" GROUP BY rule_id, CASE WHEN {score} IS NOT NULL THEN kind END ORDER BY count(*) DESC, rule_id, 2",
                (lo, hi),
            )
        ]
        channels = [
            {
                "platform": platform,
                "channel_id": cid,
                "channel": one_line(channel_label(platform, channel, title, cid), 200),
                "url": channel_url(platform, channel),
                "count": n,
            }
            for platform, cid, channel, title, n in conn.execute(
                "SELECT m.platform, m.channel_id, max(m.channel), max(m.channel_title), count(*)"
                " FROM hits h JOIN messages m ON m.id = h.message_rowid"
                " WHERE h.created_at >= ? AND h.created_at < ?"
                " GROUP BY m.platform, m.channel_id ORDER BY count(*) DESC, m.channel_id LIMIT ?",
                (lo, hi, TOP_CHANNELS),
            )
        ]
        cur = conn.execute(
            f"SELECT h.id AS hit_id, h.rule_id, h.title, h.level, h.kind, {hit_score_sql(conn)} AS score,"
            " h.created_at, m.platform, m.channel_id,"
            " m.channel, m.channel_title, m.message_id, m.url, m.date"
            " FROM hits h JOIN messages m ON m.id = h.message_rowid"
            " WHERE h.created_at >= ? AND h.created_at < ? ORDER BY h.created_at DESC, h.id DESC LIMIT ?",
            (lo, hi, LATEST_HITS),
        )
        latest_rows = [row_dict(cur, r) for r in cur.fetchall()]
        incidents = _incidents(conn, lo, hi)
    latest = [
        {
            "hit_id": r["hit_id"],
            "rule_id": r["rule_id"],
            "title": one_line(r["title"] or r["rule_id"], 300),
            "level": r["level"],
            "channel": one_line(channel_label(r["platform"], r["channel"], r["channel_title"], r["channel_id"]), 200),
            "url": r["url"] or make_url(r["platform"], r["channel"], r["channel_id"], r["message_id"]),
            "date": r["date"],
            "detected": r["created_at"],
            # a learned classifier's hit: "learned classifier: claim, probability 0.83" (else "")
            **({"score": r["score"], "why": classifier_why(r["kind"], r["score"])} if r["score"] is not None else {}),
        }
        for r in latest_rows
    ]
    return {"since": lo, "until": hi, "total_hits": total, "rules": rules, "channels": channels, "latest": latest,
            "incidents": incidents}


def _incidents(conn: Any, lo: str, hi: str) -> list[dict[str, Any]]:
    """The incidents of the messages with hits detected in the window (docs/incidents.md):
    their messages and channels in the window, and how many were reposts (copies of a text
    seen first elsewhere, which alert only once)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name='incident_messages'").fetchone() is None:
        return []
    return [
        {"id": iid, "title": one_line(title or f"incident {iid}", 200), "messages": n, "channels": ch, "reposts": rp}
        for iid, title, n, ch, rp in conn.execute(
            "SELECT im.incident_id, i.title, count(*), count(DISTINCT im.platform || ':' || im.channel_id),"
            " sum(CASE WHEN f.first_message_rowid <> im.message_rowid THEN 1 ELSE 0 END)"
            " FROM (SELECT DISTINCT message_rowid FROM hits WHERE created_at >= ? AND created_at < ?) w"
            " JOIN incident_messages im ON im.message_rowid = w.message_rowid"
            " JOIN incidents i ON i.id = im.incident_id LEFT JOIN families f ON f.id = im.family_id"
            " GROUP BY im.incident_id ORDER BY count(*) DESC, im.incident_id DESC LIMIT ?",
            (lo, hi, TOP_INCIDENTS),
        )
    ]


def enqueue_digest(archive: Archive, cfg: Config, now: datetime | None = None) -> int | None:
    """Queue the digest for ``cfg.alerts.digest`` covering the window before ``now``.

    Returns the outbox id, or None when no digest is configured or this one (same
    destination, same minute) was queued already.
    """
    digest = cfg.alerts.digest
    if digest is None:
        return None
    now = now or utcnow()
    payload = build_digest(archive, now - timedelta(seconds=digest.window), now)
    with archive.lock, archive.transaction():
        return archive.enqueue(
            None,
            digest.destination,
            kind="digest",
            payload=payload,
            dedup_key=f"digest:{digest.destination}:{now.strftime('%Y-%m-%dT%H:%MZ')}",
            now=ts(now),
        )
