"""Incremental assignment of messages with hits to incidents (docs/incidents.md).

:class:`IncidentTracker` is installed on an :class:`~monitor.archive.Archive`
(``archive.incidents``); the archive calls :meth:`IncidentTracker.on_hits` from
``Archive._store_hits``, inside the store transaction, for every message that got new hits:
import, daemon and backfill all pass there, so an incident is never out of step with its hits.
The messages are queued and assigned, in order, as one batch when the transaction commits
(:meth:`IncidentTracker.flush`, before ``COMMIT``).

A message joins, in this order:

1. the **family** of a text it copies: Telegram/X's ``forwarded_from`` names a message in an
   incident, or the same normalised text, or a near-duplicate (MinHash/LSH,
   :mod:`.families`). Any time: a repost a week later still joins its incident;
2. an incident active within ``window`` of its date (default 72 h from the incident's last
   message) that names a **place** it names: a shared city; a country when the message names no
   city (or only a capital, standing for its government: "Tehran blamed Washington"). Two
   incidents in different cities never share a message by place;
   Demonyms are not places (:meth:`~.gazetteer.Gazetteer.find_all`): with no place named, one
   that says where it happened ("Pakistani soldiers") counts as its country; speakers ("Iranian
   officials") and mentions join the active incident of their country (``how`` = demonym);
3. with no place: an incident active within ``actor_window`` that shares an **actor**;
4. otherwise it opens a new incident (and a new family).

A message already in an incident stays there (new hits on it, re-imports and edits update its
kind, rules and actors only); the analysts' corrections (:mod:`.corrections`) move messages.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, OrderedDict
from itertools import chain
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from ..gcpause import paused_gc

from ..model import KINDS
from . import families as fam
from .gazetteer import Demonym, Gazetteer, Place, load as load_gazetteer

_KIND_RANK = {k: i for i, k in enumerate(KINDS)}
_UNSET = object()
NEAR_VERIFIED = 4  # LSH candidates (those sharing most bands) compared on their actual shingles
SHINGLE_CACHE = 4096  # texts whose shingles are kept after a comparison
TEXT_CACHE = 32768  # texts of indexed signatures kept (the newest; older ones are read when compared)
GIVEN_TEXTS = 8192  # texts prepared elsewhere held until their hits are assigned (IncidentTracker.give; ~8 kB each)
RECENT_TEXTS = 2048  # texts whose words, key and places are kept (reposts are frequent)
MIN_SHARED_BANDS = 2  # E[shared bands] = 16 * Jaccard^2: 4 at 0.5, 1 at 0.25
BAND_CAP = 16  # of a crowded band (template text), only its newest texts are candidates
BUCKET = 3 * 86400  # incidents are indexed by the 3-day buckets their span covers
IN_MEMORY = 2000  # incidents a writer holds before it evicts those past the window
COLD_CACHE = 200_000  # band keys / exact-copy keys whose rows in the tables are kept in memory
SQL_CHUNK = 500  # values bound in one IN (...) query
STAGED_ROWS = 32768  # band rows of the newest texts kept in memory only before they are written to family_bands
BANDS_MARK = "incidents_bands_written"  # meta: the last text id whose band keys are in family_bands


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
    in_memory: int = IN_MEMORY  # incidents held in memory before those past the window are evicted

    @property
    def keep(self) -> float:
        """How far back from the newest message an incident can still be joined by place or actor."""
        return max(self.window, self.actor_window)

    @classmethod
    def from_config(cls, cfg: Any) -> "Settings":
        inc = getattr(cfg, "incidents", None)
        if inc is None:
            return cls()
        return cls(window=inc.window, actor_window=inc.actor_window,
                   in_memory=getattr(inc, "in_memory", IN_MEMORY))


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


class _Inc:
    """An incident as the tracker keeps it in memory (the ``incidents`` row and its facets)."""

    __slots__ = ("id", "start", "end", "t0", "t1", "first", "counts", "messages", "channels", "places", "actors",
                 "created", "updated", "days", "loc_cities", "loc_countries", "touched")

    def __init__(self, iid: int, start: str, end: str, first: int | None, counts: dict[str, int], messages: int,
                 created: str, updated: str) -> None:
        self.id = iid
        self.start = start
        self.end = end
        self.t0, self.t1 = _ts(start), _ts(end)
        self.first = first
        self.counts = counts
        self.messages = messages
        self.channels: set[tuple[str, str]] = set()
        self.places: dict[str, list[int]] = {}  # place id -> [mentions, located]
        self.actors: dict[str, int] = {}  # actor id -> mentions
        self.created = created
        self.updated = updated
        self.days: tuple[int, int] | None = None  # the bucket span indexed in _State.by_day
        self.loc_cities: set[str] = set()  # located places (where it happened), by kind
        self.loc_countries: set[str] = set()
        self.touched = 0  # the tracker's transaction count when it last changed

    def locate(self, pid: str) -> None:
        (self.loc_cities if pid.startswith("city:") else self.loc_countries).add(pid)


class _Family:
    __slots__ = ("id", "incident", "first", "first_date", "members")

    def __init__(self, fid: int, incident: int, first: int, first_date: str, members: int) -> None:
        self.id, self.incident, self.first, self.first_date, self.members = fid, incident, first, first_date, members


_TID_BITS = 48  # near_family: a candidate's shared bands and text id in one int (text ids < 2**48)
_TID_MASK = (1 << _TID_BITS) - 1
_NO_COLD: tuple[list[int], bool] = ([], True)
_NOWHERE: tuple[int, None] = (0, None)  # (near_family: a candidate passed over)  # a band key without texts not held (shared: never changed)


def _ts(iso: str) -> float:
    """Epoch seconds of an archive date (ISO 8601, UTC); the recent ones are remembered (a
    message's date is asked for several times, an incident's start and end in turn; cleared
    when full)."""
    t = _TS.get(iso)
    if t is None:
        if len(_TS) >= TS_CACHE:
            _TS.clear()
        t = _TS[iso] = datetime.fromisoformat(iso).timestamp()  # (Python >= 3.11 reads the trailing Z)
    return t


TS_CACHE = 16384
_TS: dict[str, float] = {}


class _Peek(NamedTuple):
    """What the near-copy checks read of an incident not in memory."""

    id: int
    t0: float
    t1: float
    loc_cities: set[str]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# the columns of an incidents row the tracker writes (after id; created_at too when it is new)
_INCIDENT_WRITTEN = ("title", "start_at", "end_at", "first_message_rowid", "places", "actors", "counts", "messages",
                     "channels", "updated_at")
# (of a stored incident whose first message stays: start_at is left out, so its index is not
# rewritten: SQLite rewrites the entry of every index of a column a statement sets, changed or not)
_INCIDENT_SAME_START = tuple(c for c in _INCIDENT_WRITTEN if c != "start_at")
_INCIDENT_COLS = "id, start_at, end_at, first_message_rowid, counts, messages, created_at, updated_at"


class _State:
    """What assignment reads, in memory: the incidents of the last days with their facets and
    channels, their families, the exact-copy keys and the MinHash/LSH band index of the
    families' texts ("hot"); the band keys of every other stored text are read from
    ``family_bands`` when a batch needs them (:meth:`prefetch_bands`). Loaded from the tables
    (:meth:`load`) the first time a hit is stored and again when another connection changed
    them (``meta.incidents_generation``); changes are written back by
    :meth:`IncidentTracker.flush` before the transaction commits.

    Bounded: when more than ``Settings.in_memory`` incidents are held, those whose last message
    is older than the window (from the newest message seen) and that were not touched in the
    last two transactions are evicted with their families and texts (:meth:`evict`). What is
    not in memory is read back from the tables when needed (``partial``): an exact copy by its
    fingerprint, a near copy through the cold band keys, a forward by its origin, a message
    dated within the window of an evicted incident by its places or actors."""

    def __init__(self, gen: int) -> None:
        self.gen = gen
        self.incidents: dict[int, _Inc] = {}
        self.families: dict[int, _Family] = {}
        self.texts: dict[str, int] = {}  # fingerprint / "fwd:<key>" -> family id (hot families)
        self.fam_texts: dict[int, list[str]] = {}  # family id -> its keys in texts ...
        self.fam_sigs: dict[int, list[int]] = {}  # ... and its text ids in sigs (evicted with it)
        self.sigs: dict[int, tuple[int, int | None, tuple[int, ...]]] = {}  # text id -> family, message, band keys
        self.bands: dict[int, list[int]] = {}  # band key -> text ids (oldest first; hot texts)
        self.cold_texts = 0  # texts with a signature whose families are not in memory (their bands: in family_bands)
        # band key -> the newest texts of family_bands not held (newest first), and whether that is all of them
        self.cold_bands: dict[int, tuple[list[int], bool]] = {}
        self.cold_fps: dict[str, int | None] = {}  # exact-copy key -> its family in family_texts (looked up)
        # the band keys of the newest texts (after meta.incidents_bands_written), not in
        # family_bands yet: written there in bulk (IncidentTracker._write_bands), computed
        # from their stored signatures when the state is loaded. band key -> text ids, oldest
        # first; and their number
        self.staged: dict[int, list[int]] = {}
        self.staged_rows = 0
        # text id -> family, message of texts not held that were compared (family_texts rows do
        # not change: kept across evictions; FIFO)
        self.cold_where: OrderedDict[int, tuple[int, int | None]] = OrderedDict()
        self.partial = False  # some incidents are not in memory: look in the tables too
        self.cold_until = float("-inf")  # the latest end of an incident not in memory
        self.latest = float("-inf")  # the newest message date seen (epoch)
        self.tick = 0  # transactions flushed
        self.evicted = 0
        # (FIFO caches: OrderedDict, see _put)
        self.shingle_cache: OrderedDict[int, tuple[str, set[str]]] = OrderedDict()  # rowid -> text, shingles (recently compared)
        self.text_cache: OrderedDict[int, str] = OrderedDict()  # rowid -> text of indexed texts (recent ones)
        self.peeked: OrderedDict[int, _Peek] = OrderedDict()  # incidents not in memory looked at for near copies
        # (facet, value) -> day -> incident ids active that day (places: located ones only)
        self.by_day: dict[tuple[str, str], dict[int, set[int]]] = {}
        self.next_incident = 1
        self.next_family = 1
        self.next_text = 1

    @classmethod
    def load(cls, conn: sqlite3.Connection, gen: int, settings: "Settings") -> "_State":
        s = cls(gen)
        s.next_incident = (conn.execute("SELECT max(id) FROM incidents").fetchone()[0] or 0) + 1
        s.next_family = (conn.execute("SELECT max(id) FROM families").fetchone()[0] or 0) + 1
        s.next_text = (conn.execute("SELECT max(id) FROM family_texts").fetchone()[0] or 0) + 1
        live, newest = conn.execute("SELECT count(*), max(end_at) FROM incidents WHERE merged_into IS NULL").fetchone()
        # everything when it fits; else the incidents of the last window (the rest on demand)
        since = ""
        if live > settings.in_memory and newest:
            s.latest = _ts(newest)
            since = _iso(s.latest - settings.keep)
            before = conn.execute("SELECT max(end_at) FROM incidents WHERE merged_into IS NULL AND end_at < ?",
                                  (since,)).fetchone()[0]
            if before:
                s.partial, s.cold_until = True, _ts(before)
        for row in conn.execute(f"SELECT {_INCIDENT_COLS} FROM incidents WHERE merged_into IS NULL AND end_at >= ?",
                                (since,)):
            s._add_incident_row(row)
        if s.incidents:
            s.latest = max(s.latest, max(inc.t1 for inc in s.incidents.values()))
        s._load_facets(conn, "SELECT f.incident_id, f.facet, f.value, f.mentions, f.located FROM incident_facets f"
                             " JOIN incidents i ON i.id = f.incident_id WHERE i.merged_into IS NULL AND i.end_at >= ?",
                       (since,))
        s._load_channels(conn, "SELECT DISTINCT im.incident_id, im.platform, im.channel_id FROM incident_messages im"
                               " JOIN incidents i ON i.id = im.incident_id WHERE i.merged_into IS NULL AND i.end_at >= ?",
                         (since,))
        for inc in s.incidents.values():
            s.index_days(inc)
        for fid, iid, first, first_date, members in conn.execute(
            "SELECT f.id, f.incident_id, f.first_message_rowid, f.first_date, f.members FROM families f"
            " JOIN incidents i ON i.id = f.incident_id WHERE i.end_at >= ?", (since,)
        ):
            if iid in s.incidents:
                s.families[fid] = _Family(fid, iid, first, first_date, members)
        hot_ids, hot_blobs = [], []
        families = s.families
        # the texts of the families held (the others are read back by key from the tables)
        for tid, fp, fid, blob, rowid in conn.execute(
            "SELECT t.id, t.fingerprint, t.family_id, t.signature, t.message_rowid FROM family_texts t"
            " JOIN families f ON f.id = t.family_id JOIN incidents i ON i.id = f.incident_id WHERE i.end_at >= ?"
            " ORDER BY t.id", (since,)
        ):
            if fid in families:
                s.add_text(fp, fid)
                if blob is not None:
                    hot_ids.append((tid, fid, rowid))
                    hot_blobs.append(blob)
        for (tid, fid, rowid), keys in zip(hot_ids, fam.band_key_matrix(hot_blobs).tolist()):
            s.add_signature(tid, fid, rowid, keys)
        # the newest texts' band keys are not in family_bands: from their signatures
        staged, unwritten = s.staged, conn.execute(
            "SELECT id, signature FROM family_texts WHERE id > ? AND signature IS NOT NULL ORDER BY id",
            (bands_written(conn),)).fetchall()
        for (tid, _blob), keys in zip(unwritten, fam.band_key_matrix([b for _t, b in unwritten]).tolist()):
            for k in keys:
                got = staged.get(k)
                if got is None:
                    staged[k] = [tid]
                else:
                    got.append(tid)
        s.staged_rows = fam.BANDS * len(unwritten)
        signed = conn.execute("SELECT count(*) FROM family_texts WHERE signature IS NOT NULL").fetchone()[0]
        s.cold_texts = signed - len(hot_ids)
        return s

    def _add_incident_row(self, row: Sequence[Any]) -> _Inc:
        iid, start, end, first, counts, n, created, updated = row
        inc = self.incidents[iid] = _Inc(iid, start, end, first, json.loads(counts), n, created, updated)
        inc.touched = self.tick
        return inc

    def _load_facets(self, conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> None:
        for iid, facet, value, mentions, located in conn.execute(sql, args):
            inc = self.incidents.get(iid)
            if inc is None:
                continue
            if facet == "place":
                inc.places[value] = [mentions, located]
                if located:
                    inc.locate(value)
            else:
                inc.actors[value] = mentions

    def _load_channels(self, conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> None:
        for iid, platform, channel_id in conn.execute(sql, args):
            inc = self.incidents.get(iid)
            if inc is not None:
                inc.channels.add((platform, channel_id))

    # -- incidents not in memory ------------------------------------------------------------------
    def load_incidents(self, conn: sqlite3.Connection, ids: Iterable[int]) -> None:
        """Read incidents back from the tables (live ones; those in memory are kept)."""
        todo = sorted({int(i) for i in ids if i not in self.incidents})
        if not todo:
            return
        ph = ",".join("?" * len(todo))
        got = [self._add_incident_row(row) for row in conn.execute(
            f"SELECT {_INCIDENT_COLS} FROM incidents WHERE merged_into IS NULL AND id IN ({ph})", todo)]
        if not got:
            return
        self._load_facets(conn, f"SELECT incident_id, facet, value, mentions, located FROM incident_facets"
                                f" WHERE incident_id IN ({ph})", todo)
        self._load_channels(conn, f"SELECT DISTINCT incident_id, platform, channel_id FROM incident_messages"
                                  f" WHERE incident_id IN ({ph})", todo)
        for inc in got:
            self.index_days(inc)

    def incident(self, conn: sqlite3.Connection, iid: int | None) -> _Inc | None:
        if iid is None:
            return None
        inc = self.incidents.get(iid)
        if inc is None and self.partial:
            self.load_incidents(conn, [iid])
            inc = self.incidents.get(iid)
        return inc

    def peek(self, conn: sqlite3.Connection, iid: int) -> Any:
        """An incident's span and located cities, from memory or else read without loading it
        (a near copy of an old text is often the same template about another attack)."""
        inc = self.incidents.get(iid)
        if inc is not None or not self.partial:
            return inc
        got = self.peeked.get(iid)
        if got is None:
            row = conn.execute("SELECT id, start_at, end_at FROM incidents WHERE id=? AND merged_into IS NULL",
                               (iid,)).fetchone()
            if row is None:
                return None
            got = _Peek(row[0], _ts(row[1]), _ts(row[2]), {v for (v,) in conn.execute(
                "SELECT value FROM incident_facets WHERE incident_id=? AND facet='place' AND located=1"
                " AND value LIKE 'city:%'", (iid,))})
            _put(self.peeked, iid, got, 1024)
        return got

    def family(self, conn: sqlite3.Connection, fid: int | None) -> _Family | None:
        """A family (read back when evicted; its incident is read when a message joins it)."""
        if fid is None:
            return None
        f = self.families.get(fid)
        if f is None and self.partial:
            row = conn.execute("SELECT id, incident_id, first_message_rowid, first_date, members FROM families"
                               " WHERE id=?", (fid,)).fetchone()
            if row is not None:
                f = self.families[fid] = _Family(*row)
        return f

    def text_family(self, conn: sqlite3.Connection, key: str) -> int | None:
        """The family of an exact-copy key (fingerprint or ``fwd:<key>``)."""
        fid = self.texts.get(key)
        if fid is None and self.partial:
            cold = self.cold_fps
            if key in cold:
                return cold[key]
            fid = _text_family(conn, key)
        return fid

    def prefetch_texts(self, conn: sqlite3.Connection, keys: Iterable[str]) -> None:
        """Look up the exact-copy keys (not held in memory) of a batch with one query per
        :data:`SQL_CHUNK` keys (:meth:`text_family` then answers from memory)."""
        if not self.partial:
            return
        texts, cold = self.texts, self.cold_fps
        todo = list({k for k in keys if k not in texts and k not in cold})
        if len(cold) + len(todo) > COLD_CACHE:
            cold.clear()
        for i in range(0, len(todo), SQL_CHUNK):
            chunk = todo[i:i + SQL_CHUNK]
            found = dict(conn.execute(
                f"SELECT fingerprint, family_id FROM family_texts WHERE fingerprint IN ({','.join('?' * len(chunk))})",
                chunk))
            for k in chunk:
                cold[k] = found.get(k)

    def prefetch_bands(self, conn: sqlite3.Connection, keys: Iterable[int]) -> None:
        """Read from ``family_bands`` the newest texts of a batch's band keys that may be needed
        (:meth:`_cold_band`): one query for all of them (the keys of a crowded band held in
        memory are not needed). Kept until the next eviction: until then the texts there that
        are not held stay the same (new texts are held)."""
        if not self.cold_texts:
            return
        bands, cold, sigs = self.bands, self.cold_bands, self.sigs
        todo = list({k for k in keys if k not in cold and len(bands.get(k, ())) < BAND_CAP})
        if not todo:
            return
        if len(cold) + len(todo) > COLD_CACHE:
            cold.clear()
        staged = self.staged
        # (only the keys with rows: most keys, a new text's own bands, have none, and the
        # correlated subquery cost more than the EXISTS; ~30 % less time in SQLite)
        found = dict(conn.execute(
            "SELECT k.value, (SELECT group_concat(text_id) FROM (SELECT text_id FROM family_bands"
            f" WHERE band_key = k.value ORDER BY text_id DESC LIMIT {2 * BAND_CAP})) FROM json_each(?) AS k"
            " WHERE EXISTS (SELECT 1 FROM family_bands b WHERE b.band_key = k.value)",
            (json.dumps(todo),),
        ))
        for k in todo:
            got = found.get(k)
            if not got:
                cold[k] = _NO_COLD if k not in staged else (self._with_staged(k, [], None), True)
                continue  # (most keys: a text's own bands)
            tids = sorted(map(int, got.split(",")), reverse=True)
            whole = len(tids) < 2 * BAND_CAP
            mine = [t for t in tids if t not in sigs]
            cold[k] = (mine if k not in staged else self._with_staged(k, mine, None if whole else tids[-1]), whole)

    def _with_staged(self, key: int, table: list[int], floor: int | None) -> list[int]:
        """``table`` (a band's texts not held from ``family_bands``, newest first) with those of
        the newest texts, not written there yet (:attr:`staged`), merged in; when ``table`` is only the newest
        rows (``floor``: the oldest of them), nothing older than them is taken (the next ones
        may be in ``family_bands``)."""
        sigs = self.sigs
        extra = [t for t in self.staged[key] if t not in sigs and (floor is None or t >= floor)]
        return sorted(table + extra, reverse=True) if extra else table

    def _cold_band(self, conn: sqlite3.Connection, key: int, cap: int) -> list[int]:
        """The ``cap`` newest texts of band ``key`` whose families are not in memory (from
        ``family_bands`` and the newest texts' keys, :attr:`staged`: the texts there that are not held)."""
        got = self.cold_bands.get(key)
        if got is None or (len(got[0]) < cap and not got[1]):
            sigs = self.sigs
            got = [t for (t,) in conn.execute(
                "SELECT text_id FROM family_bands WHERE band_key = ? ORDER BY text_id DESC", (key,)) if t not in sigs]
            if key in self.staged:
                got = self._with_staged(key, got, None)
            got = self.cold_bands[key] = (got, True)
        return got[0][:cap]

    def load_active(self, conn: sqlite3.Connection, facet: str, values: Iterable[str], lo: float, hi: float) -> None:
        """Read back the incidents not in memory naming one of ``values`` whose span meets [lo, hi]."""
        if not self.partial or lo > self.cold_until:
            return
        vals = sorted(set(values))
        if not vals:
            return
        located = " AND f.located = 1" if facet == "place" else ""
        ids = [r[0] for r in conn.execute(
            f"SELECT DISTINCT f.incident_id FROM incident_facets f JOIN incidents i ON i.id = f.incident_id"
            f" WHERE f.facet = ? AND f.value IN ({','.join('?' * len(vals))}){located} AND i.merged_into IS NULL"
            f" AND i.end_at >= ? AND i.start_at <= ?", (facet, *vals, _iso(lo - 1), _iso(hi + 1)))]
        self.load_incidents(conn, ids)

    # -- eviction ----------------------------------------------------------------------------------
    def evict(self, settings: "Settings") -> int:
        """Evict incidents past the window when more than ``settings.in_memory`` are held.
        Returns how many went."""
        self.tick += 1
        if len(self.incidents) <= settings.in_memory:
            return 0
        horizon = self.latest - settings.keep
        stale = self.tick - 2
        gone = {i for i, inc in self.incidents.items() if inc.t1 < horizon and inc.touched < stale}
        if not gone:
            return 0
        for i in gone:
            inc = self.incidents.pop(i)
            if inc.t1 > self.cold_until:
                self.cold_until = inc.t1
            self._unindex_days(inc)
        incs = self.incidents
        fams = [fid for fid, f in self.families.items() if f.incident not in incs]
        # their texts stay in the tables only (family_texts, family_bands): nothing is kept of them
        families, texts, fam_texts, fam_sigs = self.families, self.texts, self.fam_texts, self.fam_sigs
        moved: list[int] = []
        for fid in fams:
            del families[fid]
            for k in fam_texts.pop(fid, ()):
                del texts[k]
            moved += fam_sigs.pop(fid, ())
        # out of the band lists: each list touched is filtered once (a crowded band loses many
        # texts at once; removing them one by one scanned it twice a text)
        bands, sigs = self.bands, self.sigs
        gone_texts = set(moved)
        touched: dict[int, None] = {}
        for t in moved:
            touched.update(dict.fromkeys(sigs.pop(t)[2]))
        for k in touched:
            cur = bands.get(k)
            if cur is not None:
                kept = [t for t in cur if t not in gone_texts]
                if not kept:
                    del bands[k]
                elif len(kept) < len(cur):
                    cur[:] = kept
        self.cold_texts += len(moved)
        self.cold_bands.clear()  # what is not held changed
        self.cold_fps.clear()
        self.peeked.clear()
        self.partial = True
        self.evicted += len(gone)
        return len(gone)

    def size(self) -> dict[str, int]:
        """What is held (for the bench and the tests)."""
        return {"incidents": len(self.incidents), "families": len(self.families), "texts": len(self.texts),
                "signatures": len(self.sigs), "band_keys": len(self.bands), "cold_texts": self.cold_texts,
                "cold_cache": len(self.cold_bands) + len(self.cold_fps), "evicted": self.evicted}

    # -- the day index (candidates within a window) ----------------------------------------------
    def _facet_keys(self, inc: _Inc) -> list[tuple[str, str]]:
        return [("place", v) for v, (_m, loc) in inc.places.items() if loc] + [("actor", a) for a in inc.actors]

    def index_days(self, inc: _Inc, keys: list[tuple[str, str]] | None = None) -> None:
        """Index ``inc`` under its located places and actors for every day of its span (only
        ``keys`` over the whole span, or every key over the days the span grew by)."""
        d0, d1 = int(inc.t0 // BUCKET), int(inc.t1 // BUCKET)
        old = inc.days
        if keys is None:
            if old is not None and old[0] <= d0 and d1 <= old[1]:
                return  # the span still fits the buckets indexed
            keys = self._facet_keys(inc)
            if old is not None:  # the span grew: index the new days only
                days = [d for d in range(d0, d1 + 1) if not old[0] <= d <= old[1]]
            else:
                days = list(range(d0, d1 + 1))
        else:
            days = list(range(d0, d1 + 1))
        inc.days = (d0, d1)
        by_day = self.by_day
        for key in keys:
            per = by_day.get(key)
            if per is None:
                per = by_day[key] = {}
            for d in days:
                got = per.get(d)
                if got is None:
                    per[d] = {inc.id}
                else:
                    got.add(inc.id)

    def _unindex_days(self, inc: _Inc) -> None:
        """Take an evicted incident out of the day index (what :meth:`index_days` put there:
        its located places and actors over the buckets of its span; emptied entries go)."""
        if inc.days is None:
            return
        d0, d1 = inc.days
        by_day, iid = self.by_day, inc.id
        for key in self._facet_keys(inc):
            per = by_day.get(key)
            if per is None:
                continue
            for d in range(d0, d1 + 1):
                got = per.get(d)
                if got is not None:
                    got.discard(iid)
                    if not got:
                        del per[d]
            if not per:
                del by_day[key]
        inc.days = None

    def active(self, facet: str, values: Iterable[str], lo: float, hi: float) -> set[int]:
        """Live incidents in memory naming one of ``values`` whose span meets [lo, hi] (epoch
        seconds; :meth:`load_active` first reads back those that are not)."""
        d_lo, d_hi = int(lo // BUCKET), int(hi // BUCKET)
        out: set[int] = set()
        by_day = self.by_day
        for v in values:
            per = by_day.get((facet, v))
            if not per:
                continue
            for d in range(d_lo, d_hi + 1):
                got = per.get(d)
                if got:
                    out |= got
        incs = self.incidents.get
        return {i for i in out if (inc := incs(i)) is not None and inc.t1 >= lo and inc.t0 <= hi}

    # -- near copies ---------------------------------------------------------------------------
    def add_text(self, key: str, family_id: int) -> None:
        """An exact-copy key (fingerprint or ``fwd:<key>``) of a family held."""
        self.texts[key] = family_id
        got = self.fam_texts.get(family_id)
        if got is None:
            self.fam_texts[family_id] = [key]
        else:
            got.append(key)

    def add_signature(self, tid: int, family_id: int, rowid: int | None, keys: Sequence[int]) -> None:
        self.sigs[tid] = (family_id, rowid, tuple(keys))
        got = self.fam_sigs.get(family_id)
        if got is None:
            self.fam_sigs[family_id] = [tid]
        else:
            got.append(tid)
        bands = self.bands
        for k in keys:
            cur = bands.get(k)
            if cur is None:
                bands[k] = [tid]
            else:
                cur.append(tid)
                if len(cur) > 2 * BAND_CAP:  # only the newest are candidates
                    del cur[:-BAND_CAP]

    def near_family(self, conn: sqlite3.Connection, sig: fam.Signature, ws: list[str],
                    pending: Mapping[int, str], cities: frozenset[str] = frozenset(),
                    barred: set[int] | None = None) -> list[tuple[int, str]]:
        """Families with a near copy of the text (``sig``, words ``ws``). Of the texts sharing
        a band (of a crowded band only its newest BAND_CAP texts), the NEAR_VERIFIED sharing
        most (at least MIN_SHARED_BANDS) are compared on their actual shingles (texts from the
        caches, from ``pending`` for this transaction's, else one SELECT), so templated texts
        (two claims that differ in the city and the toll) are not taken for copies. Returns
        the families matched (with the text that matched), most similar first, then earliest
        seen.

        ``cities`` (the message's located cities) and ``barred``: of the candidates held in
        memory, those whose incident the caller would pass over anyway (another city: the same
        template about another attack; a barred incident) are not compared (their texts not
        read, their shingles not made); the caller still checks every family returned, so the
        answer it acts on is the same (of these 4 candidates, most are a template's siblings
        about other cities)."""
        bands = self.bands
        found_in: list[int] = []  # the texts of each band shared (counted below)
        add = found_in.extend
        if self.cold_texts > 0:
            cold_get, band_cap = self.cold_bands.get, BAND_CAP
            for k in sig.band_keys():
                cur = bands.get(k)
                if cur is not None:
                    n = len(cur)
                    if n >= band_cap:
                        add(cur[-band_cap:])
                        continue
                    add(cur)  # the newest of a band are in memory: older ones count if room
                    cap = band_cap - n
                else:
                    cap = band_cap
                # the band's newest texts not held (_cold_band, inline: prefetched for the batch)
                got = cold_get(k)
                if got is None or (len(got[0]) < cap and not got[1]):
                    add(self._cold_band(conn, k, cap))
                elif got[0]:  # (most: a text's own bands, without texts)
                    add(got[0][:cap])
        else:
            for k in sig.band_keys():
                cur = bands.get(k)
                if cur is not None:
                    add(cur[-BAND_CAP:])
        counts = Counter(found_in)  # insertion order as found
        if len(counts) == len(found_in):
            return []  # no text shares two bands
        # one shared band of 16 is what unrelated texts of one template share (J ~ 0.25); the
        # texts sharing most bands, the newest first among equals
        # (one int a candidate, shared bands over text id: ints sort without the rich
        # comparisons of (n, t) tuples: list.sort 89.5 M -> 49.5 M instructions on the bench at 100k)
        best = [n << _TID_BITS | t for t, n in counts.items() if n >= MIN_SHARED_BANDS]
        if not best:
            return []
        best.sort(reverse=True)  # most bands shared first, then newest first (text ids are unique)
        tids = [v & _TID_MASK for v in best[:NEAR_VERIFIED]]
        sigs, held = self.sigs, self.cold_where
        passed_over = self._passed_over
        where: dict[int, tuple[int, int | None]] = {}
        away = []
        for t in tids:
            got = sigs.get(t)
            if got is not None:
                if not passed_over(got[0], cities, barred):
                    where[t] = got[:2]
            else:
                got = held.get(t)
                if got is None:
                    away.append(t)
                elif not passed_over(got[0], cities, barred):
                    where[t] = got
        if away:
            for t, fid, rid in conn.execute(
                f"SELECT id, family_id, message_rowid FROM family_texts WHERE id IN ({','.join('?' * len(away))})", away
            ).fetchall():
                held[t] = (fid, rid)
                if len(held) > COLD_CACHE:
                    held.popitem(last=False)
                if not passed_over(fid, cities, barred):
                    where[t] = (fid, rid)
        cache, tcache = self.shingle_cache, self.text_cache
        todo = [rid for t in tids if (rid := where.get(t, _NOWHERE)[1]) is not None and rid not in cache
                and rid not in tcache and rid not in pending]
        if todo:
            for rid, text in conn.execute(
                f"SELECT id, text FROM messages WHERE id IN ({','.join('?' * len(todo))})", todo
            ).fetchall():
                _put(tcache, rid, text, TEXT_CACHE)
        mine = sig.shingle_set
        if mine is None:  # (a signature given by another process: its shingles, kept for _index_text)
            mine = sig.shingle_set = fam.shingles(ws)
        found: dict[int, tuple[float, str, str]] = {}  # family -> (similarity, first date, text)
        near_copy, families = fam.near_copy, self.families
        for t in tids:
            fid, rid = where.get(t, _NOWHERE)
            if rid is None:
                continue
            got = cache.get(rid)
            if got is None:
                text = pending.get(rid) if rid in pending else tcache.get(rid)
                if text is None:
                    continue
                got = (text, fam.shingles(fam.words(text)))
                _put(cache, rid, got, SHINGLE_CACHE)
            sim = near_copy(mine, got[1])
            if not sim:
                continue
            f = families.get(fid) or self.family(conn, fid)
            if f is not None and (f.id not in found or sim > found[f.id][0]):
                found[f.id] = (sim, f.first_date, got[0])
        if len(found) <= 1:  # (most: none, or the one family of the copy)
            return [(fid, text) for fid, (_s, _d, text) in found.items()]
        order = sorted(found.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
        return [(fid, text) for fid, (_s, _d, text) in order]


    def _passed_over(self, fid: int, cities: frozenset[str], barred: set[int] | None) -> bool:
        """Would :meth:`IncidentTracker._assign_one` pass over family ``fid``'s incident as a
        near copy's (not live, barred, or :func:`_other_city`)? Answered from memory only
        (the incident as :meth:`peek` gives it, when that needs no query); False when unknown."""
        f = self.families.get(fid)
        if f is None:
            return False
        inc = self.incidents.get(f.incident)
        if inc is None:
            if not self.partial:
                return True  # (peek: None)
            inc = self.peeked.get(f.incident)
            if inc is None:
                return False
        return bool((barred and inc.id in barred) or (cities and inc.loc_cities and not (cities & inc.loc_cities)))


@dataclass(slots=True)
class Assigned:
    """Where :meth:`IncidentTracker.on_hits` put a message (for the alerting policy)."""

    incident_id: int
    family_id: int | None
    how: str  # forward | copy | near-copy | place | demonym | actor | new | member (was in it already)
    family_first: int | None  # the family's first message rowid
    new_member: bool


# IncidentTracker._words: words, exact-copy key, places, located places, JSON of the place ids,
# the countries of the demonyms that are not places (speakers, mentions), by strength
_Words = tuple[list[str], "str | None", list[Place], "_Located", str, "tuple[tuple[str, int], ...]"]
_DEMONYM_RANK = {"who": 2, "mention": 1}


class IncidentTracker:
    """Keeps the incident tables up to date; one per archive connection.

    Assignment reads only the in-memory :class:`_State`; the rows it changes are written with
    one ``executemany`` per table by :meth:`flush`, which the archive calls before every commit
    (:meth:`discard` after a rollback)."""

    def __init__(self, settings: Settings | None = None, gazetteer: Gazetteer | None = None) -> None:
        self.settings = settings or Settings()
        self._gaz = gazetteer
        self._state: _State | None = None
        self._in_tx = False
        # text -> words, key, places, located places, place ids as JSON (FIFO: _put)
        self._recent: OrderedDict[str, _Words] = OrderedDict()
        self._given: dict[str, Prepared] = {}  # text -> prepared where its hit was produced (give())
        self._reset_pending()

    def _reset_pending(self) -> None:
        self._new_members: dict[int, list[Any]] = {}  # rowid -> incident_messages row (list; places as JSON)
        self._changed_members: dict[int, tuple] = {}  # rowid -> (kind, rules, actors) of an existing member
        self._new_keys: dict[tuple[str, str, str], int] = {}  # (platform, channel, message) -> family, this transaction
        self._dirty_inc: set[int] = set()
        self._dirty_fam: set[int] = set()
        self._new_texts: list[tuple] = []
        self._new_bands: list[int] = []  # the band keys of the new texts' signatures ...
        self._new_band_texts: list[int] = []  # ... and their text ids
        self._queue: list[tuple[Incoming, str, bool]] = []  # stored hits, assigned at flush (one batch)
        self._sigs: dict[str, fam.Signature | None] = {}  # fingerprint -> signature, computed for the batch
        self._batch: dict[str, _Words] = {}  # text -> words, key, places, located places, place ids as JSON
        self._pending_texts: dict[int, str] = {}  # rowid -> text of this transaction's new signatures
        self._dirty_facets: set[tuple[int, str, str]] = set()
        self._new_facets: set[tuple[int, str, str]] = set()  # (of them: not in incident_facets yet)
        self._new_incs: set[int] = set()  # incidents and families made in this transaction (not in their tables)
        self._new_fams: set[int] = set()
        self._start_moved: set[int] = set()  # incidents whose first message changed (start_at rewritten)

    @property
    def gazetteer(self) -> Gazetteer:
        if self._gaz is None:
            self._gaz = load_gazetteer()
        return self._gaz

    # -- state and transactions -----------------------------------------------------------------
    def state(self, conn: sqlite3.Connection) -> _State:
        """The in-memory state, (re)loaded at the first use in a transaction when someone else
        (another process, another connection or tracker) changed the incident tables since: every
        writer bumps the generation counter in ``meta`` (one indexed read per transaction)."""
        st = self._state
        if self._in_tx and st is not None:
            return st
        gen = _generation(conn)
        if st is None or gen != st.gen:
            st = self._state = _State.load(conn, gen, self.settings)
        self._in_tx = True
        return st

    def flush(self, conn: sqlite3.Connection) -> None:
        """Assign the messages queued by :meth:`on_hits` (one batch) and write this
        transaction's changes (called by the archive before COMMIT)."""
        # The batch allocates many short-lived containers (candidate lists, rows) and the
        # state holds many long-lived ones: the cyclic collector's passes over them cost
        # 5-15 % of the assignment (docs/performance.md, "Incidents"). Nothing here makes
        # cycles; the collector runs again after the batch (its counters keep counting).
        with paused_gc():
            self._flush(conn)

    def _flush(self, conn: sqlite3.Connection) -> None:
        if self._queue:
            self._run_queue(conn)
        self._in_tx = False
        st = self._state
        if st is None or not (self._dirty_inc or self._changed_members or self._new_texts):
            self._reset_pending()
            return
        if self._new_texts:
            # (rows without a signature by a statement without the column: binding a None or a
            # bytes costs ~1 us each, sqlite3 looks for an adapter of any value that is not
            # exactly an int, float, str or bytearray: the blob goes as a bytearray)
            signed, bare = [], []
            for tid, key, fid, blob, rowid in self._new_texts:
                if blob is None:
                    bare += (tid, key, fid, rowid)
                else:
                    signed += (tid, key, fid, bytearray(blob), rowid)
            if signed:
                _insert_rows(conn, "INSERT OR FAIL INTO family_texts(id, fingerprint, family_id, signature, message_rowid)",
                             5, signed)
            if bare:
                _insert_rows(conn, "INSERT OR FAIL INTO family_texts(id, fingerprint, family_id, message_rowid)", 4, bare)
        if self._new_bands:
            self._write_bands(conn, st)
        if self._dirty_fam:
            fams, made, rows, old = st.families, self._new_fams, [], []
            for i in sorted(self._dirty_fam):
                f = fams[i]
                if i in made:
                    rows += (i, f.incident, f.first, f.first_date, f.members)
                else:
                    old += (i, f.first, f.first_date, f.members)
            # (a stored family keeps its incident: only corrections move one, and they reload
            # the state; leaving incident_id out spares idx_families_incident, ~2x quicker)
            _upsert_rows(conn, "families", ("id",), ("incident_id", "first_message_rowid", "first_date", "members"),
                         rows, old, ("first_message_rowid", "first_date", "members"))
        if self._new_members:
            # (most have no forward origin: written without the column, a None bound costs ~1 us)
            plain, forwards = [], []
            for r, (iid, fid, date, platform, channel, kind, rules, actors, places, how, origin, added) \
                    in self._new_members.items():
                if origin is None:
                    plain += (r, iid, fid, date, platform, channel, kind, _jl(rules), _jl(actors), places, how, added)
                else:
                    forwards += (r, iid, fid, date, platform, channel, kind, _jl(rules), _jl(actors), places, how,
                                 origin, added)
            head = ("INSERT OR FAIL INTO incident_messages(message_rowid, incident_id, family_id, date, platform,"
                    " channel_id, kind, rules, actors, places, how")
            if plain:
                _insert_rows(conn, head + ", added_at)", 12, plain)
            if forwards:
                _insert_rows(conn, head + ", origin, added_at)", 13, forwards)
        if self._changed_members:
            conn.executemany(
                "UPDATE incident_messages SET kind=?, rules=?, actors=? WHERE message_rowid=?",
                [(k, _j(ru), _j(ac), r) for r, (k, ru, ac) in self._changed_members.items()],
            )
        if self._dirty_facets:
            rows, old = [], []
            new_facets = self._new_facets
            for key in sorted(self._dirty_facets):
                iid, facet, value = key
                inc = st.incidents[iid]
                if facet == "place":
                    m, loc = inc.places[value]
                else:
                    m, loc = inc.actors[value], 0
                (rows if key in new_facets else old).extend((iid, facet, value, m, loc))
            _upsert_rows(conn, "incident_facets", ("incident_id", "facet", "value"), ("mentions", "located"), rows, old)
        if self._dirty_inc:
            rows, old, same, made, moved = [], [], [], self._new_incs, self._start_moved
            for iid in sorted(self._dirty_inc):
                inc = st.incidents[iid]
                places, actors = self._summary(inc)
                title = self.title(places, actors, inc.start)
                if iid in made:
                    rows += (iid, title, inc.start, inc.end, inc.first, _jl(places), _jl(actors), _j(inc.counts),
                             inc.messages, len(inc.channels), inc.updated, inc.created)
                elif iid in moved:
                    old += (iid, title, inc.start, inc.end, inc.first, _jl(places), _jl(actors), _j(inc.counts),
                            inc.messages, len(inc.channels), inc.updated)
                else:
                    same += (iid, title, inc.end, inc.first, _jl(places), _jl(actors), _j(inc.counts), inc.messages,
                             len(inc.channels), inc.updated)
            _upsert_rows(conn, "incidents", ("id",), _INCIDENT_WRITTEN + ("created_at",), rows, old, _INCIDENT_WRITTEN)
            if same:
                _upsert_rows(conn, "incidents", ("id",), _INCIDENT_SAME_START, [], same)
        st.gen += 1
        _set_generation(conn, st.gen)
        self._reset_pending()
        st.evict(self.settings)

    def _write_bands(self, conn: sqlite3.Connection, st: _State) -> None:
        """The new texts' band keys: kept in memory (:attr:`_State.staged`) and written to
        ``family_bands`` once, in key order, when :data:`STAGED_ROWS` are held, with the mark
        of the last text written (``meta.incidents_bands_written``; a process that loads the
        state computes the keys of the texts after it from their stored signatures). (Written
        straight into ``family_bands`` batch by batch, a batch's ~3,400 random keys changed
        nearly every page of it: the whole table went through the WAL at every commit, and
        again at the checkpoint. Staged in a small table and moved in bulk, every row was
        written twice.)"""
        keys, tids = self._new_bands, self._new_band_texts
        staged = st.staged
        for k, t in zip(keys, tids):  # (text ids ascending: oldest first per key)
            got = staged.get(k)
            if got is None:
                staged[k] = [t]
            else:
                got.append(t)
        st.staged_rows += len(keys)
        if st.staged_rows >= STAGED_ROWS:
            _insert_rows(conn, "INSERT OR FAIL INTO family_bands(band_key, text_id)", 2,
                         [v for k in sorted(staged) for t in staged[k] for v in (k, t)])
            _set_bands_written(conn, st.next_text - 1)  # (this batch's texts are in family_texts already)
            st.staged, st.staged_rows = {}, 0

    def discard(self) -> None:
        """The transaction rolled back: forget the state (reloaded from the tables when next needed)."""
        self._state = None
        self._in_tx = False
        self._reset_pending()

    def invalidate(self, conn: sqlite3.Connection) -> None:
        """The incident tables were changed with SQL (corrections, rebuild): drop the state and
        tell the other writers (the generation counter)."""
        self._state = None
        self._in_tx = False
        self._reset_pending()
        _set_generation(conn, _generation(conn) + 1)

    # -- entry point from the archive ----------------------------------------------------
    def on_hits(self, conn: sqlite3.Connection, rowid: int, row: Sequence[Any] | None, hits: Sequence[Any],
                now: str, *, new: bool = False) -> None:
        """Queue message ``rowid`` (its archive row values, see :mod:`monitor.archive.rows`)
        with its new ``hits`` for assignment: the messages of a transaction are assigned in
        order, as one batch, by :meth:`flush` before it commits (nothing reads the incident
        tables in between). ``new``: the message was just inserted (it cannot be in an
        incident yet)."""
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
            text=text or "", forwarded_from=fwd_d if isinstance(fwd_d, Mapping) else None,
            kind=strongest_kind(getattr(h, "kind", "watch") or "watch" for h in hits),
            rules=sorted({h.rule_id for h in hits}), actors=actors,
        )
        self.queue(inc, now, new=new)
        return None

    def queue(self, m: Incoming, now: str, *, new: bool = False) -> None:
        """Assign ``m`` at the next :meth:`flush`, after the messages queued before it."""
        self._queue.append((m, now, new))

    # -- assignment -------------------------------------------------------------------------
    def assign(self, conn: sqlite3.Connection, m: Incoming, now: str, *, barred: set[int] | None = None,
               new: bool = False) -> int:
        return self.assign_full(conn, m, now, barred=barred, new=new).incident_id

    def assign_full(self, conn: sqlite3.Connection, m: Incoming, now: str, *, barred: set[int] | None = None,
                    new: bool = False) -> Assigned:
        """Assign ``m`` now (after the queued messages) and say where it went."""
        if self._queue:
            self._run_queue(conn)
        st = self.state(conn)
        self._prepare(conn, st, [m])
        return self._assign_one(conn, st, m, now, barred, new)

    def _run_queue(self, conn: sqlite3.Connection) -> None:
        """Assign the queued messages in order: what can be done for all of them at once first
        (:meth:`_prepare`), then each in turn."""
        items, self._queue = self._queue, []
        st = self.state(conn)
        self._prepare(conn, st, [m for m, _now, _new in items])
        for m, now, new in items:
            self._assign_one(conn, st, m, now, None, new, False)

    def _prepare(self, conn: sqlite3.Connection, st: _State, batch: Sequence[Incoming]) -> None:
        """The batch's texts: words, exact-copy key and places once per distinct text (kept for
        the next batches: reposts are frequent); the MinHash signatures of the texts not known
        yet in one numpy pass; the exact-copy keys and band keys not held in memory looked up
        in the tables with one query each."""
        recents, given = self._recent, self._given
        self._batch = batch_words = {}
        fresh: dict[str, list[str]] = {}  # texts not known yet: fingerprint -> words
        ready: dict[str, fam.Signature | None] = {}  # (of them: signatures given, see give())
        keys: list[str] = []  # exact-copy keys to look up
        for m in batch:
            text = m.text
            got = batch_words.get(text) or recents.get(text)
            sig: Any = _UNSET
            prep = given.pop(text, None) if given else None
            if got is None:
                if prep is None:
                    got = self._words(text)
                else:
                    got, sig = self._from_prepared(text, prep)
            batch_words[text] = got
            fp = got[1]
            if fp is not None and fp not in st.texts:
                keys.append(fp)
                if len(got[0]) >= fam.MIN_WORDS:
                    if sig is not _UNSET and fp not in fresh:
                        ready[fp] = sig
                    else:
                        fresh[fp] = got[0]
            if m.forwarded_from:
                fwd = self._forward_keys(m)
                if fwd:
                    keys.append(fwd[0])
        if st.partial:
            st.prefetch_texts(conn, keys)
            cold = st.cold_fps
            fresh = {fp: ws for fp, ws in fresh.items() if cold.get(fp) is None}
            ready = {fp: sig for fp, sig in ready.items() if cold.get(fp) is None}
        for fp in ready.keys() & fresh.keys():  # (given, and met again in the batch: computed once)
            del fresh[fp]
        self._sigs = dict(zip(fresh, fam.signatures(list(fresh.values()))))
        if ready:
            self._sigs.update(ready)
        if st.cold_texts:
            st.prefetch_bands(conn, [k for sig in self._sigs.values() if sig is not None for k in sig.band_keys()])

    def _words(self, text: str) -> "_Words":
        """A text's words, exact-copy key, places and located places (:func:`_located`), kept
        for the texts that come again."""
        ws, fp, places, others = text_facts(text, self.gazetteer)
        got = (ws, fp, places, _located(places), _jl([p.id for p in places]), others)
        _put(self._recent, text, got, RECENT_TEXTS)
        return got

    def _from_prepared(self, text: str, prep: "Prepared") -> tuple["_Words", fam.Signature | None]:
        """:meth:`_words` and the signature of a text from its :func:`prepare_texts` tuple
        (made where the hit was produced): what the writer would compute, without computing it."""
        ws, fp, place_rows, places_json, others, blob, keys, shingles = prep
        places = [Place._make(r) for r in place_rows] if place_rows else []
        got = (ws, fp, places, _located(places), places_json, others)
        _put(self._recent, text, got, RECENT_TEXTS)
        if blob is None:
            return got, None
        n, *values = fam._BLOB.unpack(blob)
        return got, fam.Signature(values, n, keys, shingles, blob)

    def prepare_texts(self, texts: Sequence[str]) -> list["Prepared"]:
        """:func:`prepare_texts` with this tracker's gazetteer (for a process forked from this one)."""
        return prepare_texts(texts, self._gaz)

    def give(self, prepared: Iterable[tuple[str, "Prepared"]], *, kept: bool = False) -> None:
        """Texts prepared elsewhere (:func:`prepare_texts`, in the process that produced the
        hits): used by the next batch that assigns them instead of computing them here (each
        taken once). Bounded: when :data:`GIVEN_TEXTS` are held (a transaction storing more hits
        than that), the others are not kept and the writer computes them as before. ``kept``:
        prepared with the kept gazetteer (another process's :func:`prepare_texts` without one),
        not taken by a tracker given another gazetteer."""
        if kept and self._gaz is not None and self._gaz is not load_gazetteer():
            return
        given = self._given
        room = GIVEN_TEXTS - len(given)
        if room <= 0:
            return
        if not isinstance(prepared, list):
            prepared = list(prepared)
        given.update(prepared if len(prepared) <= room else prepared[:room])

    def _signature(self, fp: str | None, ws: list[str]) -> fam.Signature | None:
        """The text's signature (computed for the batch by :meth:`_prepare`, else now)."""
        if len(ws) < fam.MIN_WORDS:
            return None
        got = self._sigs.get(fp) if fp is not None else None
        if got is None:
            return fam.signature(ws)
        return got  # (the batch's own: nothing changes it, see _index_text)

    def _assign_one(self, conn: sqlite3.Connection, st: _State, m: Incoming, now: str, barred: set[int] | None,
                    new: bool, result: bool = True) -> Assigned | None:
        """Assign ``m``; with ``result`` False (a batch: :meth:`_run_queue`) nothing is returned."""
        if not new:
            existing = self._member(conn, m.rowid)
            if existing is not None:
                return self._update_member(conn, st, m, existing, now)
        ws, fp, places, loc, places_json, dems = self._batch.get(m.text) or self._words(m.text)
        sig: Any = _UNSET
        near: list[tuple[int, str]] = []
        family_id, how, origin = None, "", None
        # 1. the family of a text it copies
        fwd_keys = self._forward_keys(m) if m.forwarded_from else None
        if fwd_keys:
            origin = fwd_keys[1]
            family_id = self._forward_origin_family(conn, m, origin)
            if family_id is None:
                family_id = st.text_family(conn, fwd_keys[0])
            how = "forward" if family_id is not None else ""
        fp_known: bool | None = None  # is the text indexed already (None: not looked up)
        if family_id is None and fp is not None:
            family_id = st.text_family(conn, fp)
            fp_known = family_id is not None
            how = "copy" if fp_known else ""
        if family_id is None:
            sig = self._signature(fp, ws)
            if sig is not None:
                near = st.near_family(conn, sig, ws, self._pending_texts, loc[1], barred)
        for fid, text in near:
            inc = st.peek(conn, st.families[fid].incident)
            if inc is None or (barred and inc.id in barred) or _other_city(loc[1], inc):
                continue  # the same template about another attack
            if not self._in_window(inc, m.date) and not fam.same_numbers(ws, fam.words(text)):
                continue  # months later, another toll: the same template, another event
            family_id, how = fid, "near-copy"
            break
        incident_id: int | None = None
        if family_id is not None:
            f = st.family(conn, family_id)
            incident_id = f.incident if f is not None else None
            if incident_id is None or (barred and incident_id in barred) or st.incident(conn, incident_id) is None:
                family_id, how, incident_id = None, "", None
        if incident_id is None:
            order = _governments(m.kind, places, loc, dems) if places else None
            incident_id, how = self._choose(conn, st, m, places, barred or set(), loc, dems, order)
            if (how == "demonym" and places) or (order is not None and incident_id is not None):
                # joined by its speaker's country, or a statement naming governments only: the
                # countries it names are mentions there, not where it happened
                loc = ([(pid, 0, None) for pid, _located, _country in loc[0]], frozenset(), loc[2])
            elif order is not None:  # it opens one: where the first country it names is
                first = next((p.id for p in places if p.id in order or p.country_id in order), None)
                if first is not None:
                    loc = ([e if e[0] == first else (e[0], 0, None) for e in loc[0]], loc[1], loc[2])
            if incident_id is None:
                incident_id = st.next_incident
                st.next_incident += 1
                st.incidents[incident_id] = _Inc(incident_id, m.date, m.date, m.rowid, {}, 0, now, now)
                self._new_incs.add(incident_id)
                how = "new"
        # the family: a new one, or the copy joins (the text is indexed once)
        if family_id is None:
            family_id = st.next_family
            st.next_family += 1
            st.families[family_id] = _Family(family_id, incident_id, m.rowid, m.date, 0)
            self._new_fams.add(family_id)
        f = st.families[family_id]
        f.members += 1
        if m.date < f.first_date:
            f.first, f.first_date = m.rowid, m.date
        self._dirty_fam.add(family_id)
        self._index_text(conn, st, family_id, fp, sig, ws, fwd_keys[0] if fwd_keys else None, m, fp_known)
        self._new_members[m.rowid] = [incident_id, family_id, m.date, m.platform, m.channel_id, m.kind, m.rules,
                                      m.actors, places_json, how, origin, now]
        self._new_keys[(m.platform, m.channel_id, m.message_id)] = family_id
        self._add_to_incident(st, st.incidents[incident_id], m, places, now, loc)
        return Assigned(incident_id, family_id, how, f.first, True) if result else None

    def _in_window(self, inc: Any, when: str) -> bool:
        if inc is None:
            return False
        t = _ts(when)
        return inc.t0 - self.settings.window <= t <= inc.t1 + self.settings.window

    def _member(self, conn: sqlite3.Connection, rowid: int) -> tuple | None:
        pend = self._new_members.get(rowid)
        if pend is not None:
            return (pend[0], pend[5], pend[6], pend[7], pend[1], True)
        r = conn.execute(
            "SELECT incident_id, kind, rules, actors, family_id FROM incident_messages WHERE message_rowid=?", (rowid,)
        ).fetchone()
        if r is None:
            return None
        ch = self._changed_members.get(rowid)
        kind, rules, actors = ch if ch is not None else (r[1], json.loads(r[2]), json.loads(r[3]))
        return (r[0], kind, rules, actors, r[4], False)

    def _update_member(self, conn: sqlite3.Connection, st: _State, m: Incoming, existing: tuple, now: str) -> Assigned:
        incident_id, old_kind, old_rules, old_actors, family_id, pending = existing
        rules = sorted(set(old_rules) | set(m.rules))
        actors = list(dict.fromkeys([*old_actors, *m.actors]))
        kind = strongest_kind([old_kind, m.kind])
        if pending:
            pend = self._new_members[m.rowid]
            pend[5], pend[6], pend[7] = kind, rules, actors
        else:
            self._changed_members[m.rowid] = (kind, rules, actors)
        inc = st.incident(conn, incident_id)
        new_actors = [a for a in actors if a not in old_actors]
        if inc is not None and (kind != old_kind or new_actors):
            if kind != old_kind:
                inc.counts[old_kind] = max(0, inc.counts.get(old_kind, 0) - 1)
                inc.counts[kind] = inc.counts.get(kind, 0) + 1
            for a in new_actors:
                self._facet_actor(st, inc, a)
            inc.updated = now
            inc.touched = st.tick
            self._dirty_inc.add(incident_id)
        f = st.family(conn, family_id)
        return Assigned(incident_id, family_id, "member", f.first if f else None, False)

    # -- families ---------------------------------------------------------------------------
    @staticmethod
    def _forward_keys(m: Incoming) -> tuple[str, str] | None:
        f = m.forwarded_from
        if not f or not f.get("id") or not f.get("message_id"):
            return None
        origin = f"{m.platform}:{bare_channel_id(f['id'])}:{f['message_id']}"
        return "fwd:" + origin, origin

    def _forward_origin_family(self, conn: sqlite3.Connection, m: Incoming, origin: str) -> int | None:
        f = m.forwarded_from or {}
        bare = bare_channel_id(f.get("id"))
        ids = {bare, f"-100{bare}", f"-{bare}", str(f.get("id"))}
        for cid in ids:  # stored in this transaction (not written yet)?
            got = self._new_keys.get((m.platform, cid, str(f.get("message_id"))))
            if got is not None:
                return got
        ph = ",".join("?" * len(ids))
        row = conn.execute(
            f"SELECT im.family_id FROM messages ms JOIN incident_messages im ON im.message_rowid = ms.id"
            f" WHERE ms.platform=? AND ms.channel_id IN ({ph}) AND ms.message_id=? LIMIT 1",
            (m.platform, *ids, str(f.get("message_id"))),
        ).fetchone()
        return row[0] if row else None

    def _index_text(self, conn: sqlite3.Connection, st: _State, family_id: int, fp: str | None, sig: Any,
                    ws: list[str], fwd_key: str | None, m: Incoming, fp_known: bool | None) -> None:
        if fwd_key is not None and st.text_family(conn, fwd_key) is None:
            st.add_text(fwd_key, family_id)
            self._new_texts.append((st.next_text, fwd_key, family_id, None, m.rowid))
            st.next_text += 1
        if fp is None or fp_known or (fp_known is None and st.text_family(conn, fp) is not None):
            return
        if sig is _UNSET:  # joined as a copy or forward: a new text still gets indexed
            sig = self._signature(fp, ws)
        st.add_text(fp, family_id)
        tid = st.next_text
        self._new_texts.append((tid, fp, family_id, sig.to_blob() if sig is not None else None, m.rowid))
        st.next_text += 1
        if sig is not None:
            keys = sig.band_keys()
            st.add_signature(tid, family_id, m.rowid, keys)
            self._new_bands.extend(keys)
            self._new_band_texts.extend([tid] * len(keys))
            self._pending_texts[m.rowid] = m.text
            _put(st.text_cache, m.rowid, m.text, TEXT_CACHE)
            if sig.shingle_set is not None:  # likely compared soon (its reposts): keep its shingles
                _put(st.shingle_cache, m.rowid, (m.text, sig.shingle_set), SHINGLE_CACHE)

    # -- choosing an incident -------------------------------------------------------------------
    def _choose(self, conn: sqlite3.Connection, st: _State, m: Incoming, places: list[Place],
                barred: set[int], loc: tuple | None = None,
                dems: tuple[tuple[str, int], ...] = (), order: Sequence[str] | None = None) -> tuple[int | None, str]:
        """``order``: the countries of a statement or denial naming no city (:func:`_governments`)."""
        when = _ts(m.date)
        if places:
            if order is not None and m.kind == "denial" and m.actors:
                # a denial names the accused: where it was blamed (its actors) before its country
                got = self._by_actor(conn, st, m, when, barred)
                if got is not None:
                    return got, "actor"
            speakers = frozenset(c for c, rank in dems if rank == 2) if dems else frozenset()
            got = self._by_place(conn, st, m, when, places, barred, loc, speakers, order)
            if got is not None:
                return got
            return None, ""
        if dems:  # demonyms of speakers or mentions only: the incident of their country, if one is active
            got = self._by_demonym(conn, st, m, when, dems, barred)
            if got is not None:
                return got, "demonym"
        if m.actors:
            got = self._by_actor(conn, st, m, when, barred)
            if got is not None:
                return got, "actor"
        return None, ""

    def _by_actor(self, conn: sqlite3.Connection, st: _State, m: Incoming, when: float, barred: set[int]) -> int | None:
        """The incident active within ``actor_window`` sharing most actors with ``m`` (then the
        most recent)."""
        lo, hi = when - self.settings.actor_window, when + self.settings.actor_window
        best: tuple[tuple, int] | None = None
        actors = set(m.actors)
        st.load_active(conn, "actor", m.actors, lo, hi)
        for iid in st.active("actor", m.actors, lo, hi):
            if iid in barred:
                continue
            inc = st.incidents[iid]
            score = (len(actors & inc.actors.keys()), inc.end, -iid)
            if best is None or score > best[0]:
                best = (score, iid)
        return best[1] if best is not None else None

    def _by_demonym(self, conn: sqlite3.Connection, st: _State, m: Incoming, when: float,
                    dems: tuple[tuple[str, int], ...], barred: set[int]) -> int | None:
        """A message naming no place but demonyms that are not where it happened ("Iranian
        officials blamed ...", "the Nigerian army said"): the incident active within the window
        located in one of their countries, a speaker's before a mention's, then the most shared
        actors, then the most recent. None when there is none (the actor rule then decides: a
        speaker's nationality does not open an incident of its country)."""
        lo, hi = when - self.settings.window, when + self.settings.window
        rank = dict(dems)
        if st.partial and lo <= st.cold_until:
            st.load_active(conn, "place", rank, lo, hi)
        actors = set(m.actors)
        best: tuple[tuple, int] | None = None
        for iid in st.active("place", rank, lo, hi):
            if iid in barred:
                continue
            inc = st.incidents[iid]
            shared = [rank[c] for c in inc.loc_countries if c in rank]
            if not shared:
                continue
            score = (max(shared), len(actors & inc.actors.keys()), inc.end, -iid)
            if best is None or score > best[0]:
                best = (score, iid)
        return best[1] if best else None

    def _by_place(self, conn: sqlite3.Connection, st: _State, m: Incoming, when: float, places: list[Place],
                  barred: set[int], loc: tuple | None = None, speakers: frozenset[str] = frozenset(),
                  order: Sequence[str] | None = None) -> tuple[int, str] | None:
        """The incident a message naming ``places`` joins, and how ("place"; "demonym" when only
        the country of a speaker's demonym matched: "Iranian officials blamed Israel and the
        US" names the blamed countries, its speaker's country is where it happened). ``order``: a
        statement or denial naming governments only (:func:`_governments`): the incident located
        in the first of them that speaks wins (then shared actors, then the most recent)."""
        lo, hi = when - self.settings.window, when + self.settings.window
        _lp, cities, countries = loc or _located(places)
        if speakers and (cities or m.kind not in ("statement", "denial")):
            speakers = frozenset()  # (a city names where; a claim or report names its own country)
        # a capital named alone in a statement or denial stands for its government ("Tehran
        # blamed Washington"); in a claim or a report it is where it happened
        capitals = {p.id for p in places if p.id in cities and p.capital} if m.kind in ("statement", "denial") else set()
        actors = set(m.actors)
        best: tuple[tuple, int] | None = None
        how = "place"
        # an incident sharing a city beats any that shares only a country: look at those first
        if st.partial and lo <= st.cold_until:  # incidents not in memory may be within the window
            st.load_active(conn, "place", cities | countries | speakers, lo, hi)
        candidates = st.active("place", cities, lo, hi) - barred if cities else set()
        if not candidates:
            candidates = st.active("place", countries | speakers if speakers else countries, lo, hi)
        for incident_id in candidates:
            if incident_id in barred:
                continue
            inc = st.incidents[incident_id]
            inc_cities, inc_countries = inc.loc_cities, inc.loc_countries
            shared_cities = cities & inc_cities
            if shared_cities:
                strength = 2
            else:
                other = cities - capitals  # a capital alone may stand for its government
                if other and inc_cities:
                    continue  # another city: another attack
                if order is not None:  # governments: the one that speaks first
                    rank = next((i for i, c in enumerate(order) if c in inc_countries), None)
                    if rank is None:
                        continue
                    strength = 1 if order[rank] in countries else 0
                    score = (1, 0, -rank, len(actors & inc.actors.keys()) if actors else 0, inc.end, -incident_id)
                    if best is None or score > best[0]:
                        best = (score, incident_id)
                        how = "place" if strength else "demonym"
                    continue
                if countries & inc_countries:
                    strength = 1
                elif speakers and speakers & inc_countries:
                    strength = 0  # only by the speaker's country: after any named country
                else:
                    continue
            shared_actors = len(actors & inc.actors.keys()) if actors else 0
            score = (strength, len(shared_cities), len(countries & inc_countries) if strength == 1 else 0,
                     shared_actors, inc.end, -incident_id)
            if best is None or score > best[0]:
                best = (score, incident_id)
                how = "place" if strength else "demonym"
        if best is None:
            return None
        return best[1], how

    # -- incident rows --------------------------------------------------------------------------
    def _add_to_incident(self, st: _State, inc: _Inc, m: Incoming, places: list[Place], now: str,
                         loc: tuple | None = None) -> None:
        inc.counts[m.kind] = inc.counts.get(m.kind, 0) + 1
        inc.channels.add((m.platform, m.channel_id))
        grew = False
        if inc.first is None or m.date < inc.start:
            inc.first = m.rowid
            if m.date < inc.start:
                inc.start, inc.t0, grew = m.date, _ts(m.date), True
                self._start_moved.add(inc.id)
        if m.date > inc.end:
            inc.end, inc.t1, grew = m.date, _ts(m.date), True
        inc.messages += 1
        inc.updated = now
        inc.touched = st.tick
        if inc.t1 > st.latest:
            st.latest = inc.t1
        new_keys: list[tuple[str, str]] = []
        counted_places, iid = inc.places, inc.id
        for pid, located, country in (loc or _located(places))[0]:
            cur = counted_places.get(pid)
            if cur is not None and (cur[1] or not located):  # (_facet_place's mention, inline: most)
                cur[0] += 1
                self._dirty_facets.add((iid, "place", pid))
            elif self._facet_place(inc, pid, located, True):
                new_keys.append(("place", pid))
            # (a located city's country: unchanged once located)
            if country and ((cur := counted_places.get(country)) is None or not cur[1]) \
                    and self._facet_place(inc, country, 1, False):
                new_keys.append(("place", country))
        if m.actors:  # (_facet_actor without indexing, inline)
            dirty, iid, counted = self._dirty_facets, inc.id, inc.actors
            for a in m.actors:
                key = (iid, "actor", a)
                dirty.add(key)
                n = counted.get(a)
                if n is None:
                    self._new_facets.add(key)
                    counted[a] = 1
                    new_keys.append(("actor", a))
                else:
                    counted[a] = n + 1
        days = inc.days
        if days is None:
            st.index_days(inc)  # every key (the new ones too) over the whole span
        else:
            if grew and not (days[0] <= inc.t0 // BUCKET and inc.t1 // BUCKET <= days[1]):
                st.index_days(inc)  # every key over the days the span grew by (into another bucket)
            if new_keys:
                st.index_days(inc, new_keys)  # the new keys over the whole span
        self._dirty_inc.add(inc.id)

    def _facet_place(self, inc: _Inc, pid: str, located: int, mention: bool) -> bool:
        """Count a place; True when it became located (index it). The row is written only when
        it changed (a located city's country, not a mention, leaves it as it was after the first)."""
        cur = inc.places.get(pid)
        if cur is None:
            key = (inc.id, "place", pid)
            self._dirty_facets.add(key)
            self._new_facets.add(key)
            inc.places[pid] = [1 if mention else 0, located]
            if located:
                inc.locate(pid)
            return bool(located)
        if mention:
            cur[0] += 1
        if located and not cur[1]:
            cur[1] = 1
            inc.locate(pid)
            self._dirty_facets.add((inc.id, "place", pid))
            return True
        if mention:
            self._dirty_facets.add((inc.id, "place", pid))
        return False

    def _facet_actor(self, st: _State, inc: _Inc, actor: str, *, index: bool = True) -> bool:
        self._dirty_facets.add((inc.id, "actor", actor))
        fresh = actor not in inc.actors
        if fresh:
            self._new_facets.add((inc.id, "actor", actor))
        inc.actors[actor] = inc.actors.get(actor, 0) + 1
        if fresh and index and inc.days is not None:
            st.index_days(inc, [("actor", actor)])
        return fresh

    @staticmethod
    def _summary(inc: _Inc) -> tuple[list[str], list[str]]:
        # most mentioned first, then by value (values are unique: no key function needed)
        places = [v for _m, v in sorted([(-m, v) for v, (m, loc) in inc.places.items() if loc])]
        actors = [v for _m, v in sorted([(-m, v) for v, m in inc.actors.items()])]
        return places, actors

    def _refresh_summary(self, conn: sqlite3.Connection, incident_id: int, now: str) -> None:
        """``places``, ``actors`` (most mentioned first) and ``title`` from the facets (SQL; for
        the corrections, which rewrite the tables)."""
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


BIND_PER_STATEMENT = 240  # values bound to one multi-row INSERT (_insert_rows)


def _upsert_rows(conn: sqlite3.Connection, table: str, keys: tuple[str, ...], cols: tuple[str, ...], new: list[Any],
                 old: list[Any], update: tuple[str, ...] | None = None) -> None:
    """Write rows: ``new`` ones, not in the table (``keys`` then ``cols`` values each, flat:
    ``INSERT OR FAIL``, many rows a statement) and ``old`` ones (``keys`` then ``update``
    values each, ``update`` by default ``cols``: an ``UPDATE`` a row). (An ``INSERT ... ON
    CONFLICT DO UPDATE`` of many rows, or an ``UPDATE ... FROM (VALUES ...)``, makes SQLite
    keep a statement journal, a temporary file with the old content of every page it changes,
    to undo just that statement should a constraint fail: as many pages as the incident writes
    themselves went there. ``OR FAIL`` or one row a statement needs none: a failed statement
    fails the batch, and the archive rolls the transaction back. An ``UPDATE`` a row measured
    no slower than ``UPDATE OR FAIL ... FROM (VALUES ...)``.) Should a ``new`` row be in the
    table after all, the new rows are written again with an upsert."""
    upd = cols if update is None else update
    if new:
        ncols = len(keys) + len(cols)
        try:
            _insert_rows(conn, f"INSERT OR FAIL INTO {table}({', '.join(keys + cols)})", ncols, new)
        except sqlite3.IntegrityError:
            _insert_rows(conn, f"INSERT INTO {table}({', '.join(keys + cols)})", ncols, new,
                         f" ON CONFLICT({', '.join(keys)}) DO UPDATE SET "
                         + ", ".join(f"{c}=excluded.{c}" for c in cols))
    if old:
        nk, nc = len(keys), len(keys) + len(upd)
        conn.executemany(
            f"UPDATE {table} SET " + ", ".join(f"{c}=?" for c in upd) + " WHERE " + " AND ".join(f"{k}=?" for k in keys),
            [old[i + nk:i + nc] + old[i:i + nk] for i in range(0, len(old), nc)])


def _insert_rows(conn: sqlite3.Connection, head: str, ncols: int, flat: list[Any], tail: str = "") -> None:
    """``INSERT ... VALUES`` of many rows (``flat``: their ``ncols`` values each, row after
    row) with several rows per statement: the same rows in the same order as an
    ``executemany`` of one row each, with a fraction of its per-statement cost (binding and
    stepping a statement per row took ~a quarter of the time of writing ``family_bands``)."""
    per = max(1, BIND_PER_STATEMENT // ncols)  # rows per statement
    step = per * ncols
    whole = len(flat) // step * step
    if whole:
        conn.executemany(_values_sql(head, ncols, per, tail), [flat[i:i + step] for i in range(0, whole, step)])
    # the rest in statements of 2**k rows, largest first: a few statements the connection keeps
    # prepared (one of the rest's row count, new at nearly every batch, was parsed and prepared
    # each time: ~1 % of the assignment's instructions)
    left, at = (len(flat) - whole) // ncols, whole
    while left:
        rows = 1 << (left.bit_length() - 1)
        conn.execute(_values_sql(head, ncols, rows, tail), flat[at:at + rows * ncols])
        at += rows * ncols
        left -= rows


_VALUES_SQL: dict[tuple[str, int, int, str], str] = {}


def _values_sql(head: str, ncols: int, rows: int, tail: str) -> str:
    key = (head, ncols, rows, tail)
    sql = _VALUES_SQL.get(key)
    if sql is None:
        one = "(" + ",".join("?" * ncols) + ")"
        sql = _VALUES_SQL[key] = f"{head} VALUES {','.join([one] * rows)}{tail}"
    return sql


def _put(cache: OrderedDict, key: Any, value: Any, size: int) -> None:
    """Insert into an OrderedDict used as a FIFO cache of ``size`` entries. (Not a dict: a
    dict's first key after many deletions at the front is found by scanning the deleted
    slots, ~1,000 a call for 4,096 entries, measured 4.6 us a call against 0.6 us here.)"""
    cache[key] = value
    if len(cache) > size:
        cache.popitem(last=False)


def _demonym_places(dems: Sequence[Demonym]) -> tuple[list[Place], tuple[tuple[str, int], ...]]:
    """A text naming no place but demonyms: the countries of those that say where it happened
    ("Pakistani soldiers were killed", مدينة إيرانية) count as named countries (places); the
    others (speakers, mentions) are returned apart with their strength (:data:`_DEMONYM_RANK`)."""
    places: dict[str, Place] = {}
    for d in dems:
        if d.role == "where":
            places.setdefault(d.country.id, d.country)
    return list(places.values()), () if places else _demonym_speakers(dems)


def _governments(kind: str, places: Sequence[Place], loc: tuple,
                 dems: tuple[tuple[str, int], ...]) -> list[str] | None:
    """A statement or denial that names countries and no city (a capital named alone stands for
    its government): its countries, the one that speaks first (a speaker's demonym, "Iranian
    officials", then the countries in the order it names them: "Iran blamed Israel and the
    United States"); None for any other message. They are governments, not where it happened."""
    if kind not in ("statement", "denial"):
        return None
    order: list[str] = [c for c, rank in dems if rank == 2]
    cities = loc[1]
    for p in places:
        if p.kind == "city":
            if not p.capital or p.id not in cities:
                return None  # a city that is not a capital says where it happened
            c = p.country_id
        else:
            c = p.id
        if c and c not in order:
            order.append(c)
    return order or None


def _demonym_speakers(dems: Sequence[Demonym]) -> tuple[tuple[str, int], ...]:
    """Each country of the demonyms that are not where it happened, with its strength (a
    speaker's 2, a mention's 1; the strongest when named twice), in order of mention."""
    out: dict[str, int] = {}
    for d in dems:
        r = _DEMONYM_RANK.get(d.role)
        if r is not None and r > out.get(d.country.id, 0):
            out[d.country.id] = r
    return tuple(out.items())


def text_facts(text: str, gazetteer: Gazetteer) -> tuple[list[str], str | None, list[Place], tuple[tuple[str, int], ...]]:
    """A text's words, exact-copy key, places (with no place named, the countries of the
    demonyms that say where it happened) and the countries of its other demonyms with their
    strength: what assignment needs of a text that depends on nothing else."""
    ws = fam.words(text)
    places, dems = gazetteer.find_all(text, ws)
    others: tuple[tuple[str, int], ...] = ()
    if dems and not places:
        places, others = _demonym_places(dems)
    elif dems:
        others = _demonym_speakers(dems)
    return ws, fam.fingerprint(ws), places, others


# a text prepared where its hit was produced (prepare_texts): words, exact-copy key, places (as
# plain tuples) and their ids as JSON, demonym countries, and the signature's blob, band keys and
# shingles (None under MIN_WORDS). Plain lists, tuples, sets, str, int and bytes only: it goes
# through marshal or pickle.
Prepared = tuple[list[str], "str | None", list[tuple], str, tuple, "bytes | None", "list[int] | None",
                 "set[bytes] | None"]


def prepare_texts(texts: Sequence[str], gazetteer: Gazetteer | None = None) -> list[Prepared]:
    """The per-text work of assignment that depends on the text alone (words, exact-copy key,
    places, MinHash signature), for another process to do: the process that produced the hits
    computes it and the writer is given it (:meth:`IncidentTracker.give`), so the writer's serial
    path only applies it. The same values as the writer's own (:func:`text_facts`,
    :func:`~.families.signatures`); ``gazetteer`` must be the writer's (default: the kept one)."""
    gaz = gazetteer if gazetteer is not None else load_gazetteer()
    facts = [text_facts(t, gaz) for t in texts]
    sigs = fam.signatures([f[0] for f in facts])
    out: list[Prepared] = []
    for (ws, fp, places, others), sig in zip(facts, sigs):
        rows, ids = [tuple(p) for p in places], _jl([p.id for p in places])
        if sig is None:
            out.append((ws, fp, rows, ids, others, None, None, None))
        else:
            out.append((ws, fp, rows, ids, others, sig.to_blob(), sig.band_keys(), sig.shingle_set))
    return out


_Located = tuple[list[tuple[str, int, "str | None"]], frozenset[str], frozenset[str]]
_LOCATED: OrderedDict[tuple[str, ...], _Located] = OrderedDict()


def _located(places: Sequence[Place]) -> _Located:
    """:func:`located_places`, the located cities and the countries of the places named,
    memoised by the places (a text's are also kept with its words: :meth:`IncidentTracker._words`)."""
    key = tuple(p.id for p in places)
    got = _LOCATED.get(key)
    if got is None:
        lp = located_places(places)
        got = (lp, frozenset(pid for pid, loc, _c in lp if loc and pid.startswith("city:")),
               frozenset(p.country_id for p in places))
        _put(_LOCATED, key, got, 4096)
    return got


def _other_city(mine: frozenset[str], inc: Any) -> bool:
    """Does a message name (as where it happened) only cities other than the incident's?"""
    if not mine:
        return False
    theirs = inc.loc_cities
    return bool(theirs) and not (mine & theirs)


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key='incidents_generation'").fetchone()
    return int(row[0]) if row else 0


def bands_written(conn: sqlite3.Connection) -> int:
    """The last family text id whose band keys are in ``family_bands`` (every text with a
    signature up to it has its :data:`~.families.BANDS` rows there, the texts after it none:
    their keys are computed from their signatures; 0 when none is)."""
    row = conn.execute("SELECT value FROM meta WHERE key=?", (BANDS_MARK,)).fetchone()
    return int(row[0]) if row else 0


def _set_bands_written(conn: sqlite3.Connection, text_id: int) -> None:
    conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                 (BANDS_MARK, str(text_id)))


def _set_generation(conn: sqlite3.Connection, gen: int) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('incidents_generation', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (str(gen),),
    )


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


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # (json.dumps with options makes one a call)


def _j(v: Any) -> str:
    return _JSON.encode(v)


_JL: OrderedDict[tuple[str, ...], str] = OrderedDict()


def _jl(v: list[str]) -> str:
    """:func:`_j` of a list of strings, memoised (members repeat the same rules, actors, places)."""
    key = tuple(v)
    got = _JL.get(key)
    if got is None:
        got = _j(v)
        _put(_JL, key, got, 4096)
    return got
