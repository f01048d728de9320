"""Incremental assignment of messages with hits to incidents (docs/incidents.md).

:class:`IncidentTracker` is installed on an :class:`~monitor.archive.Archive`
(``archive.incidents``); the archive calls :meth:`IncidentTracker.on_hits` from
``Archive._store_hits``, inside the store transaction, for every message that got new hits:
import, daemon and backfill all pass there, so an incident is never out of step with its hits.

A message joins, in this order:

1. the **family** of a text it copies: Telegram/X's ``forwarded_from`` names a message in an
   incident, or the same normalised text, or a near-duplicate (MinHash/LSH,
   :mod:`.families`). Any time: a repost a week later still joins its incident;
2. an incident active within ``window`` of its date (default 72 h from the incident's last
   message) that names a **place** it names: a shared city; a country when the message names no
   city (or only a capital, standing for its government: "Tehran blamed Washington"). Two
   incidents in different cities never share a message by place;
3. with no place: an incident active within ``actor_window`` that shares an **actor**;
4. otherwise it opens a new incident (and a new family).

A message already in an incident stays there (new hits on it, re-imports and edits update its
kind, rules and actors only); the analysts' corrections (:mod:`.corrections`) move messages.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence

from . import families as fam
from .gazetteer import Gazetteer, Place, load as load_gazetteer

KINDS = ("claim", "statement", "denial", "report", "watch")
_KIND_RANK = {k: i for i, k in enumerate(KINDS)}
_UNSET = object()
NEAR_CANDIDATES = 16  # LSH candidates verified per new text


def strongest_kind(kinds: Iterable[str]) -> str:
    best = "watch"
    for k in kinds:
        if _KIND_RANK.get(k, 9) < _KIND_RANK[best]:
            best = k
    return best


@dataclass(frozen=True)
class Settings:
    window: float = 72 * 3600.0
    actor_window: float = 24 * 3600.0

    @classmethod
    def from_config(cls, cfg: Any) -> "Settings":
        inc = getattr(cfg, "incidents", None)
        if inc is None:
            return cls()
        return cls(window=inc.window, actor_window=inc.actor_window)


@dataclass
class Incoming:
    """What assignment needs of a message (from a prepared archive row or a messages row)."""

    rowid: int
    platform: str
    channel_id: str
    message_id: str
    date: str  # ISO, Z
    text: str
    forwarded_from: Mapping[str, Any] | None
    kind: str
    rules: list[str]
    actors: list[str]

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.channel_id}:{self.message_id}"


def parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def fmt_iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def bare_channel_id(cid: Any) -> str:
    """``-1001234``, ``channel1234``, ``1234`` -> ``1234`` (Telegram peer ids as exports, the
    live collector and ``forwarded_from`` write them)."""
    s = str(cid or "")
    for prefix in ("channel", "chat", "user"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    if s.startswith("-100"):
        s = s[4:]
    return s.lstrip("-")


class IncidentTracker:
    """Keeps the incident tables up to date; one per archive connection."""

    def __init__(self, settings: Settings | None = None, gazetteer: Gazetteer | None = None) -> None:
        self.settings = settings or Settings()
        self._gaz = gazetteer

    @property
    def gazetteer(self) -> Gazetteer:
        if self._gaz is None:
            self._gaz = load_gazetteer()
        return self._gaz

    # -- entry point from the archive ----------------------------------------------------
    def on_hits(self, conn: sqlite3.Connection, rowid: int, row: Sequence[Any] | None, hits: Sequence[Any],
                now: str) -> int | None:
        """Assign message ``rowid`` (its archive row values, see :mod:`monitor.archive.rows`)
        with its new ``hits``; returns the incident id."""
        if not hits:
            return None
        if row is None:
            r = conn.execute(
                "SELECT platform, channel_id, message_id, date, text, forwarded_from FROM messages WHERE id=?", (rowid,)
            ).fetchone()
            platform, channel_id, message_id, date, text, fwd = r
        else:
            platform, channel_id, message_id, date, text, fwd = row[0], row[1], row[2], row[5], row[8], row[12]
        fwd_d = json.loads(fwd) if isinstance(fwd, str) and fwd else (fwd if isinstance(fwd, Mapping) else None)
        actors: list[str] = []
        for h in hits:
            for a in getattr(h, "actors", ()) or ():
                if a not in actors:
                    actors.append(a)
        inc = Incoming(
            rowid=rowid, platform=platform, channel_id=str(channel_id), message_id=str(message_id), date=date,
            text=text or "", forwarded_from=fwd_d,
            kind=strongest_kind(getattr(h, "kind", "watch") or "watch" for h in hits),
            rules=sorted({h.rule_id for h in hits}), actors=actors,
        )
        return self.assign(conn, inc, now)

    # -- assignment -------------------------------------------------------------------------
    def assign(self, conn: sqlite3.Connection, m: Incoming, now: str, *, barred: set[int] | None = None) -> int:
        existing = conn.execute(
            "SELECT incident_id, kind, rules, actors FROM incident_messages WHERE message_rowid=?", (m.rowid,)
        ).fetchone()
        if existing is not None:
            return self._update_member(conn, m, existing, now)
        ws = fam.words(m.text)
        fp = fam.fingerprint(ws)
        sig: Any = _UNSET
        family_id, how, origin = None, "", None
        # 1. the family of a text it copies
        fwd_keys = self._forward_keys(m)
        if fwd_keys:
            origin = fwd_keys[1]
            family_id = self._forward_origin_family(conn, m)
            if family_id is None:
                family_id = _text_family(conn, fwd_keys[0])
            how = "forward" if family_id is not None else ""
        if family_id is None and fp is not None:
            family_id = _text_family(conn, fp)
            how = "copy" if family_id is not None else ""
        if family_id is None:
            sig = fam.signature(ws)
            if sig is not None:
                family_id = self._near_family(conn, sig)
                how = "near-copy" if family_id is not None else ""
        if family_id is not None:
            incident_id = conn.execute("SELECT incident_id FROM families WHERE id=?", (family_id,)).fetchone()[0]
            if barred and incident_id in barred:
                family_id, how = None, ""
        places: list[Place] = self.gazetteer.find(m.text)
        if family_id is None:
            incident_id, how = self._choose(conn, m, places, barred or set())
            if incident_id is None:
                incident_id = self._new_incident(conn, m, now)
                how = "new"
        # the family: a new one, or the copy joins (the text is indexed once)
        if family_id is None:
            family_id = conn.execute(
                "INSERT INTO families(incident_id, first_message_rowid, first_date, members) VALUES (?,?,?,0)",
                (incident_id, m.rowid, m.date),
            ).lastrowid
        self._index_text(conn, family_id, fp, sig, ws, fwd_keys[0] if fwd_keys else None)
        conn.execute(
            "INSERT INTO incident_messages(message_rowid, incident_id, family_id, date, platform, channel_id, kind,"
            " rules, actors, places, how, origin, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (m.rowid, incident_id, family_id, m.date, m.platform, m.channel_id, m.kind, _j(m.rules), _j(m.actors),
             _j([p.id for p in places]), how, origin, now),
        )
        conn.execute(
            "UPDATE families SET members = members + 1,"
            " first_message_rowid = CASE WHEN ? < first_date THEN ? ELSE first_message_rowid END,"
            " first_date = min(first_date, ?) WHERE id=?",
            (m.date, m.rowid, m.date, family_id),
        )
        self._add_to_incident(conn, incident_id, m, places, now)
        return incident_id

    def _update_member(self, conn: sqlite3.Connection, m: Incoming, existing: tuple, now: str) -> int:
        incident_id, old_kind, rules_j, actors_j = existing
        rules = sorted(set(json.loads(rules_j)) | set(m.rules))
        actors = list(dict.fromkeys([*json.loads(actors_j), *m.actors]))
        kind = strongest_kind([old_kind, m.kind])
        conn.execute(
            "UPDATE incident_messages SET kind=?, rules=?, actors=? WHERE message_rowid=?",
            (kind, _j(rules), _j(actors), m.rowid),
        )
        new_actors = [a for a in actors if a not in json.loads(actors_j)]
        if kind != old_kind or new_actors:
            counts = json.loads(conn.execute("SELECT counts FROM incidents WHERE id=?", (incident_id,)).fetchone()[0])
            if kind != old_kind:
                counts[old_kind] = max(0, counts.get(old_kind, 0) - 1)
                counts[kind] = counts.get(kind, 0) + 1
            for a in new_actors:
                _facet(conn, incident_id, "actor", a, 0)
            conn.execute("UPDATE incidents SET counts=?, updated_at=? WHERE id=?", (_j(counts), now, incident_id))
            self._refresh_summary(conn, incident_id, now)
        return incident_id

    # -- families ---------------------------------------------------------------------------
    @staticmethod
    def _forward_keys(m: Incoming) -> tuple[str, str] | None:
        f = m.forwarded_from
        if not f or not f.get("id") or not f.get("message_id"):
            return None
        origin = f"{m.platform}:{bare_channel_id(f['id'])}:{f['message_id']}"
        return "fwd:" + origin, origin

    @staticmethod
    def _forward_origin_family(conn: sqlite3.Connection, m: Incoming) -> int | None:
        f = m.forwarded_from or {}
        bare = bare_channel_id(f.get("id"))
        ids = {bare, f"-100{bare}", f"-{bare}", str(f.get("id"))}
        ph = ",".join("?" * len(ids))
        row = conn.execute(
            f"SELECT im.family_id FROM messages ms JOIN incident_messages im ON im.message_rowid = ms.id"
            f" WHERE ms.platform=? AND ms.channel_id IN ({ph}) AND ms.message_id=? LIMIT 1",
            (m.platform, *ids, str(f.get("message_id"))),
        ).fetchone()
        return row[0] if row else None

    @staticmethod
    def _near_family(conn: sqlite3.Connection, sig: fam.Signature) -> int | None:
        keys = sig.band_keys()
        ph = ",".join("?" * len(keys))
        best: tuple[str, int] | None = None
        # the texts sharing the most bands (the most similar) first; at most NEAR_CANDIDATES checked
        for text_id, family_id, blob in conn.execute(
            f"SELECT t.id, t.family_id, t.signature FROM (SELECT text_id, count(*) AS n FROM family_bands"
            f" WHERE band_key IN ({ph}) GROUP BY text_id ORDER BY n DESC, text_id LIMIT {NEAR_CANDIDATES}) b"
            f" JOIN family_texts t ON t.id = b.text_id",
            keys,
        ):
            if blob is None or not sig.similar(fam.Signature.from_blob(blob)):
                continue
            first = conn.execute("SELECT first_date FROM families WHERE id=?", (family_id,)).fetchone()[0]
            if best is None or first < best[0]:
                best = (first, family_id)
        return best[1] if best else None

    @staticmethod
    def _index_text(conn: sqlite3.Connection, family_id: int, fp: str | None, sig: Any, ws: list[str],
                    fwd_key: str | None) -> None:
        if fwd_key is not None:
            conn.execute("INSERT OR IGNORE INTO family_texts(fingerprint, family_id) VALUES (?,?)", (fwd_key, family_id))
        if fp is None:
            return
        if sig is _UNSET:  # joined as a copy or forward: a new text still gets indexed below
            if conn.execute("SELECT 1 FROM family_texts WHERE fingerprint=?", (fp,)).fetchone():
                return
            sig = fam.signature(ws)
        cur = conn.execute(
            "INSERT OR IGNORE INTO family_texts(fingerprint, family_id, signature) VALUES (?,?,?)",
            (fp, family_id, sig.to_blob() if sig is not None else None),
        )
        if cur.rowcount == 1 and sig is not None:
            tid = cur.lastrowid
            conn.executemany("INSERT INTO family_bands(band_key, text_id) VALUES (?,?)", [(k, tid) for k in sig.band_keys()])

    # -- choosing an incident -------------------------------------------------------------------
    def _choose(self, conn: sqlite3.Connection, m: Incoming, places: list[Place], barred: set[int]
                ) -> tuple[int | None, str]:
        when = parse_iso(m.date)
        if places:
            got = self._by_place(conn, m, when, places, barred)
            if got is not None:
                return got, "place"
            return None, ""
        if m.actors:
            lo = fmt_iso(when - timedelta(seconds=self.settings.actor_window))
            hi = fmt_iso(when + timedelta(seconds=self.settings.actor_window))
            ph = ",".join("?" * len(m.actors))
            rows = conn.execute(
                f"SELECT f.incident_id, count(*), max(i.end_at) FROM incident_facets f JOIN incidents i ON i.id = f.incident_id"
                f" WHERE f.facet='actor' AND f.value IN ({ph}) AND i.merged_into IS NULL AND i.end_at >= ? AND i.start_at <= ?"
                f" GROUP BY f.incident_id ORDER BY count(*) DESC, max(i.end_at) DESC",
                (*m.actors, lo, hi),
            ).fetchall()
            for incident_id, _n, _end in rows:
                if incident_id not in barred:
                    return incident_id, "actor"
        return None, ""

    def _by_place(self, conn: sqlite3.Connection, m: Incoming, when: datetime, places: list[Place],
                  barred: set[int]) -> int | None:
        w = timedelta(seconds=self.settings.window)
        lo, hi = fmt_iso(when - w), fmt_iso(when + w)
        cities = {pid for pid, loc, _c in located_places(places) if loc and pid.startswith("city:")}
        # a capital named alone in a statement or denial stands for its government ("Tehran
        # blamed Washington"); in a claim or a report it is where it happened
        capitals = {p.id for p in places if p.id in cities and p.capital} if m.kind in ("statement", "denial") else set()
        countries = {p.country_id for p in places}
        keys = sorted(cities | countries)
        ph = ",".join("?" * len(keys))
        cand: dict[int, str] = {}
        for incident_id, end_at in conn.execute(
            f"SELECT DISTINCT f.incident_id, i.end_at FROM incident_facets f JOIN incidents i ON i.id = f.incident_id"
            f" WHERE f.facet='place' AND f.value IN ({ph}) AND f.located = 1 AND i.merged_into IS NULL"
            f" AND i.end_at >= ? AND i.start_at <= ?",
            (*keys, lo, hi),
        ):
            if incident_id not in barred:
                cand[incident_id] = end_at
        if not cand:
            return None
        actors = set(m.actors)
        best: tuple[tuple, int] | None = None
        for incident_id, end_at in cand.items():
            located = {v for (v,) in conn.execute(
                "SELECT value FROM incident_facets WHERE incident_id=? AND facet='place' AND located=1", (incident_id,)
            )}
            inc_cities = {v for v in located if v.startswith("city:")}
            inc_countries = {v for v in located if v.startswith("country:")}
            shared_cities = cities & inc_cities
            if shared_cities:
                strength = 2
            else:
                other = cities - capitals  # a capital alone may stand for its government
                if other and inc_cities:
                    continue  # another city: another attack
                if other and not (countries & inc_countries):
                    continue
                if not (countries & inc_countries):
                    continue
                strength = 1
            shared_actors = 0
            if actors:
                shared_actors = conn.execute(
                    f"SELECT count(*) FROM incident_facets WHERE incident_id=? AND facet='actor' AND value IN"
                    f" ({','.join('?' * len(actors))})", (incident_id, *actors),
                ).fetchone()[0]
            score = (strength, len(shared_cities), len(countries & inc_countries) if strength == 1 else 0,
                     shared_actors, end_at)
            if best is None or score > best[0]:
                best = (score, incident_id)
        return best[1] if best else None

    # -- incident rows --------------------------------------------------------------------------
    @staticmethod
    def _new_incident(conn: sqlite3.Connection, m: Incoming, now: str) -> int:
        return conn.execute(
            "INSERT INTO incidents(title, start_at, end_at, first_message_rowid, counts, created_at, updated_at)"
            " VALUES ('', ?, ?, ?, '{}', ?, ?)",
            (m.date, m.date, m.rowid, now, now),
        ).lastrowid

    def _add_to_incident(self, conn: sqlite3.Connection, incident_id: int, m: Incoming, places: list[Place],
                         now: str) -> None:
        start, end, first, counts_j, n, channels = conn.execute(
            "SELECT start_at, end_at, first_message_rowid, counts, messages, channels FROM incidents WHERE id=?",
            (incident_id,),
        ).fetchone()
        counts = json.loads(counts_j)
        counts[m.kind] = counts.get(m.kind, 0) + 1
        new_channel = conn.execute(
            "SELECT count(*) FROM incident_messages WHERE incident_id=? AND platform=? AND channel_id=?",
            (incident_id, m.platform, m.channel_id),
        ).fetchone()[0] == 1  # just inserted: the only one
        if m.date < start or first is None:
            start, first = m.date, m.rowid
        end = max(end, m.date)
        for pid, located, country in located_places(places):
            _facet(conn, incident_id, "place", pid, located)
            if country:
                _facet(conn, incident_id, "place", country, 1, mention=False)
        for a in m.actors:
            _facet(conn, incident_id, "actor", a, 0)
        conn.execute(
            "UPDATE incidents SET start_at=?, end_at=?, first_message_rowid=?, counts=?, messages=?, channels=?,"
            " updated_at=? WHERE id=?",
            (start, end, first, _j(counts), n + 1, channels + (1 if new_channel else 0), now, incident_id),
        )
        if places or m.actors or n == 0:
            self._refresh_summary(conn, incident_id, now)

    def _refresh_summary(self, conn: sqlite3.Connection, incident_id: int, now: str) -> None:
        """``places``, ``actors`` (most mentioned first) and ``title`` from the facets."""
        places = [v for (v,) in conn.execute(
            "SELECT value FROM incident_facets WHERE incident_id=? AND facet='place' AND located=1"
            " ORDER BY mentions DESC, value", (incident_id,))]
        actors = [v for (v,) in conn.execute(
            "SELECT value FROM incident_facets WHERE incident_id=? AND facet='actor' ORDER BY mentions DESC, value",
            (incident_id,))]
        start = conn.execute("SELECT start_at FROM incidents WHERE id=?", (incident_id,)).fetchone()[0]
        conn.execute(
            "UPDATE incidents SET places=?, actors=?, title=? WHERE id=?",
            (_j(places), _j(actors), self.title(places, actors, start), incident_id),
        )

    def title(self, places: list[str], actors: list[str], start: str) -> str:
        gp = self.gazetteer.places
        city = next((p for p in places if p.startswith("city:") and p in gp), None)
        if city:
            c = gp[city]
            country = gp.get(c.country_id)
            where = f"{c.name}, {country.name}" if country else c.name
        else:
            country = next((p for p in places if p in gp), None)
            where = gp[country].name if country else (actors[0] if actors else "incident")
        return f"{where} · {start[:10]}"


def located_places(places: Sequence[Place]) -> list[tuple[str, int, str | None]]:
    """``(place id, located, country id to locate)`` for the places a message names. Where it
    happened: its cities (a capital only when no other city is named: "Tehran blamed
    Washington" names governments), else its countries. A located city locates its country."""
    cities = [p for p in places if p.kind == "city"]
    plain = [p for p in cities if not p.capital]
    where = {p.id for p in (plain or cities)}
    out = []
    for p in places:
        if p.kind == "city":
            loc = p.id in where
            out.append((p.id, 1 if loc else 0, p.country_id if loc else None))
        else:
            out.append((p.id, 0 if cities else 1, None))
    return out


def _facet(conn: sqlite3.Connection, incident_id: int, facet: str, value: str, located: int, *,
           mention: bool = True) -> None:
    conn.execute(
        "INSERT INTO incident_facets(incident_id, facet, value, mentions, located) VALUES (?,?,?,?,?)"
        " ON CONFLICT(incident_id, facet, value) DO UPDATE SET mentions = mentions + excluded.mentions,"
        " located = max(located, excluded.located)",
        (incident_id, facet, value, 1 if mention else 0, located),
    )


def _text_family(conn: sqlite3.Connection, key: str) -> int | None:
    row = conn.execute("SELECT family_id FROM family_texts WHERE fingerprint=?", (key,)).fetchone()
    return row[0] if row else None


def _j(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
