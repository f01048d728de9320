"""Sources' checkpoints: where each source (and channel) has read up to."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Callable

from ..timefmt import now_iso


class Checkpoints:
    """Checkpoint reads and writes (a part of :class:`~monitor.archive.store.Archive`)."""

    conn: sqlite3.Connection
    lock: threading.RLock
    transaction: Callable[[], Any]

    def _set_checkpoint(self, source: str, channel: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO checkpoints(source, channel, value, updated_at) VALUES (?,?,?,?)"
            " ON CONFLICT(source, channel) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
            (source, channel, str(value), now_iso()),
        )

    def set_checkpoint(self, source: str, channel: str, value: str) -> None:
        with self.lock, self.transaction():
            self._set_checkpoint(source, channel, value)

    def get_checkpoint(self, source: str, channel: str) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM checkpoints WHERE source=? AND channel=?", (source, channel)
        ).fetchone()
        return row[0] if row else None

    def checkpoints(self, source: str | None = None) -> dict[tuple[str, str], str]:
        sql = "SELECT source, channel, value FROM checkpoints"
        args: tuple = ()
        if source is not None:
            sql += " WHERE source=?"
            args = (source,)
        return {(s, c): v for s, c, v in self.conn.execute(sql, args)}
