"""The channel cache: resolved Telegram channels (ids, usernames, access hashes)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Callable

from ..timefmt import now_iso


class Channels:
    """The channel cache (a part of :class:`~monitor.archive.store.Archive`)."""

    conn: sqlite3.Connection
    lock: threading.RLock
    transaction: Callable[[], Any]

    def upsert_channel(
        self,
        platform: str,
        channel_id: str,
        *,
        username: str | None = None,
        title: str | None = None,
        kind: str | None = None,
        access_hash: str | None = None,
        resolved_from: str | None = None,
    ) -> None:
        now = now_iso()
        with self.lock, self.transaction():
            self.conn.execute(
                "INSERT INTO channels(platform, channel_id, username, title, kind, access_hash, resolved_from,"
                " resolved_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(platform, channel_id) DO UPDATE SET"
                " username=COALESCE(excluded.username, username), title=COALESCE(excluded.title, title),"
                " kind=COALESCE(excluded.kind, kind), access_hash=COALESCE(excluded.access_hash, access_hash),"
                " resolved_from=COALESCE(excluded.resolved_from, resolved_from),"
                " resolved_at=COALESCE(excluded.resolved_at, resolved_at), updated_at=excluded.updated_at",
                (platform, str(channel_id), username, title, kind, access_hash, resolved_from,
                 now if resolved_from else None, now),
            )

    def find_channel(self, platform: str, ref: str) -> dict[str, Any] | None:
        """Look up a cached channel by id, username (with or without @) or the ref it was resolved from."""
        ref_clean = ref.lstrip("@")
        row = self.conn.execute(
            "SELECT platform, channel_id, username, title, kind, access_hash, resolved_from FROM channels"
            " WHERE platform=? AND (channel_id=? OR lower(username)=lower(?) OR resolved_from=?) LIMIT 1",
            (platform, ref, ref_clean, ref),
        ).fetchone()
        if not row:
            return None
        keys = ("platform", "channel_id", "username", "title", "kind", "access_hash", "resolved_from")
        return dict(zip(keys, row))
