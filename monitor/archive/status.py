"""Sources' health rows and the archive's counts (``claimwatch stats``)."""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any, Callable
from typing import Mapping

from ..alerts import queue
from ..timefmt import now_iso


class SourceStatus:
    """Source status and counts (a part of :class:`~monitor.archive.store.Archive`)."""

    conn: sqlite3.Connection
    lock: threading.RLock
    transaction: Callable[[], Any]

    def record_source_status(
        self,
        source: str,
        *,
        last_message_at: str | None = None,
        polled: bool = False,
        error: str | None = None,
        info: Mapping[str, Any] | None = None,
        error_count: int = 1,
    ) -> None:
        """Upsert a source's status row; ``error`` adds ``error_count`` errors (default 1)
        and becomes the last error."""
        now = now_iso()
        with self.lock, self.transaction():
            self.conn.execute(
                "INSERT INTO source_status(source, last_message_at, last_poll_at, errors, last_error, info,"
                " updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(source) DO UPDATE SET"
                " last_message_at=COALESCE(excluded.last_message_at, last_message_at),"
                " last_poll_at=COALESCE(excluded.last_poll_at, last_poll_at),"
                " errors=errors + excluded.errors, last_error=COALESCE(excluded.last_error, last_error),"
                " info=COALESCE(excluded.info, info), updated_at=excluded.updated_at",
                (source, last_message_at, now if polled else None, max(1, error_count) if error else 0, error,
                 json.dumps(info) if info is not None else None, now),
            )

    def stats(self) -> dict[str, Any]:
        c = self.conn
        total, first, last = c.execute("SELECT count(*), min(date), max(date) FROM messages").fetchone()
        by_channel = [
            {"platform": p, "channel_id": cid, "channel": ch, "messages": n, "first": f, "last": l}
            for p, cid, ch, n, f, l in c.execute(
                "SELECT platform, channel_id, max(coalesce(channel, channel_title, channel_id)), count(*),"
                " min(date), max(date) FROM messages GROUP BY platform, channel_id ORDER BY count(*) DESC"
            )
        ]
        by_platform = {p: n for p, n in c.execute("SELECT platform, count(*) FROM messages GROUP BY platform")}
        outbox = queue.status_counts(c)
        return {
            "messages": total,
            "versions": c.execute("SELECT count(*) FROM versions").fetchone()[0],
            "deleted": c.execute("SELECT count(*) FROM messages WHERE deleted_at IS NOT NULL").fetchone()[0],
            "hits": c.execute("SELECT count(*) FROM hits").fetchone()[0],
            "first_date": first,
            "last_date": last,
            "by_platform": by_platform,
            "by_channel": by_channel,
            "outbox": outbox,
        }
