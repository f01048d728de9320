"""What the alerting layer asks of incidents (docs/alerts.md, "Incidents").

All of it runs in the delivery worker, after the hits' transaction committed (the incident
tables are then complete), never in the store path:

* :func:`alert_incident` - the incident of an alert's hit, and for the *first claim* of an
  incident in which officials had already blamed others, the facts of the note "claim by
  Islamic State, 24h after the first report; officials blamed Israel, United States at T+2h";
* :func:`alerted_copy` - was another copy of this text (same family) already alerted to this
  destination? Then the repost is not alerted again (it is counted in the incident and the
  digest);
* :func:`thread_of` / :func:`record_thread` - the conversation an incident's alerts continue
  per destination: the Slack ``ts`` or the email ``Message-ID`` of its first alert
  (``incident_threads``).
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any, Mapping

from ..timefmt import compact_duration, offset

_ACTIVE = ("sent", "sending", "pending")


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name='incident_threads'").fetchone() is not None


def alert_incident(conn: sqlite3.Connection, hit_id: int) -> dict[str, Any] | None:
    """``{"id", "title", "family", "note"}`` for the incident of hit ``hit_id`` (None when the
    hit's message is in none). ``note`` (or None): ``claimants`` (actor ids), ``after`` (time
    since the incident's first message, ``24h``), ``blamed`` (actor ids) and ``blamed_at``
    (offset of the first statement that named them, ``T+2h``)."""
    if not _has_tables(conn):
        return None
    row = conn.execute(
        "SELECT im.incident_id, im.family_id, im.kind, im.date, im.message_rowid, h.kind, h.actors"
        " FROM hits h JOIN incident_messages im ON im.message_rowid = h.message_rowid WHERE h.id=?",
        (hit_id,),
    ).fetchone()
    if row is None:
        return None
    incident_id, family_id, _msg_kind, date, rowid, hit_kind, hit_actors = row
    inc = conn.execute("SELECT title, start_at, places FROM incidents WHERE id=?", (incident_id,)).fetchone()
    if inc is None:
        return None
    title, start, places = inc
    out: dict[str, Any] = {"id": incident_id, "title": title, "family": family_id, "note": None}
    if hit_kind != "claim":
        return out
    earlier_claim = conn.execute(
        "SELECT 1 FROM incident_messages WHERE incident_id=? AND kind='claim' AND (date < ? OR (date = ? AND message_rowid < ?))"
        " LIMIT 1",
        (incident_id, date, date, rowid),
    ).fetchone()
    if earlier_claim is not None:
        return out
    home = _home_actors(json.loads(places or "[]"))
    # the claim's actors, without the country it happened in ("… in Kerman, Iran" names Iran)
    claimants = [a for a in (json.loads(hit_actors) if hit_actors else []) if not _is_home(a, home)]
    blamed: list[str] = []
    blamed_at = None
    for s_date, s_actors in conn.execute(
        "SELECT date, actors FROM incident_messages WHERE incident_id=? AND kind='statement' AND date <= ?"
        " AND message_rowid <> ? ORDER BY date, message_rowid",
        (incident_id, date, rowid),
    ):
        named = [a for a in json.loads(s_actors) if a not in claimants and not _is_home(a, home)]
        if named and blamed_at is None:
            blamed_at = offset(start, s_date)
        blamed += [a for a in named if a not in blamed]
    if not blamed:
        return out
    secs = _seconds(start, date)
    out["note"] = {"claimants": claimants, "after": _after(secs), "blamed": blamed, "blamed_at": blamed_at}
    return out


def _after(secs: float) -> str:
    """``24h``, ``26h30m`` (hours up to two days: how analysts say it), then ``3d4h``."""
    if secs < 2 * 86400:
        h, rem = divmod(int(secs), 3600)
        m = rem // 60
        return f"{h}h{m}m" if h and m else (f"{h}h" if h else f"{m}m")
    return compact_duration(secs)


def note_text(note: Mapping[str, Any], titles: Mapping[str, str]) -> str:
    """The note as one line, actor ids shown by their titles."""
    def names(ids: list[str]) -> str:
        return ", ".join(_short(titles.get(a, a)) for a in ids)

    claimants = list(note.get("claimants") or [])
    # a member named with its group ("Amaq News Agency (Islamic State)" next to "Islamic
    # State"): the group says it
    shown = [titles.get(a, a) for a in claimants]
    claimants = [a for a, t in zip(claimants, shown) if not any(o != t and t.endswith(f"({o})") for o in shown)]
    who = f"claim by {names(claimants)}" if claimants else "claim"
    return f"{who}, {note['after']} after the first report; officials blamed {names(note['blamed'])} at {note['blamed_at']}"


def _short(title: str) -> str:
    """``Iran (government)`` -> ``Iran``, ``Islamic State (IS, ISIS, Daesh) and its provinces`` ->
    ``Islamic State``: a title's bracketed gloss, and what follows it, is left out of the note."""
    return re.sub(r"\s*\(.*$", "", title, flags=re.S).strip() or title


def _home_actors(places: list[str]) -> set[str]:
    """Lower-case slugs of the names of the incident's countries (and cities' countries): an
    actor named like the country where it happened speaks for it, it is not blamed."""
    from .gazetteer import load

    gp = load().places
    out = set()
    for pid in places:
        p = gp.get(pid)
        if p is None:
            continue
        country = gp.get(p.country_id)
        for name in (p.name if p.kind == "country" else None, country.name if country else None):
            if name:
                out.add(_slug(name))
    return out


def _is_home(actor: str, home: set[str]) -> bool:
    slug = _slug(actor)
    return any(slug == h or slug.startswith(h + "-") for h in home)


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def _seconds(a: str, b: str) -> float:
    from ..timefmt import parse_iso

    return (parse_iso(b) - parse_iso(a)).total_seconds()


def alerted_copy(conn: sqlite3.Connection, outbox_row: Mapping[str, Any]) -> int | None:
    """The id of an earlier alert row (same destination, not failed) for another message of the
    same repost family as this alert's hit; None when there is none."""
    if outbox_row.get("hit_id") is None or not _has_tables(conn):
        return None
    row = conn.execute(
        "SELECT im.family_id, im.message_rowid FROM hits h JOIN incident_messages im ON im.message_rowid = h.message_rowid"
        " WHERE h.id=?",
        (outbox_row["hit_id"],),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    family_id, rowid = row
    got = conn.execute(
        "SELECT o.id FROM outbox o WHERE o.hit_id IN (SELECT h.id FROM incident_messages im JOIN hits h"
        " ON h.message_rowid = im.message_rowid WHERE im.family_id=? AND im.message_rowid <> ?)"
        f" AND o.kind='alert' AND o.destination=? AND o.id < ? AND +o.status IN ({','.join('?' * len(_ACTIVE))})"
        " ORDER BY o.id LIMIT 1",
        (family_id, rowid, outbox_row["destination"], outbox_row["id"], *_ACTIVE),
    ).fetchone()
    return got[0] if got else None


def thread_of(conn: sqlite3.Connection, incident_id: int, destination: str) -> str | None:
    """The thread reference of an incident at a destination (an incident merged into this one
    brings its thread along)."""
    if not _has_tables(conn):
        return None
    row = conn.execute(
        "SELECT t.ref FROM incident_threads t JOIN incidents i ON i.id = t.incident_id"
        " WHERE (i.id = ? OR i.merged_into = ?) AND t.destination = ? ORDER BY t.created_at, t.outbox_id LIMIT 1",
        (incident_id, incident_id, destination),
    ).fetchone()
    return row[0] if row else None


def record_thread(conn: sqlite3.Connection, incident_id: int, destination: str, ref: str, outbox_id: int | None,
                  now: str) -> None:
    """Remember the first alert of an incident at a destination (kept if one is known)."""
    if not _has_tables(conn):
        return
    conn.execute(
        "INSERT OR IGNORE INTO incident_threads(incident_id, destination, ref, outbox_id, created_at) VALUES (?,?,?,?,?)",
        (incident_id, destination, ref, outbox_id, now),
    )
