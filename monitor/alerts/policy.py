"""Which outbox rows a stored event creates: the ONE outbox policy.

:class:`monitor.archive.Archive` calls it inside the store transaction on every path that
writes with alerts (``claimwatch import --alert``, the daemon's pipeline, Telegram and X
backfill through the pipeline), so the same messages leave the same outbox rows whichever
way they arrived:

* the new hits of a stored message -> ONE ``alert`` row per destination (``Hit.destinations``,
  else the policy's ``default_destinations``) listing every hit routed there, however many
  rules matched: the row's ``hit_id`` is the lead hit (the highest level, then rule order),
  which gives the alert its level, title and kind; the others are in its payload
  (``{"hit_ids": [lead, …]}``, absent when the alert has one hit). Subject to throttling and
  repost grouping below;
* an edit that changed the text of a message with an earlier hit -> one ``edited`` row
  (previous and new text) per destination that got an alert for that message;
* a deletion of such a message -> one ``deleted`` row per destination likewise.

Throttling and repost grouping: for a rule with ``throttle:`` (``Hit.throttle_seconds``),
the first hit in a channel is alerted at once and opens a window of that length for the
rule + channel. Further hits in the window are stored as usual but get no alert of their
own: they are counted into one follow-up row per destination ("N more hits"), due at the
window's end (and are not listed in the alert another rule's hit of the same message makes).
Identical text reposted in *other* channels while a window is open (same normalised text,
whitespace collapsed, SHA-256) is counted into that window's follow-up too.
Grouping only applies to rules with a throttle, inside their windows: a rule without
``throttle:`` alerts every hit, reposts included.

The window lives in the outbox itself: its follow-up rows are created with the first alert
(``kind='followup'``, ``status='pending'``, ``next_attempt_at`` = window end, ``count`` 0)
and found again through the ``(status, next_attempt_at)`` index. A window that ends with
no further hits has nothing to say: the worker marks its follow-up ``skipped``.

This module imports nothing of the archive (the archive imports it): it works on the
archive object it is handed.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any, Sequence

from ..model import LEVELS, Hit, Message, canonical_json, channel_label, channel_url, sha256_hex
from ..text import normalize
from ..timefmt import shift
from .kinds import AlertKind, OutboxStatus

if TYPE_CHECKING:  # pragma: no cover
    from ..archive import Archive
    from ..config import Config

MAX_LISTED_HITS = 1000  # hit ids kept in a follow-up payload (the count stays exact)


def text_fingerprint(text: str) -> str | None:
    """Hash of the normalised text (None for a post without text: never grouped)."""
    norm = " ".join(normalize(text or "").split())
    return sha256_hex(norm) if norm else None


class OutboxPolicy:
    """The outbox rows of new hits, edits and deletions (runs inside the store transaction).

    ``default_destinations`` are used for hits whose ``destinations`` are empty
    (``alerts.default`` of the config: :meth:`from_config`).
    """

    def __init__(self, default_destinations: Sequence[str] = ()) -> None:
        self.default_destinations = tuple(default_destinations)

    @classmethod
    def from_config(cls, cfg: "Config | None") -> "OutboxPolicy":
        return cls(cfg.alerts.default if cfg is not None else ())

    # -- new hits -------------------------------------------------------------
    def on_hits(self, archive: "Archive", hits: Sequence[tuple[int, Hit]], msg: Message, now: str) -> list[int]:
        """Outbox ids for the hits (``(hit id, hit)``, in rule order) of one message stored
        for the first time: one alert per destination listing the hits routed there, and
        the throttle windows the alerted throttled hits open."""
        routed = [(hit_id, hit, tuple(dict.fromkeys(hit.destinations or self.default_destinations)))
                  for hit_id, hit in hits]
        routed = [item for item in routed if item[2]]
        if not routed:
            return []
        fingerprint = text_fingerprint(msg.text) if any(h.throttle_seconds for _i, h, _d in routed) else None
        alerted = []
        for hit_id, hit, dests in routed:
            if hit.throttle_seconds and hit.throttle_seconds > 0:
                window = _find_window(archive.conn, hit, msg, fingerprint, now)
                if window is not None:
                    _count_into(archive.conn, window, hit_id)
                    continue
            alerted.append((hit_id, hit, dests))
        ids = _alerts(archive, alerted, now)
        for hit_id, hit, dests in alerted:
            if hit.throttle_seconds and hit.throttle_seconds > 0:
                ids.extend(_open_window(archive, hit_id, hit, dests, msg, fingerprint, now))
        return ids

    # -- edits and deletions --------------------------------------------------
    def on_edit(self, archive: "Archive", message_rowid: int, previous_text: str | None, now: str) -> list[int]:
        """Outbox ids for a message whose text changed (a new version): an ``edited``
        follow-up, only when an earlier text of the message had a hit."""
        conn = archive.conn
        new_text = conn.execute("SELECT text FROM messages WHERE id=?", (message_rowid,)).fetchone()[0]
        had_hit = conn.execute(
            "SELECT 1 FROM hits WHERE message_rowid=? AND text_sha256 != ? LIMIT 1",
            (message_rowid, sha256_hex(new_text)),
        ).fetchone()
        if had_hit is None:
            return []
        return _followup(archive, message_rowid, AlertKind.EDITED,
                         {"previous_text": previous_text, "new_text": new_text}, now)

    def on_delete(self, archive: "Archive", message_rowid: int, now: str) -> list[int]:
        """Outbox ids for a message just marked deleted: a ``deleted`` follow-up."""
        text = archive.conn.execute("SELECT text FROM messages WHERE id=?", (message_rowid,)).fetchone()[0]
        return _followup(archive, message_rowid, AlertKind.DELETED, {"previous_text": text, "new_text": None}, now)


def _followup(archive: "Archive", message_rowid: int, kind: AlertKind, payload: dict[str, Any], now: str) -> list[int]:
    """One follow-up per destination that alerted on a hit of this message (about the lead
    hit of the first alert there)."""
    rows = archive.conn.execute(
        "SELECT o.hit_id, o.destination, min(o.id) FROM hits h JOIN outbox o ON o.hit_id = h.id"
        " WHERE h.message_rowid=? AND o.kind = 'alert' GROUP BY o.destination ORDER BY 3",
        (message_rowid,),
    ).fetchall()
    ids = []
    version = sha256_hex(payload.get("new_text") or "")
    for hit_id, destination, _first in rows:
        # One follow-up per message, destination and new text (or deletion).
        key = f"{kind}:{message_rowid}:{destination}:{version}"
        oid = archive.enqueue(hit_id, destination, kind=kind, payload=payload, dedup_key=key, now=now)
        if oid is not None:
            ids.append(oid)
    return ids


def level_rank(level: str) -> int:
    """Order of a hit's level (higher is more urgent; an unknown level ranks lowest)."""
    return LEVELS.index(level) if level in LEVELS else -1


def _alerts(archive: "Archive", hits: Sequence[tuple[int, Hit, Sequence[str]]], now: str) -> list[int]:
    """One alert row per destination (in order of first mention) for the hits routed there,
    the highest level first, a rule's hit before a learned classifier's (``Hit.score`` set) of
    the same level (``sorted`` is stable: rule order among equals)."""
    per_dest: dict[str, list[tuple[int, Hit]]] = {}
    for hit_id, hit, dests in hits:
        for dest in dests:
            per_dest.setdefault(dest, []).append((hit_id, hit))
    ids = []
    for dest, listed in per_dest.items():
        # a rule's hit leads a learned classifier's of the same level (its terms say more)
        listed = sorted(listed, key=lambda item: (-level_rank(item[1].level), item[1].score is not None))
        payload = {"hit_ids": [hit_id for hit_id, _hit in listed]} if len(listed) > 1 else None
        oid = archive.enqueue(listed[0][0], dest, kind=AlertKind.ALERT, payload=payload, now=now)
        if oid is not None:
            ids.append(oid)
    return ids


def _open_window(archive: "Archive", hit_id: int, hit: Hit, dests: Sequence[str], msg: Message,
                 fingerprint: str | None, now: str) -> list[int]:
    """The follow-up rows (one per destination) of the throttle window an alerted hit opens."""
    window_key = f"{hit.rule_id}|{msg.platform}|{msg.channel_id}|{now}"
    payload = {
        "window_key": window_key,
        "rule_id": hit.rule_id,
        "title": hit.title,
        "level": hit.level,
        "platform": msg.platform,
        "channel_id": msg.channel_id,
        "channel": channel_label(msg.platform, msg.channel, msg.channel_title, msg.channel_id),
        "channel_url": channel_url(msg.platform, msg.channel),
        "window_start": now,
        "window_end": shift(now, hit.throttle_seconds),
        "window_seconds": hit.throttle_seconds,
        "first_hit_id": hit_id,
        "text_fingerprint": fingerprint,
        "count": 0,
        "hit_ids": [],
    }
    ids = []
    for dest in dests:
        oid = archive.enqueue(
            hit_id,
            dest,
            kind=AlertKind.FOLLOWUP,
            payload=payload,
            dedup_key=f"followup:{window_key}:{dest}",
            due=payload["window_end"],
            now=now,
        )
        if oid is not None:
            ids.append(oid)
    return ids


def _find_window(
    conn: sqlite3.Connection, hit: Hit, msg: Message, fingerprint: str | None, now: str
) -> list[tuple[int, dict[str, Any]]] | None:
    """The open window this hit belongs to (its follow-up rows), or None."""
    windows: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for oid, raw in conn.execute(
        "SELECT id, payload FROM outbox WHERE status = ? AND next_attempt_at > ? AND kind = ?"
        " AND json_extract(payload, '$.rule_id') = ? ORDER BY id",
        (OutboxStatus.PENDING, now, AlertKind.FOLLOWUP, hit.rule_id),
    ):
        payload = json.loads(raw)
        if payload.get("window_end", "") <= now:
            continue  # a follow-up being retried, its window is over
        windows.setdefault(payload["window_key"], []).append((oid, payload))
    same_channel = None
    repost = None
    for rows in windows.values():
        p = rows[0][1]
        if p.get("platform") == msg.platform and str(p.get("channel_id")) == str(msg.channel_id):
            same_channel = rows
        elif repost is None and fingerprint is not None and p.get("text_fingerprint") == fingerprint:
            repost = rows
    return same_channel or repost


def _count_into(conn: sqlite3.Connection, rows: list[tuple[int, dict[str, Any]]], hit_id: int) -> None:
    for oid, payload in rows:
        payload["count"] = int(payload.get("count") or 0) + 1
        hit_ids = payload.setdefault("hit_ids", [])
        if len(hit_ids) < MAX_LISTED_HITS:
            hit_ids.append(hit_id)
        conn.execute(
            "UPDATE outbox SET payload = ? WHERE id = ? AND status = ?",
            (canonical_json(payload), oid, OutboxStatus.PENDING),
        )
