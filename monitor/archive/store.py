"""The SQLite archive: messages, versions, hits, outbox, checkpoints, channels, FTS, hash chain.

Python API first (the CLI and the daemon only call this). Writes are batched: one
:meth:`Archive.store` call is one transaction holding messages, their versions, hits,
the outbox rows for those hits and the sources' checkpoints, so a crash at any moment
leaves either all of it or none of it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from itertools import islice
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import sqlite_utils

from ..alerts import queue
from ..alerts.kinds import AlertKind
from ..alerts.policy import OutboxPolicy
from ..model import Deletion, Hit, Message, canonical_json, iso, sha256_hex
from ..text import search_text
from ..timefmt import now_iso
from .rows import (
    CHANNEL, CHANNEL_ID, CHANNEL_TITLE, EDIT_DATE, EXTRA, MEDIA, MESSAGE_ID, PLATFORM, RAW, RAW_SHA, SEARCH,
    RECORD_SHA, TEXT, TEXT_SHA, Row, prepare_row, record_hash, row_key,
)
from .schema import migrate

GENESIS = "0" * 64
MAX_PAGES_ENV = "CLAIMWATCH_MAX_PAGE_COUNT"  # optional cap on the archive size, in pages

# A store() call switches to "big batch" mode once it has inserted BIG_BATCH_AFTER new
# messages one by one (if it owns its transaction), or when it inserts a chunk of at least
# BULK_MIN_ROWS new messages at once (also inside the daemon writer's transaction):
# * new rows go into the full-text index by a plain INSERT next to the message INSERT instead
#   of the insert trigger: FTS5 flushes its pending terms at every statement that writes it
#   through a trigger (a statement journal), which cost ~35 us per row; the trigger is
#   dropped and recreated inside the transaction, so a rollback restores it;
# * FTS5 may keep up to BIG_BATCH_FTS_HASH bytes of pending terms before writing a segment
#   (default 1 MB; fewer, larger segments and merges: ~1/3 less indexing time);
# * messages of channels that had no rows before the batch are inserted without a lookup.
BIG_BATCH_AFTER = 256
BIG_BATCH_FTS_HASH = 32 * 1024 * 1024
FTS_DEFAULT_HASH = 1024 * 1024
_FTS_INSERT_TRIGGER = "messages_ai"
_INSERT_MESSAGE = (
    "INSERT INTO messages(platform, channel_id, message_id, channel, channel_title, date, edit_date,"
    " author, text, lang, url, reply_to, forwarded_from, media, grouped_id, extra, raw, raw_sha256,"
    " search_text, first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_NEW_MESSAGE = _INSERT_MESSAGE + " ON CONFLICT(platform, channel_id, message_id) DO NOTHING"
_INSERT_FTS = "INSERT INTO messages_fts(rowid, search_text) VALUES (?, ?)"
_INSERT_VERSION = (
    "INSERT INTO versions(message_rowid, text, text_sha256, edit_date, raw, raw_sha256, record_sha256, seen_at)"
    " VALUES (?,?,?,?,?,?,?,?)"
)
_INSERT_CHAIN = "INSERT INTO chain(version_id, msg_key, record_sha256, link_sha256) VALUES (?,?,?,?)"
NEW_ARCHIVE_PAGE_SIZE = 8192
BULK_ROWS = 500  # rows per executemany (chunks of new messages)
BULK_MIN_ROWS = 64  # smaller chunks are stored one by one
# versions.raw NULL means "the record messages.raw holds" (schema migration 2): before the
# message row's raw is replaced, such versions get their own copy.
_KEEP_SHARED_RAW = (
    "UPDATE versions SET raw=(SELECT raw FROM messages WHERE id=?) WHERE message_rowid=? AND raw IS NULL"
)


def chain_link(previous: str, record_sha256: str) -> str:
    return sha256_hex(previous + record_sha256)


class StoreStatus(StrEnum):
    """What storing one message did."""

    NEW = "new"
    EDITED = "edited"  # a new text: a new version
    UPDATED = "updated"  # same text, other fields changed (views, media …)
    UNCHANGED = "unchanged"  # the same record again


_NEW, _EDITED, _UPDATED, _UNCHANGED = StoreStatus  # locals of the hot path


@dataclass
class StoreOutcome:
    key: str
    status: StoreStatus
    message_rowid: int
    new_hit_ids: list[int] = field(default_factory=list)
    new_outbox_ids: list[int] = field(default_factory=list)
    previous_text: str | None = None  # for status "edited": the text stored before
    followups: int = 0  # of new_outbox_ids: edited follow-ups


@dataclass
class StoreResult:
    new: int = 0
    edited: int = 0
    updated: int = 0
    unchanged: int = 0
    hits: int = 0
    outbox: int = 0
    followups: int = 0  # of outbox: edited/deleted follow-ups
    outcomes: list[StoreOutcome] = field(default_factory=list)

    def add(self, other: "StoreResult") -> None:
        self.new += other.new
        self.edited += other.edited
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.hits += other.hits
        self.outbox += other.outbox
        self.followups += other.followups

    def as_dict(self) -> dict[str, int]:
        return {
            "new": self.new,
            "edited": self.edited,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "hits": self.hits,
            "outbox": self.outbox,
        }


class ArchiveOpenError(OSError):
    """The archive path cannot be opened (a directory, no folder, not a database): one line."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "cannot open the archive"


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


class Archive:
    """An open archive. Create with :meth:`open`; use as a context manager to close."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.db = sqlite_utils.Database(conn)
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
            try:
                conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as exc:
                raise ArchiveOpenError(f"{path}: cannot open the archive: {exc}") from None
        conn.execute("PRAGMA busy_timeout=10000")
        if not readonly:
            if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
                # A new archive: 8 kB pages hold ~4 message rows instead of 2 (imports ~10 %
                # faster). Only possible before the first table and before WAL mode.
                conn.execute(f"PRAGMA page_size={NEW_ARCHIVE_PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn)
            cap = os.environ.get(MAX_PAGES_ENV)
            if cap:
                # Caps the archive's size (tests fill it with this: SQLite then fails writes
                # with "database or disk is full", as on a full disk).
                conn.execute(f"PRAGMA max_page_count={int(cap)}")
        archive = cls(conn, path)
        if not readonly:
            from ..incidents import LazyTracker

            archive.incidents = LazyTracker()
        return archive

    def close(self) -> None:
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

    def _all_new(self, keys: Sequence[tuple[str, str, str]]) -> bool:
        """Are all these (platform, channel_id, message_id) distinct and not in the archive?"""
        by_channel: dict[tuple[str, str], list[str]] = {}
        for platform, channel_id, message_id in keys:
            by_channel.setdefault((platform, channel_id), []).append(message_id)
        for (platform, channel_id), ids in by_channel.items():
            if len(set(ids)) != len(ids):
                return False
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                if self.conn.execute(
                    f"SELECT 1 FROM messages WHERE platform=? AND channel_id=? AND message_id IN ({','.join('?' * len(part))})"
                    " LIMIT 1",
                    (platform, channel_id, *part),
                ).fetchone():
                    return False
        return True

    def _insert_new_rows(
        self,
        chunk: list[tuple[Row, Sequence[Hit]]],
        result: StoreResult,
        *,
        msgs: Sequence[Message] | None = None,
        alerts: bool = False,
        collect: bool = False,
        checked: bool = False,
    ) -> bool:
        """Insert a chunk of prepared rows that are all new with one ``executemany`` per table
        (same rows, ids, versions, chain, hits and outbox rows as one by one; ``msgs``, the
        rows' Messages, for the outbox policy). False, storing nothing, if any key is in the
        archive already or repeats within the chunk. Starts a big batch (see
        BIG_BATCH_AFTER) when the transaction has none yet: the chunk is big enough to pay
        for the trigger swap."""
        c = self.conn
        if not checked and not self._all_new([(row[PLATFORM], row[CHANNEL_ID], row[MESSAGE_ID]) for row, _h in chunk]):
            return False
        now = self._now()
        insert_params = self._insert_params
        params = [insert_params(row, now) for row, _hits in chunk]
        # New rows take max(id) + 1 in turn (no row can conflict: checked above).
        first_id = c.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0] + 1
        if self._big is None:
            self._begin_big_batch(first_id)
        c.executemany(_INSERT_MESSAGE, params)
        last_id = first_id + len(chunk) - 1
        if c.execute("SELECT max(id) FROM messages").fetchone()[0] != last_id:  # cannot happen; be sure
            raise RuntimeError("archive: bulk insert did not assign consecutive ids")
        if self._big is not None:  # else the insert trigger indexed them
            c.executemany(_INSERT_FTS, [(first_id + i, p[SEARCH]) for i, p in enumerate(params)])
        first_vid = c.execute("SELECT coalesce(max(id), 0) FROM versions").fetchone()[0] + 1
        versions, chain = [], []
        link = self._previous_link()
        for i, (row, _hits) in enumerate(chunk):
            key = row_key(row)
            rec = row[RECORD_SHA] or record_hash(key, row[TEXT], row[RAW_SHA])
            versions.append((first_id + i, row[TEXT], row[TEXT_SHA], row[EDIT_DATE], None, row[RAW_SHA], rec, now))
            link = chain_link(link, rec)
            chain.append((first_vid + i, key, rec, link))
        c.executemany(_INSERT_VERSION, versions)
        c.executemany(_INSERT_CHAIN, chain)
        self._last_link = link
        result.new += len(chunk)
        for i, (row, hits) in enumerate(chunk):
            if not hits and not collect:
                continue
            outcome = StoreOutcome(chain[i][1], _NEW, first_id + i)
            if hits:
                self._store_hits(outcome, msgs[i] if msgs is not None else None, hits, row[TEXT_SHA], alerts, now, row)
                result.hits += len(outcome.new_hit_ids)
                result.outbox += len(outcome.new_outbox_ids)
            if collect:
                result.outcomes.append(outcome)
        return True

    # -- big batches (imports) ----------------------------------------------------------
    def _begin_big_batch(self, first_new_rowid: int) -> None:
        c = self.conn
        row = c.execute(
            "SELECT sql FROM sqlite_master WHERE type='trigger' AND name=? AND tbl_name='messages'",
            (_FTS_INSERT_TRIGGER,),
        ).fetchone()
        if row is None:  # not the schema this code knows: leave indexing alone
            return
        hash_row = c.execute("SELECT v FROM messages_fts_config WHERE k='hashsize'").fetchone()
        big = _BigBatch(
            trigger_sql=row[0],
            first_new_rowid=first_new_rowid,
            fts_hash=int(hash_row[0]) if hash_row else FTS_DEFAULT_HASH,
        )
        c.execute(f"DROP TRIGGER {_FTS_INSERT_TRIGGER}")
        c.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('hashsize', ?)", (BIG_BATCH_FTS_HASH,))
        self._big = big

    def _end_big_batch(self) -> None:
        """Recreate the insert trigger and restore the FTS config (inside the transaction)."""
        big = self._big
        if big is None:
            return
        self.conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('hashsize', ?)", (big.fts_hash,))
        self.conn.execute(big.trigger_sql)

    def _channel_was_empty(self, big: "_BigBatch", platform: str, channel_id: str) -> bool:
        """Did the channel have no rows before this batch began?"""
        empty = big.empty_channels.get((platform, channel_id))
        if empty is None:
            empty = self.conn.execute(
                "SELECT 1 FROM messages WHERE platform=? AND channel_id=? AND id < ? LIMIT 1",
                (platform, channel_id, big.first_new_rowid),
            ).fetchone() is None
            big.empty_channels[(platform, channel_id)] = empty
        return empty

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
            params = self._insert_params(row, now)
            cur = c.execute(_INSERT_NEW_MESSAGE, params)
            if cur.rowcount == 1:
                rowid = cur.lastrowid
                c.execute(_INSERT_FTS, (rowid, params[SEARCH]))
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
            params = self._insert_params(row, now)
            rowid = c.execute(_INSERT_MESSAGE, params).lastrowid
            if big is not None:
                c.execute(_INSERT_FTS, (rowid, params[SEARCH]))
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

    @staticmethod
    def _insert_params(row: Row, now: str) -> tuple:
        if row[SEARCH] is None:
            return (*row[:SEARCH], search_text(row[TEXT]), now, now)
        return (*row[:TEXT_SHA], now, now)

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
                " text_sha256, created_at, kind, actors) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
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
                ),
            )
            if cur.rowcount != 1:
                continue
            new.append((cur.lastrowid, hit))
        if not new:
            return
        if self.incidents is not None:  # in memory now; its rows are written before COMMIT (_Tx)
            self.incidents.on_hits(c, rowid, row, [h for _i, h in new], now, new=outcome.status is _NEW)
        for hit_id, hit in new:
            outcome.new_hit_ids.append(hit_id)
            if alerts and msg is not None:
                outcome.new_outbox_ids.extend(self.policy.on_hit(self, hit_id, hit, msg, now))

    def _add_version(self, rowid: int, key: str, row: Row, raw_json: str | None, now: str) -> bool:
        """Add a version (and its chain record) unless this text has one. ``raw_json`` None:
        the record is the one the message row holds (``messages.raw``), not stored twice."""
        raw_sha = row[RAW_SHA]
        text = row[TEXT]
        rec = row[RECORD_SHA] or record_hash(key, text, raw_sha)
        cur = self.conn.execute(
            "INSERT OR IGNORE" + _INSERT_VERSION[len("INSERT"):],
            (rowid, text, row[TEXT_SHA], row[EDIT_DATE], raw_json, raw_sha, rec, now),
        )
        if cur.rowcount != 1:
            return False
        link = chain_link(self._previous_link(), rec)
        self.conn.execute(_INSERT_CHAIN, (cur.lastrowid, key, rec, link))
        self._last_link = link
        return True

    def _chain_raw(self, rowid: int, key: str, row: Row) -> None:
        """Chain a raw record that replaced ``messages.raw`` without adding a version (same text,
        new metadata such as views): its record hash uses the same formula and names the version
        holding that text, so ``claimwatch verify`` can check the message row's current raw."""
        found = self.conn.execute(
            "SELECT id FROM versions WHERE message_rowid=? AND text_sha256=?", (rowid, row[TEXT_SHA])
        ).fetchone()
        if found is None:  # every stored text has a version; nothing to link to otherwise
            return
        rec = record_hash(key, row[TEXT], row[RAW_SHA])
        link = chain_link(self._previous_link(), rec)
        self.conn.execute(
            "INSERT INTO chain(version_id, msg_key, record_sha256, link_sha256) VALUES (?,?,?,?)",
            (found[0], key, rec, link),
        )
        self._last_link = link

    def _previous_link(self) -> str:
        if self._last_link is None:
            row = self.conn.execute("SELECT link_sha256 FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
            self._last_link = row[0] if row else GENESIS
        return self._last_link

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

    # -- checkpoints ----------------------------------------------------------
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

    # -- channels -------------------------------------------------------------
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

    # -- source status (health) -----------------------------------------------
    def record_source_status(
        self,
        source: str,
        *,
        last_message_at: str | None = None,
        polled: bool = False,
        error: str | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        now = now_iso()
        with self.lock, self.transaction():
            self.conn.execute(
                "INSERT INTO source_status(source, last_message_at, last_poll_at, errors, last_error, info,"
                " updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(source) DO UPDATE SET"
                " last_message_at=COALESCE(excluded.last_message_at, last_message_at),"
                " last_poll_at=COALESCE(excluded.last_poll_at, last_poll_at),"
                " errors=errors + excluded.errors, last_error=COALESCE(excluded.last_error, last_error),"
                " info=COALESCE(excluded.info, info), updated_at=excluded.updated_at",
                (source, last_message_at, now if polled else None, 1 if error else 0, error,
                 json.dumps(info) if info is not None else None, now),
            )

    # -- reading --------------------------------------------------------------
    def get_message(self, platform: str, channel_id: str, message_id: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query(
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
        for row in self.db.query(sql, args):
            yield self.message_from_row(row)

    def stats(self) -> dict[str, Any]:
        c = self.conn
        total, first, last = c.execute("SELECT count(*), min(date), max(date) FROM messages").fetchone()
        by_channel = [
            {"platform": p, "channel_id": cid, "channel": ch, "messages": n, "first": f, "last": l}
            for p, cid, ch, n, f, l in c.execute(
                "SELECT platform, channel_id, max(coalesce(channel, channel_title, channel_id)), count(*),"
                " min(date), max(date) FROM messages GROUP BY platform, channel_id ORDER BY count(*) DESC"
            )
        ]
        by_platform = {p: n for p, n in c.execute("SELECT platform, count(*) FROM messages GROUP BY platform")}
        outbox = queue.status_counts(c)
        return {
            "messages": total,
            "versions": c.execute("SELECT count(*) FROM versions").fetchone()[0],
            "deleted": c.execute("SELECT count(*) FROM messages WHERE deleted_at IS NOT NULL").fetchone()[0],
            "hits": c.execute("SELECT count(*) FROM hits").fetchone()[0],
            "first_date": first,
            "last_date": last,
            "by_platform": by_platform,
            "by_channel": by_channel,
            "outbox": outbox,
        }


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


class _MillisecondClock:
    """:func:`now_iso`, formatted at most once per millisecond (bulk imports)."""

    def __init__(self) -> None:
        self._at = -1.0
        self._value = ""

    def __call__(self) -> str:
        t = time.monotonic()
        if t - self._at >= 0.001:
            self._at = t
            self._value = now_iso()
        return self._value


@dataclass
class _BigBatch:
    trigger_sql: str  # the dropped FTS insert trigger, recreated before commit
    first_new_rowid: int  # messages.id of the batch's first new row
    fts_hash: int  # FTS5 hashsize to restore
    empty_channels: dict[tuple[str, str], bool] = field(default_factory=dict)


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
