"""Outbox SQL shared by the archive, the delivery worker, the daemon and the CLI: adding a
row, counting rows by status, handing back rows left ``sending``. Runs on the caller's
connection, inside the caller's transaction and lock."""

from __future__ import annotations

import sqlite3
from typing import Any, Mapping

from ..model import canonical_json
from .kinds import AlertKind, OutboxStatus


def enqueue(
    conn: sqlite3.Connection,
    hit_id: int | None,
    destination: str,
    *,
    kind: str,
    now: str,
    payload: Mapping[str, Any] | None = None,
    dedup_key: str | None = None,
    due: str | None = None,
) -> int | None:
    """Add a pending outbox row. Returns its id, or None if a row with the same dedup key
    exists already (default key: ``<kind>:<hit id>:<destination>``)."""
    if dedup_key is None and hit_id is not None:
        dedup_key = f"{kind}:{hit_id}:{destination}"
    cur = conn.execute(
        "INSERT OR IGNORE INTO outbox(hit_id, destination, kind, payload, status, attempts,"
        " next_attempt_at, created_at, dedup_key) VALUES (?,?,?,?,?, 0, ?, ?, ?)",
        (
            hit_id,
            destination,
            str(kind),
            canonical_json(payload) if payload is not None else None,
            OutboxStatus.PENDING,
            due or now,
            now,
            dedup_key,
        ),
    )
    return cur.lastrowid if cur.rowcount == 1 else None


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """``{status: rows}`` of the whole outbox."""
    return {s: n for s, n in conn.execute("SELECT status, count(*) FROM outbox GROUP BY status")}


def requeue_sending(conn: sqlite3.Connection, now: str, *, reason: str | None = None) -> int:
    """Rows a previous process left ``sending`` (it stopped mid-delivery) are due again at
    ``now``; ``reason`` (if given) becomes their ``last_error``. Returns how many."""
    if reason is None:
        return conn.execute(
            "UPDATE outbox SET status=?, next_attempt_at=? WHERE status=?",
            (OutboxStatus.PENDING, now, OutboxStatus.SENDING),
        ).rowcount
    return conn.execute(
        "UPDATE outbox SET status=?, next_attempt_at=?, last_error=? WHERE status=?",
        (OutboxStatus.PENDING, now, reason, OutboxStatus.SENDING),
    ).rowcount


__all__ = ["AlertKind", "OutboxStatus", "enqueue", "requeue_sending", "status_counts"]
