"""The SQLite archive: :class:`Archive` and its write path (messages, versions, hits and the
outbox rows the policy decides, in one transaction).

Python API first (the CLI and the daemon only call this). Writes are batched: one
:meth:`Archive.store` call is one transaction holding messages, their versions, hits,
the outbox rows for those hits and the sources' checkpoints, so a crash at any moment
leaves either all of it or none of it.

The class is assembled from one module per concern:

    store.py        opening, transactions, the write path (store, store_rows, mark_deleted), reads
    bulk.py         chunks of new rows in one executemany, the FTS big-batch mode
    chain.py        versions and the hash chain
    checkpoints.py  sources' checkpoints;  channels.py  the channel cache
    status.py       source status rows and the archive's counts
    outcomes.py     StoreOutcome / StoreResult;  rows.py  Message -> row values;  schema.py  migrations

Storage imports no rules: text normalisation is :mod:`monitor.text`. Which outbox rows a
stored event creates is :mod:`monitor.alerts.policy` (``archive.policy``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from ..alerts import queue
from ..alerts.kinds import AlertKind
from ..alerts.policy import OutboxPolicy
from ..model import Deletion, Hit, Message, canonical_json, iso
from ..text import search_text
from ..timefmt import now_iso
from .bulk import BIG_BATCH_AFTER, BULK_MIN_ROWS, BULK_ROWS, BulkWriter, _BigBatch, _chunks, _MillisecondClock
from .chain import ChainWriter
from .channels import Channels
from .checkpoints import Checkpoints
from .outcomes import StoreOutcome, StoreResult, StoreStatus
from .rows import (
    CHANNEL, CHANNEL_ID, CHANNEL_TITLE, EDIT_DATE, EXTRA, INSERT_FTS, INSERT_MESSAGE, INSERT_NEW_MESSAGE, MEDIA,
    MESSAGE_ID, PLATFORM, RAW, RAW_SHA, SEARCH, TEXT, TEXT_SHA, Row, insert_params, prepare_row, row_key,
)
from .schema import migrate
from .status import SourceStatus
from .wal import WRITER_AUTOCHECKPOINT, WalCheckpointer, attach

_NEW, _EDITED, _UPDATED, _UNCHANGED = StoreStatus  # locals of the hot path

MAX_PAGES_ENV = "CLAIMWATCH_MAX_PAGE_COUNT"  # optional cap on the archive size, in pages

NEW_ARCHIVE_PAGE_SIZE = 8192
# versions.raw NULL means "the record messages.raw holds" (schema migration 2): before the
# message row's raw is replaced, such versions get their own copy.
_KEEP_SHARED_RAW = (
    "UPDATE versions SET raw=(SELECT raw FROM messages WHERE id=?) WHERE message_rowid=? AND raw IS NULL"
)


class ArchiveOpenError(OSError):
    """The archive path cannot be opened (a directory, no folder, not a database): one line."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "cannot open the archive"


def _unwritable_reason(path: str) -> str | None:
    """Why SQLite cannot write ``path`` (a new archive, or its ``-wal``/``-shm`` files next to
    it), in words: "unable to open database file" names no cause. None when nothing is found."""
    if path == ":memory:":
        return None
    p = Path(path).resolve()
    folder = p.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"its folder {folder} is on a read-only file system"
    except OSError:
        return None
    if p.exists() and not os.access(p, os.W_OK):
        return "the file is read-only (no write permission for this user)"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (f"its folder {folder} is not writable by this user (SQLite creates "
                f"{p.name}-wal and {p.name}-shm next to the archive)")
    for side in ("-wal", "-shm", "-journal"):
        other = Path(str(p) + side)
        if other.exists() and not os.access(other, os.R_OK | os.W_OK):
            return f"{other.name} next to it is not writable by this user"
    return None


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _open_error(path: str, exc: sqlite3.Error) -> ArchiveOpenError:
    reason = _unwritable_reason(path)
    return ArchiveOpenError(f"{path}: cannot open the archive for writing: {reason} ({exc})" if reason
                            else f"{path}: cannot open the archive: {exc}")


def _connect_readonly(path: str) -> sqlite3.Connection:
    """``mode=ro``; in a folder this process cannot write (no ``-shm`` can be created) the
    file is read as ``immutable`` (nobody can be writing it there)."""
    from urllib.parse import quote

    uri = "file:" + quote(str(Path(path).resolve()))
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error as exc:
        first = exc
    if not os.access(Path(path).resolve().parent, os.W_OK):
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False, isolation_level=None)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error:
            pass
    raise ArchiveOpenError(f"{path}: cannot open the archive: {first}")


def _check_is_archive(conn: sqlite3.Connection, path: str, readonly: bool) -> None:
    """Refuse a SQLite file that is not a claimwatch archive: another program's database
    (reading it would fail on a missing table; writing would add claimwatch's tables to it)
    or, to a reading command, an empty one. An empty file is a new archive to a writer."""
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    except sqlite3.Error as exc:
        conn.close()
        raise ArchiveOpenError(f"{path}: cannot open the archive: {exc}") from None
    if "meta" in tables and ("messages" in tables or not readonly):
        return  # an archive (to a writer, also one its first migration has only begun)
    if not tables and not readonly:
        return
    conn.close()
    if not tables:
        raise ArchiveOpenError(f"{path}: not a claimwatch archive (an empty database)")
    shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
    raise ArchiveOpenError(f"{path}: not a claimwatch archive (its tables: {shown}); give the archive's path")


class Archive(BulkWriter, ChainWriter, Checkpoints, Channels, SourceStatus):
    """An open archive. Create with :meth:`open`; use as a context manager to close."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.lock = threading.RLock()
        self._last_link: str | None = None
        self._big: _BigBatch | None = None  # set while a big store() batch runs
        self._clock: Callable[[], str] | None = None  # the rows' timestamps during store_rows
        # Which outbox rows stored events create (new hits, edits, deletions), inside the
        # store transaction: monitor.alerts.policy. The daemon and `import --alert` give it
        # the config's default destinations (OutboxPolicy.from_config).
        self.policy = OutboxPolicy()
        # Keeps incidents up to date as hits are stored (monitor.incidents), inside the store
        # transaction; None switches it off. Writable archives get one with default settings.
        self.incidents: Any = None
        # Checkpoints the write-ahead log on a thread of its own after commits (monitor.archive.wal);
        # None for a read-only or in-memory archive.
        self.checkpointer: WalCheckpointer | None = None

    # -- lifecycle ------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> "Archive":
        path = str(path)
        if path != ":memory:" and Path(path).is_dir():
            raise ArchiveOpenError(f"{path}: is a directory, not an archive file")
        if readonly:
            if not Path(path).exists():
                raise FileNotFoundError(f"archive not found: {path}")
            conn = _connect_readonly(path)
        else:
            if path != ":memory:":
                try:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ArchiveOpenError(f"{path}: cannot create its folder: {exc.strerror or exc}") from None
                if Path(path).exists() and not os.access(path, os.W_OK):
                    # SQLite would open it read-only and fail at the first write, naming no file
                    raise ArchiveOpenError(f"{path}: cannot open the archive for writing: {_unwritable_reason(path)}")
            try:
                conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as exc:
                raise _open_error(path, exc) from None
        conn.execute("PRAGMA busy_timeout=10000")
        if path != ":memory:":
            _check_is_archive(conn, path, readonly)
        if not readonly:
            try:
                if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
                    # A new archive: 8 kB pages hold ~4 message rows instead of 2 (imports ~10 %
                    # faster). Only possible before the first table and before WAL mode.
                    conn.execute(f"PRAGMA page_size={NEW_ARCHIVE_PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                migrate(conn)
            except sqlite3.OperationalError as exc:
                reason = _unwritable_reason(path)
                if reason is None:
                    raise
                conn.close()
                raise _open_error(path, exc) from None
            cap = os.environ.get(MAX_PAGES_ENV)
            if cap:
                # Caps the archive's size (tests fill it with this: SQLite then fails writes
                # with "database or disk is full", as on a full disk).
                conn.execute(f"PRAGMA max_page_count={int(cap)}")
        archive = cls(conn, path)
        if not readonly and path != ":memory:":
            # the writer checkpoints itself only past this bound; below it a thread does
            conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}")
            archive.checkpointer = attach(archive, path)
        if not readonly:
            from ..incidents import LazyTracker

            archive.incidents = LazyTracker()
        return archive

    @staticmethod
    def check_writable(path: str | Path) -> None:
        """Raise :class:`ArchiveOpenError` (one line) when :meth:`open` could not open ``path``
        for writing or it is not an archive, without creating anything: ``claimwatch run``
        checks this before it builds the rules (seconds for a big set), not after."""
        path = str(path)
        if path == ":memory:":
            return
        p = Path(path)
        if p.is_dir():
            raise ArchiveOpenError(f"{path}: is a directory, not an archive file")
        folder = p.resolve().parent
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if existing != folder:  # open() creates the folder: can it?
            why = (f"{existing} is not a folder" if not existing.is_dir()
                   else None if os.access(existing, os.W_OK | os.X_OK) and not _read_only_fs(existing)
                   else f"{existing} is not writable by this user")
            if why:
                raise ArchiveOpenError(f"{path}: cannot create its folder: {why}")
            return
        reason = _unwritable_reason(path)
        if reason is not None:
            raise ArchiveOpenError(f"{path}: cannot open the archive for writing: {reason}")
        if p.exists():
            conn = _connect_readonly(path)
            try:
                _check_is_archive(conn, path, readonly=False)
            finally:
                conn.close()

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()  # before the last connection: that one checkpoints all
        self.conn.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------
    def transaction(self) -> "_Tx":
        return _Tx(self)

    # -- writing --------------------------------------------------------------
    def store(
        self,
        items: Iterable[tuple[Message, Sequence[Hit]]],
        *,
        checkpoints: Mapping[tuple[str, str], str] | None = None,
        alerts: bool = True,
        collect: bool = True,
    ) -> StoreResult:
        """Store messages with their hits (and outbox rows) and checkpoints in ONE transaction.

        Idempotent: storing the same record again changes nothing. A changed text adds a
        version; a hit is unique per (message, rule, rule hash, text), and outbox rows are
        only created for hits that are new. ``alerts=False`` stores hits without outbox rows;
        ``collect=False`` keeps no per-message outcomes (bounded memory for big imports).
        """
        store_one = self._store_one
        insert_new = self._insert_new_rows
        all_new = self._all_new

        def bulk(chunk: list[tuple[Message, Sequence[Hit]]], result: StoreResult) -> bool:
            if len(chunk) < BULK_MIN_ROWS or not all_new([msg.key_tuple for msg, _hits in chunk]):
                return False  # before preparing: re-imports and edits go one by one
            rows = [(prepare_row(msg), hits) for msg, hits in chunk]
            return insert_new(rows, result, msgs=[msg for msg, _hits in chunk], alerts=alerts, collect=collect,
                              checked=True)

        return self._store_items(
            items, lambda item: store_one(item[0], item[1], alerts), checkpoints, collect, bulk=bulk
        )

    def store_prepared(
        self,
        items: Iterable[tuple[Row, Sequence[Hit], Message | None]],
        *,
        alerts: bool = True,
        collect: bool = True,
    ) -> StoreResult:
        """:meth:`store` for rows made elsewhere by :func:`.rows.prepare_row` (the bus's
        preparer processes, :mod:`monitor.bus.prepare`), with their hits and outbox rows:
        the same outcomes as :meth:`store` of the rows' messages. ``msg`` is needed only
        for an item with hits (the outbox policy reads it)."""
        store_row = self._store_row
        insert_new = self._insert_new_rows
        all_new = self._all_new

        def bulk(chunk: list[tuple[Row, Sequence[Hit], Message | None]], result: StoreResult) -> bool:
            if len(chunk) < BULK_MIN_ROWS or not all_new([(r[PLATFORM], r[CHANNEL_ID], r[MESSAGE_ID]) for r, _h, _m in chunk]):
                return False
            return insert_new([(r, h) for r, h, _m in chunk], result, msgs=[m for _r, _h, m in chunk], alerts=alerts,
                              collect=collect, checked=True)

        return self._store_items(items, lambda item: store_row(item[0], item[1], alerts, item[2]), None, collect,
                                 bulk=bulk)

    def store_rows(
        self,
        items: Iterable[tuple[Row, Sequence[Hit]]],
        *,
        checkpoints: Mapping[tuple[str, str], str] | None = None,
        collect: bool = True,
    ) -> StoreResult:
        """:meth:`store` for rows made by :func:`.rows.prepare_row` (e.g. in a preparer
        process): the same outcomes, in one transaction; hits are stored without outbox rows."""
        store_row = self._store_row
        self._clock = _MillisecondClock()
        try:
            insert_new = self._insert_new_rows
            return self._store_items(
                items, lambda item: store_row(item[0], item[1], False, None), checkpoints, collect,
                bulk=lambda chunk, result: len(chunk) >= BULK_MIN_ROWS and insert_new(chunk, result, collect=collect),
            )
        finally:
            self._clock = None

    def _now(self) -> str:
        return self._clock() if self._clock is not None else now_iso()

    def _store_items(
        self,
        items: Iterable[Any],
        store_one: Callable[[Any], StoreOutcome],
        checkpoints: Mapping[tuple[str, str], str] | None,
        collect: bool,
        *,
        bulk: Callable[[list[Any], StoreResult], bool] | None = None,
    ) -> StoreResult:
        """The store loop. ``bulk(chunk, result)`` may store a whole chunk of items at once
        (returns False, having stored nothing, to leave it to ``store_one``)."""
        result = StoreResult()
        tx = self.transaction()
        with self.lock, tx:
            try:
                big_at = BIG_BATCH_AFTER if tx.outer else -1
                for chunk in _chunks(items, BULK_ROWS) if bulk is not None else (items,):
                    if bulk is not None and bulk(chunk, result):
                        continue
                    self._store_chunk(chunk, store_one, result, big_at, collect)
                for (source, channel), value in (checkpoints or {}).items():
                    self._set_checkpoint(source, channel, value)
                self._end_big_batch()
            finally:
                # On an exception the rollback restores the trigger, the index and the FTS config.
                self._big = None
        return result

    def _store_chunk(
        self, items: Iterable[Any], store_one: Callable[[Any], StoreOutcome], result: StoreResult, big_at: int,
        collect: bool,
    ) -> None:
        for item in items:
            outcome = store_one(item)
            status = outcome.status
            if status is _NEW:
                result.new += 1
                if result.new == big_at:
                    self._begin_big_batch(outcome.message_rowid - BIG_BATCH_AFTER + 1)
            elif status is _UNCHANGED:
                result.unchanged += 1
            elif status is _EDITED:
                result.edited += 1
            else:
                result.updated += 1
            if outcome.new_hit_ids or outcome.new_outbox_ids:
                result.hits += len(outcome.new_hit_ids)
                result.outbox += len(outcome.new_outbox_ids)
                result.followups += outcome.followups
            if collect:
                result.outcomes.append(outcome)

    def _store_one(self, msg: Message, hits: Sequence[Hit], alerts: bool) -> StoreOutcome:
        return self._store_row(prepare_row(msg, search=False), hits, alerts, msg)

    def _store_row(self, row: Row, hits: Sequence[Hit], alerts: bool, msg: Message | None) -> StoreOutcome:
        """Store one prepared row (see :mod:`.rows`); ``msg`` is only needed for outbox rows."""
        c = self.conn
        raw_sha = row[RAW_SHA]
        big = self._big
        if big is not None and self._channel_was_empty(big, row[PLATFORM], row[CHANNEL_ID]):
            # Most likely new: insert straight away (a repeat within the batch falls through).
            now = self._now()
            params = insert_params(row, now)
            cur = c.execute(INSERT_NEW_MESSAGE, params)
            if cur.rowcount == 1:
                rowid = cur.lastrowid
                c.execute(INSERT_FTS, (rowid, params[SEARCH]))
                key = row_key(row)
                self._add_version(rowid, key, row, None, now)
                outcome = StoreOutcome(key, _NEW, rowid)
                if hits:
                    self._store_hits(outcome, msg, hits, row[TEXT_SHA], alerts, now, row)
                return outcome
        found = c.execute(
            "SELECT id, raw_sha256, text, edit_date FROM messages WHERE platform=? AND channel_id=? AND message_id=?",
            (row[PLATFORM], row[CHANNEL_ID], row[MESSAGE_ID]),
        ).fetchone()
        key = row_key(row)
        if found is not None and found[1] == raw_sha:  # the same record again
            outcome = StoreOutcome(key, _UNCHANGED, found[0])
            if hits:
                self._store_hits(outcome, msg, hits, row[TEXT_SHA], alerts, self._now(), row)
            return outcome
        now = self._now()
        text = row[TEXT]
        if found is None:
            params = insert_params(row, now)
            rowid = c.execute(INSERT_MESSAGE, params).lastrowid
            if big is not None:
                c.execute(INSERT_FTS, (rowid, params[SEARCH]))
            self._add_version(rowid, key, row, None, now)
            status = _NEW
        else:
            rowid = found[0]
            text_changed = found[2] != text
            added = False
            if text_changed:
                added = self._add_version(rowid, key, row, row[RAW], now)
            stored_edit = found[3]
            incoming_edit = row[EDIT_DATE]
            is_older = stored_edit is not None and (incoming_edit is None or incoming_edit < stored_edit)
            if not is_older:
                # A version sharing the message row's raw record (raw NULL) keeps it.
                c.execute(_KEEP_SHARED_RAW, (rowid, rowid))
                if not text_changed:
                    search = c.execute("SELECT search_text FROM messages WHERE id=?", (rowid,)).fetchone()[0]
                else:
                    search = row[SEARCH] if row[SEARCH] is not None else search_text(text)
                c.execute(
                    "UPDATE messages SET text=?, edit_date=?, raw=?, raw_sha256=?, search_text=?, media=?,"
                    " extra=?, channel=COALESCE(?, channel), channel_title=COALESCE(?, channel_title),"
                    " updated_at=? WHERE id=?",
                    (text, incoming_edit, row[RAW], raw_sha, search, row[MEDIA], row[EXTRA],
                     row[CHANNEL], row[CHANNEL_TITLE], now, rowid),
                )
                if not added:
                    self._chain_raw(rowid, key, row)
            status = _EDITED if added else _UPDATED
        outcome = StoreOutcome(key, status, rowid)
        if status is _EDITED:
            outcome.previous_text = found[2]
        if hits:
            self._store_hits(outcome, msg, hits, row[TEXT_SHA], alerts, now, row)
        if status is _EDITED and alerts:
            followups = self.policy.on_edit(self, rowid, found[2], now)
            outcome.new_outbox_ids.extend(followups)
            outcome.followups = len(followups)
        return outcome

    def _store_hits(
        self, outcome: StoreOutcome, msg: Message | None, hits: Sequence[Hit], text_sha: str, alerts: bool, now: str,
        row: Row | None = None,
    ) -> None:
        c = self.conn
        rowid = outcome.message_rowid
        new: list[tuple[int, Hit]] = []
        for hit in hits:
            cur = c.execute(
                "INSERT OR IGNORE INTO hits(message_rowid, rule_id, rule_hash, level, title, tags, matches,"
                " text_sha256, created_at, kind, actors, score) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rowid,
                    hit.rule_id,
                    hit.rule_hash,
                    hit.level,
                    hit.title,
                    canonical_json(list(hit.tags)) if hit.tags else None,
                    canonical_json([m.to_dict() for m in hit.matches]),
                    text_sha,
                    now,
                    hit.kind,
                    canonical_json(list(hit.actors)) if hit.actors else None,
                    hit.score,
                ),
            )
            if cur.rowcount != 1:
                continue
            new.append((cur.lastrowid, hit))
        if not new:
            return
        if self.incidents is not None:  # in memory now; its rows are written before COMMIT (_Tx)
            self.incidents.on_hits(c, rowid, row, [h for _i, h in new], now, new=outcome.status is _NEW)
        outcome.new_hit_ids.extend(hit_id for hit_id, _hit in new)
        if alerts and msg is not None:  # one alert per destination for all of them
            outcome.new_outbox_ids.extend(self.policy.on_hits(self, new, msg, now))

    def enqueue(
        self,
        hit_id: int | None,
        destination: str,
        *,
        kind: str = AlertKind.ALERT,
        payload: Mapping[str, Any] | None = None,
        dedup_key: str | None = None,
        due: str | None = None,
        now: str | None = None,
    ) -> int | None:
        """Add an outbox row (inside the caller's transaction): :func:`monitor.alerts.queue.enqueue`."""
        return queue.enqueue(self.conn, hit_id, destination, kind=kind, now=now or now_iso(), payload=payload,
                             dedup_key=dedup_key, due=due)

    def mark_deleted(self, deletion: Deletion, *, alerts: bool = True, result: StoreResult | None = None) -> list[int]:
        """Mark messages deleted (kept, never removed). Returns the row ids newly marked.

        With ``alerts`` the outbox policy queues ``deleted`` follow-ups (in the same
        transaction); ``result`` (if given) counts them."""
        ids: list[int] = []
        now = now_iso()
        when = iso(deletion.date) if deletion.date else now
        with self.lock, self.transaction():
            for mid in deletion.message_ids:
                if deletion.channel_id is None:
                    rows = self.conn.execute(
                        "SELECT id FROM messages WHERE platform=? AND message_id=? AND deleted_at IS NULL",
                        (deletion.platform, mid),
                    ).fetchall()
                else:
                    rows = self.conn.execute(
                        "SELECT id FROM messages WHERE platform=? AND channel_id=? AND message_id=?"
                        " AND deleted_at IS NULL",
                        (deletion.platform, deletion.channel_id, mid),
                    ).fetchall()
                for (rid,) in rows:
                    self.conn.execute("UPDATE messages SET deleted_at=? WHERE id=?", (when, rid))
                    ids.append(rid)
                    if alerts:
                        followups = len(self.policy.on_delete(self, rid, now))
                        if result is not None:
                            result.outbox += followups
                            result.followups += followups
        return ids

    # -- reading --------------------------------------------------------------
    def query(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows of a SELECT as dicts (column name -> value)."""
        cur = self.conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        for row in cur:
            yield dict(zip(names, row))

    def get_message(self, platform: str, channel_id: str, message_id: str) -> dict[str, Any] | None:
        rows = list(
            self.query(
                "SELECT * FROM messages WHERE platform=? AND channel_id=? AND message_id=?",
                (platform, channel_id, message_id),
            )
        )
        return rows[0] if rows else None

    def message_from_row(self, row: Mapping[str, Any]) -> Message:
        """Rebuild a Message from a messages row (for re-matching and export)."""
        d = dict(row)
        d["forwarded_from"] = json.loads(d["forwarded_from"]) if d.get("forwarded_from") else None
        d["media"] = json.loads(d["media"]) if d.get("media") else []
        d["extra"] = json.loads(d["extra"]) if d.get("extra") else {}
        d["raw"] = json.loads(d["raw"]) if d.get("raw") else None
        return Message.from_dict(d)

    def iter_messages(self, where: str = "", args: Sequence[Any] = (), batch: int = 1000) -> Iterator[Message]:
        sql = "SELECT * FROM messages" + (f" WHERE {where}" if where else "") + " ORDER BY id"
        for row in self.query(sql, args):
            yield self.message_from_row(row)


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT / ROLLBACK; nested use joins the outer transaction."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.outer = False

    def __enter__(self) -> sqlite3.Connection:
        conn = self.archive.conn
        if conn.in_transaction:
            self.outer = False
        else:
            conn.execute("BEGIN IMMEDIATE")
            self.outer = True
            # Another process (an import while the daemon runs) may have extended the chain
            # since our last transaction: read the tip again, now that we hold the write lock.
            self.archive._last_link = None
        return conn

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if not self.outer:
            return
        conn = self.archive.conn
        self.archive._last_link = None  # read the tip again in the next transaction
        incidents = self.archive.incidents
        if exc_type is None and incidents is not None:
            try:
                incidents.flush(conn)  # the incident rows this transaction changed
            except BaseException:
                self._rollback(conn)
                raise
        if exc_type is None:
            try:
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
            if self.archive.checkpointer is not None:
                self.archive.checkpointer.nudge()
        else:
            # SQLite may have rolled back already (SQLITE_FULL, SQLITE_IOERR): a second
            # ROLLBACK would raise "no transaction is active" and hide the real error.
            self._rollback(conn)

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # the original error is what matters
                pass
        self.archive._last_link = None  # the chain head may have been rolled back
        if self.archive.incidents is not None:
            self.archive.incidents.discard()  # its in-memory state may hold rolled-back rows
