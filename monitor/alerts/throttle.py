"""Throttling and repost grouping: the outbox policy the alerting layer installs on the archive.

For a rule with ``throttle:`` (``Hit.throttle_seconds``), the first hit in a channel is
alerted at once and opens a window of that length for the rule + channel. Further hits in
the window are stored as usual but get no alert of their own: they are counted into one
follow-up row per destination ("N more hits"), due at the window's end.

Identical text reposted in *other* channels while a window is open (same normalised text:
:func:`monitor.rules.normalize.normalize`, whitespace collapsed, SHA-256) is counted into
that window's follow-up too, instead of alerting once per channel.

Decision: grouping only applies to rules with a throttle, inside their windows. A rule
without ``throttle:`` alerts every hit, reposts included: whoever wrote it asked for that.

The window lives in the outbox itself: its follow-up rows are created with the first alert
(``kind='followup'``, ``status='pending'``, ``next_attempt_at`` = window end, ``count`` 0)
and found again through the ``(status, next_attempt_at)`` index. A window that ends with
no further hits has nothing to say: the worker marks its follow-up ``skipped``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Sequence

from ..archive import Archive
from ..config import Config
from ..model import Hit, Message, canonical_json, sha256_hex
from ..rules.normalize import normalize
from .render import channel_label, channel_url
from .timefmt import shift

MAX_LISTED_HITS = 1000  # hit ids kept in a follow-up payload (the count stays exact)


def text_fingerprint(text: str) -> str | None:
    """Hash of the normalised text (None for a post without text: never grouped)."""
    norm = " ".join(normalize(text or "").split())
    return sha256_hex(norm) if norm else None


class ThrottlePolicy:
    """``archive.outbox_policy``: ``(archive, hit_id, hit, msg, now) -> new outbox ids``.

    Runs inside the store transaction. ``default_destinations`` are used for hits whose
    ``destinations`` are empty.
    """

    def __init__(self, default_destinations: Sequence[str] = ()) -> None:
        self.default_destinations = tuple(default_destinations)

    def __call__(self, archive: Archive, hit_id: int, hit: Hit, msg: Message, now: str) -> list[int]:
        dests = list(dict.fromkeys(hit.destinations or self.default_destinations))
        if not dests:
            return []
        if not hit.throttle_seconds or hit.throttle_seconds <= 0:
            return _alerts(archive, hit_id, dests, now)
        fingerprint = text_fingerprint(msg.text)
        window = self._find_window(archive.conn, hit, msg, fingerprint, now)
        if window is not None:
            _count_into(archive.conn, window, hit_id)
            return []
        ids = _alerts(archive, hit_id, dests, now)
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
        for dest in dests:
            oid = archive.enqueue(
                hit_id,
                dest,
                kind="followup",
                payload=payload,
                dedup_key=f"followup:{window_key}:{dest}",
                due=payload["window_end"],
                now=now,
            )
            if oid is not None:
                ids.append(oid)
        return ids

    def _find_window(
        self, conn: sqlite3.Connection, hit: Hit, msg: Message, fingerprint: str | None, now: str
    ) -> list[tuple[int, dict[str, Any]]] | None:
        """The open window this hit belongs to (its follow-up rows), or None."""
        windows: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for oid, raw in conn.execute(
            "SELECT id, payload FROM outbox WHERE status = 'pending' AND next_attempt_at > ? AND kind = 'followup'"
            " AND json_extract(payload, '$.rule_id') = ? ORDER BY id",
            (now, hit.rule_id),
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


def _alerts(archive: Archive, hit_id: int, dests: Sequence[str], now: str) -> list[int]:
    ids = []
    for dest in dests:
        oid = archive.enqueue(hit_id, dest, kind="alert", now=now)
        if oid is not None:
            ids.append(oid)
    return ids


def _count_into(conn: sqlite3.Connection, rows: list[tuple[int, dict[str, Any]]], hit_id: int) -> None:
    for oid, payload in rows:
        payload["count"] = int(payload.get("count") or 0) + 1
        hit_ids = payload.setdefault("hit_ids", [])
        if len(hit_ids) < MAX_LISTED_HITS:
            hit_ids.append(hit_id)
        conn.execute(
            "UPDATE outbox SET payload = ? WHERE id = ? AND status = 'pending'", (canonical_json(payload), oid)
        )


def install(archive: Archive, cfg: Config | None = None) -> ThrottlePolicy:
    """Install the throttling policy on ``archive`` (defaults from ``cfg.alerts.default``)."""
    policy = ThrottlePolicy(cfg.alerts.default if cfg is not None else ())
    archive.outbox_policy = policy
    return policy
