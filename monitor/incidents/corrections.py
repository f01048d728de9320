"""Analysts' corrections (merge, detach) and the full rebuild that re-applies them.

Corrections are recorded by *message keys* (``platform:channel_id:message_id``), not incident
ids, in ``incident_corrections``: a merge names the first message of each incident, a detach
the message and the first message of the incident it left. Later hits and re-imports never move
a message that is already in an incident, and :func:`rebuild` (which reassigns every message
from scratch, e.g. after a change of window) applies the recorded corrections again in order.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Callable

from .assign import BANDS_MARK, IncidentTracker, Incoming, _facet, _j, located_places, strongest_kind


REBUILD_FLUSH = 5000  # a rebuild writes its rows every so many messages (the tracker may then evict)


class CorrectionError(ValueError):
    """A correction that cannot be applied (unknown incident or message): one line."""


def resolve(conn: sqlite3.Connection, incident_id: int) -> int | None:
    """The live incident ``incident_id`` was merged into (itself if live); None if unknown."""
    seen = set()
    while True:
        row = conn.execute("SELECT merged_into FROM incidents WHERE id=?", (incident_id,)).fetchone()
        if row is None:
            return None
        if row[0] is None or incident_id in seen:
            return incident_id
        seen.add(incident_id)
        incident_id = row[0]


def _key_of(conn: sqlite3.Connection, rowid: int | None) -> str | None:
    if rowid is None:
        return None
    r = conn.execute("SELECT platform, channel_id, message_id FROM messages WHERE id=?", (rowid,)).fetchone()
    return ":".join(r) if r else None


def _rowid_of(conn: sqlite3.Connection, key: str) -> int | None:
    parts = key.split(":", 2)
    if len(parts) != 3:
        return None
    r = conn.execute(
        "SELECT id FROM messages WHERE platform=? AND channel_id=? AND message_id=?", tuple(parts)
    ).fetchone()
    return r[0] if r else None


def incident_of_key(conn: sqlite3.Connection, key: str) -> int | None:
    rowid = _rowid_of(conn, key)
    if rowid is None:
        return None
    r = conn.execute("SELECT incident_id FROM incident_messages WHERE message_rowid=?", (rowid,)).fetchone()
    return r[0] if r else None


def merge(conn: sqlite3.Connection, tracker: IncidentTracker, a: int, b: int, now: str, *, record: bool = True) -> int:
    """Move every message of incident ``b`` into ``a``; ``b`` then points at ``a``. Returns ``a``."""
    tracker.flush(conn)
    ra, rb = resolve(conn, a), resolve(conn, b)
    if ra is None:
        raise CorrectionError(f"no incident {a}")
    if rb is None:
        raise CorrectionError(f"no incident {b}")
    if ra == rb:
        raise CorrectionError(f"incidents {a} and {b} are already one incident ({ra})")
    if record:
        ka = _key_of(conn, conn.execute("SELECT first_message_rowid FROM incidents WHERE id=?", (ra,)).fetchone()[0])
        kb = _key_of(conn, conn.execute("SELECT first_message_rowid FROM incidents WHERE id=?", (rb,)).fetchone()[0])
        conn.execute(
            "INSERT INTO incident_corrections(action, message_key, other_key, created_at) VALUES ('merge', ?, ?, ?)",
            (kb, ka, now),
        )
    conn.execute("UPDATE incident_messages SET incident_id=? WHERE incident_id=?", (ra, rb))
    conn.execute("UPDATE families SET incident_id=? WHERE incident_id=?", (ra, rb))
    conn.execute("DELETE FROM incident_facets WHERE incident_id=?", (rb,))
    conn.execute(
        "UPDATE incidents SET merged_into=?, messages=0, channels=0, counts='{}', updated_at=? WHERE id=?",
        (ra, now, rb),
    )
    conn.execute("UPDATE incidents SET merged_into=? WHERE merged_into=?", (ra, rb))
    recompute(conn, tracker, ra, now)
    tracker.invalidate(conn)
    return ra


def detach(conn: sqlite3.Connection, tracker: IncidentTracker, incident_id: int, message_key: str, now: str, *,
           record: bool = True) -> int:
    """Take one message out of its incident into a new incident of its own. Returns the new id."""
    tracker.flush(conn)
    live = resolve(conn, incident_id)
    if live is None:
        raise CorrectionError(f"no incident {incident_id}")
    if len(message_key.split(":", 2)) != 3:
        raise CorrectionError(f"'{message_key}' is not a message key (PLATFORM:CHANNEL_ID:MESSAGE_ID)")
    rowid = _rowid_of(conn, message_key)
    if rowid is None:
        raise CorrectionError(f"no message {message_key} in the archive")
    row = conn.execute(
        "SELECT incident_id, family_id, date FROM incident_messages WHERE message_rowid=?", (rowid,)
    ).fetchone()
    if row is None or row[0] != live:
        raise CorrectionError(f"message {message_key} is not in incident {incident_id}")
    _old, family_id, date = row
    others = conn.execute(
        "SELECT message_rowid FROM incident_messages WHERE incident_id=? AND message_rowid<>? ORDER BY date, message_rowid"
        " LIMIT 1", (live, rowid),
    ).fetchone()
    if others is None:
        raise CorrectionError(f"message {message_key} is the only message of incident {incident_id}")
    if record:
        conn.execute(
            "INSERT INTO incident_corrections(action, message_key, other_key, created_at) VALUES ('detach', ?, ?, ?)",
            (message_key, _key_of(conn, others[0]), now),
        )
    new_id = conn.execute(
        "INSERT INTO incidents(title, start_at, end_at, first_message_rowid, counts, created_at, updated_at)"
        " VALUES ('', ?, ?, ?, '{}', ?, ?)", (date, date, rowid, now, now),
    ).lastrowid
    new_family = conn.execute(
        "INSERT INTO families(incident_id, first_message_rowid, first_date, members) VALUES (?,?,?,1)",
        (new_id, rowid, date),
    ).lastrowid
    conn.execute(
        "UPDATE incident_messages SET incident_id=?, family_id=?, how='detached' WHERE message_rowid=?",
        (new_id, new_family, rowid),
    )
    # later copies of its text follow it
    from .families import fingerprint, words

    text = conn.execute("SELECT text FROM messages WHERE id=?", (rowid,)).fetchone()[0]
    fp = fingerprint(words(text))
    if fp is not None:
        conn.execute("UPDATE family_texts SET family_id=? WHERE fingerprint=? AND family_id=?", (new_family, fp, family_id))
    _recompute_family(conn, family_id)
    recompute(conn, tracker, live, now)
    recompute(conn, tracker, new_id, now)
    tracker.invalidate(conn)
    return new_id


def _recompute_family(conn: sqlite3.Connection, family_id: int) -> None:
    first = conn.execute(
        "SELECT message_rowid, date FROM incident_messages WHERE family_id=? ORDER BY date, message_rowid LIMIT 1",
        (family_id,),
    ).fetchone()
    n = conn.execute("SELECT count(*) FROM incident_messages WHERE family_id=?", (family_id,)).fetchone()[0]
    if first is None:
        conn.execute("UPDATE families SET members=0 WHERE id=?", (family_id,))
        return
    conn.execute("UPDATE families SET first_message_rowid=?, first_date=?, members=? WHERE id=?",
                 (first[0], first[1], n, family_id))


def recompute(conn: sqlite3.Connection, tracker: IncidentTracker, incident_id: int, now: str) -> None:
    """Rebuild an incident's row and facets from its messages (after a correction)."""
    rows = conn.execute(
        "SELECT message_rowid, date, platform, channel_id, kind, actors, places FROM incident_messages"
        " WHERE incident_id=? ORDER BY date, message_rowid", (incident_id,),
    ).fetchall()
    conn.execute("DELETE FROM incident_facets WHERE incident_id=?", (incident_id,))
    if not rows:
        return
    counts: dict[str, int] = {}
    channels = set()
    gp = tracker.gazetteer.places
    for _rowid, _date, platform, channel_id, kind, actors_j, places_j in rows:
        counts[kind] = counts.get(kind, 0) + 1
        channels.add((platform, channel_id))
        places = [gp[p] for p in json.loads(places_j) if p in gp]
        for pid, located, country in located_places(places):
            _facet(conn, incident_id, "place", pid, located)
            if country:
                _facet(conn, incident_id, "place", country, 1, mention=False)
        for a in json.loads(actors_j):
            _facet(conn, incident_id, "actor", a, 0)
    conn.execute(
        "UPDATE incidents SET start_at=?, end_at=?, first_message_rowid=?, counts=?, messages=?, channels=?,"
        " updated_at=? WHERE id=?",
        (rows[0][1], max(r[1] for r in rows), rows[0][0], _j(counts), len(rows), len(channels), now, incident_id),
    )
    for (fid,) in conn.execute("SELECT DISTINCT family_id FROM incident_messages WHERE incident_id=?", (incident_id,)).fetchall():
        _recompute_family(conn, fid)
    tracker._refresh_summary(conn, incident_id, now)


def apply_corrections(conn: sqlite3.Connection, tracker: IncidentTracker, now: str) -> int:
    """Apply the recorded corrections again, in order (after :func:`rebuild`). Returns how many applied."""
    applied = 0
    for action, key, other in conn.execute(
        "SELECT action, message_key, other_key FROM incident_corrections ORDER BY id"
    ).fetchall():
        a, b = incident_of_key(conn, other), incident_of_key(conn, key)
        if a is None or b is None:
            continue
        a, b = resolve(conn, a), resolve(conn, b)
        if action == "merge" and a != b:
            merge(conn, tracker, a, b, now, record=False)
            applied += 1
        elif action == "detach" and a == b:
            detach(conn, tracker, a, key, now, record=False)
            applied += 1
    return applied


def rebuild(archive: Any, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Reassign every message with hits, in date order, then re-apply the corrections."""
    from ..timefmt import now_iso

    tracker: IncidentTracker = archive.incidents or IncidentTracker()
    conn = archive.conn
    now = now_iso()
    with archive.lock, archive.transaction():
        # alert threads follow their first alert's message into its new incident (below)
        threads = conn.execute("SELECT destination, ref, outbox_id, created_at FROM incident_threads").fetchall()
        for table in ("incident_threads", "incident_messages", "family_bands", "family_texts", "families",
                      "incident_facets", "incidents"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM meta WHERE key=?", (BANDS_MARK,))  # no text's band keys are written
        tracker.invalidate(conn)
        total = conn.execute("SELECT count(DISTINCT message_rowid) FROM hits").fetchone()[0]
        done = 0
        for rowid, platform, channel_id, message_id, date, text, fwd, kinds, rules, actors in conn.execute(
            "SELECT m.id, m.platform, m.channel_id, m.message_id, m.date, m.text, m.forwarded_from,"
            " group_concat(h.kind, ','), group_concat(h.rule_id, char(31)), json_group_array(json(coalesce(h.actors, '[]')))"
            " FROM hits h JOIN messages m ON m.id = h.message_rowid GROUP BY m.id ORDER BY m.date, m.id"
        ).fetchall():
            acts: list[str] = []
            for lst in json.loads(actors):
                for a in lst:
                    if a not in acts:
                        acts.append(a)
            tracker.queue(Incoming(
                rowid, platform, channel_id, message_id, date, text or "",
                json.loads(fwd) if fwd else None, strongest_kind(kinds.split(",")),
                sorted(set(rules.split("\x1f"))), acts,
            ), now)
            done += 1
            if done % REBUILD_FLUSH == 0:
                tracker.flush(conn)  # assigns them (one batch) and writes the rows (same transaction): it may evict
            if progress and done % 1000 == 0:
                progress(done, total)
        tracker.flush(conn)
        applied = apply_corrections(conn, tracker, now)
        tracker.invalidate(conn)
        for destination, ref, outbox_id, created_at in threads:
            conn.execute(
                "INSERT OR IGNORE INTO incident_threads(incident_id, destination, ref, outbox_id, created_at)"
                " SELECT im.incident_id, ?, ?, o.id, ? FROM outbox o JOIN hits h ON h.id = o.hit_id"
                " JOIN incident_messages im ON im.message_rowid = h.message_rowid WHERE o.id = ?",
                (destination, ref, created_at, outbox_id),
            )
    incidents = conn.execute("SELECT count(*) FROM incidents WHERE merged_into IS NULL").fetchone()[0]
    return {"messages": done, "incidents": incidents, "corrections": applied}
