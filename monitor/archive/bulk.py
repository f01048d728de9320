"""Big-batch writing (imports): chunks of new messages in one ``executemany`` per table, and
the FTS big-batch mode.

A store() call switches to "big batch" mode once it has inserted BIG_BATCH_AFTER new
messages one by one (if it owns its transaction), or when it inserts a chunk of at least
BULK_MIN_ROWS new messages at once (also inside the daemon writer's transaction):
* new rows go into the full-text index by a plain INSERT next to the message INSERT instead
  of the insert trigger: FTS5 flushes its pending terms at every statement that writes it
  through a trigger (a statement journal), which cost ~35 us per row; the trigger is
  dropped and recreated inside the transaction, so a rollback restores it;
* FTS5 may keep up to BIG_BATCH_FTS_HASH bytes of pending terms before writing a segment
  (default 1 MB; fewer, larger segments and merges: ~1/3 less indexing time);
* messages of channels that had no rows before the batch are inserted without a lookup.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..model import Hit, Message
from ..timefmt import now_iso
from .chain import INSERT_CHAIN, INSERT_VERSION, chain_link
from .outcomes import StoreOutcome, StoreResult, StoreStatus
from .rows import (
    EDIT_DATE, INSERT_FTS, INSERT_MESSAGE, MESSAGE_ID, CHANNEL_ID, PLATFORM, RAW_SHA, RECORD_SHA, SEARCH, TEXT,
    TEXT_SHA, Row, insert_params, record_hash, row_key,
)

BIG_BATCH_AFTER = 256
BIG_BATCH_FTS_HASH = 32 * 1024 * 1024
FTS_DEFAULT_HASH = 1024 * 1024
_FTS_INSERT_TRIGGER = "messages_ai"
BULK_ROWS = 500  # rows per executemany (chunks of new messages)
BULK_MIN_ROWS = 64  # smaller chunks are stored one by one


class BulkWriter:
    """Chunks of new rows and the big-batch mode (a part of :class:`~monitor.archive.store.Archive`)."""

    conn: sqlite3.Connection
    _big: "_BigBatch | None"
    _last_link: str | None
    _now: Callable[[], str]
    _previous_link: Callable[[], str]
    _store_hits: Callable[..., None]

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
        params = [insert_params(row, now) for row, _hits in chunk]
        # New rows take max(id) + 1 in turn (no row can conflict: checked above).
        first_id = c.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0] + 1
        if self._big is None:
            self._begin_big_batch(first_id)
        c.executemany(INSERT_MESSAGE, params)
        last_id = first_id + len(chunk) - 1
        if c.execute("SELECT max(id) FROM messages").fetchone()[0] != last_id:  # cannot happen; be sure
            raise RuntimeError("archive: bulk insert did not assign consecutive ids")
        if self._big is not None:  # else the insert trigger indexed them
            c.executemany(INSERT_FTS, [(first_id + i, p[SEARCH]) for i, p in enumerate(params)])
        first_vid = c.execute("SELECT coalesce(max(id), 0) FROM versions").fetchone()[0] + 1
        versions, chain = [], []
        link = self._previous_link()
        for i, (row, _hits) in enumerate(chunk):
            key = row_key(row)
            rec = row[RECORD_SHA] or record_hash(key, row[TEXT], row[RAW_SHA])
            versions.append((first_id + i, row[TEXT], row[TEXT_SHA], row[EDIT_DATE], None, row[RAW_SHA], rec, now))
            link = chain_link(link, rec)
            chain.append((first_vid + i, key, rec, link))
        c.executemany(INSERT_VERSION, versions)
        c.executemany(INSERT_CHAIN, chain)
        self._last_link = link
        result.new += len(chunk)
        for i, (row, hits) in enumerate(chunk):
            if not hits and not collect:
                continue
            outcome = StoreOutcome(chain[i][1], StoreStatus.NEW, first_id + i)
            if hits:
                self._store_hits(outcome, msgs[i] if msgs is not None else None, hits, row[TEXT_SHA], alerts, now, row)
                result.hits += len(outcome.new_hit_ids)
                result.outbox += len(outcome.new_outbox_ids)
            if collect:
                result.outcomes.append(outcome)
        return True

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
