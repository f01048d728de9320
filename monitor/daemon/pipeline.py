"""The live pipeline: sources -> [queue] -> matcher -> [queue] -> archive writer -> outbox.

Both queues are bounded, so a fast source waits for the archive instead of filling memory.
The writer commits a batch of messages, their versions, hits, outbox rows and the sources'
checkpoints in one transaction, then wakes the delivery worker.

When an edited message or a deletion touches a message that had hits, the writer queues
an ``edited`` / ``deleted`` follow-up alert (with the original text) to the destinations
the original alert went to, in the same transaction.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..archive import Archive, StoreResult
from ..logs import get_logger
from ..model import Deletion, Hit, Message, sha256_hex
from ..sources.base import Envelope

log = get_logger("claimwatch.pipeline")

_STOP = object()
DEEP_BATCH_FACTOR = 4  # writer batches grow to 4 x batch_size while the store queue is deep


class MatcherLike(Protocol):
    def match(self, msg: Message) -> list[Hit]: ...


@dataclass
class PipelineStats:
    received: int = 0
    matched: int = 0
    stored: int = 0
    new: int = 0
    edited: int = 0
    hits: int = 0
    outbox: int = 0
    deletions: int = 0
    followups: int = 0
    errors: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """Owns the two queues and the matcher and writer stages.

    ``matcher`` is read through ``get_matcher`` on every message, so a rules reload
    takes effect for the next message without restarting anything.
    """

    def __init__(
        self,
        archive: Archive,
        get_matcher: Callable[[], MatcherLike | None],
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        batch_wait: float = 0.005,
        on_stored: Callable[[StoreResult], None] | None = None,
    ) -> None:
        self.archive = archive
        self.get_matcher = get_matcher
        self.in_queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self.store_queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.on_stored = on_stored
        self.wake = asyncio.Event()  # set after every commit that queued outbox rows
        self.stats = PipelineStats()
        self._tasks: list[asyncio.Task[None]] = []

    # -- source side ----------------------------------------------------------
    async def emit(self, envelope: Envelope) -> None:
        """Called by sources; waits when the pipeline is full (back-pressure)."""
        self.stats.received += 1
        self.stats.by_source[envelope.source] = self.stats.by_source.get(envelope.source, 0) + 1
        await self.in_queue.put((envelope, time.monotonic()))

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._matcher_stage(), name="matcher"),
            asyncio.create_task(self._writer_stage(), name="writer"),
        ]

    async def close(self) -> None:
        """Process everything already queued, then stop both stages."""
        await self.in_queue.put(_STOP)
        await asyncio.gather(*self._tasks)

    def depths(self) -> dict[str, int]:
        return {"match": self.in_queue.qsize(), "store": self.store_queue.qsize()}

    # -- stages ---------------------------------------------------------------
    async def _matcher_stage(self) -> None:
        while True:
            item = await self.in_queue.get()
            if item is _STOP:
                await self.store_queue.put(_STOP)
                return
            envelope, t0 = item
            hits: list[Hit] = []
            if isinstance(envelope.event, Message):
                matcher = self.get_matcher()
                if matcher is not None:
                    try:
                        hits = matcher.match(envelope.event)
                    except Exception as exc:  # a bad message must not stop the pipeline
                        self.stats.errors += 1
                        log.error("matching failed; message stored without hits", key=envelope.event.key, error=str(exc))
                self.stats.matched += 1
            await self.store_queue.put((envelope, hits, t0))

    async def _writer_stage(self) -> None:
        stopping = False
        while not stopping:
            first = await self.store_queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.batch_wait
            # A backlog is written in bigger transactions (fewer commits and trigger swaps);
            # an idle pipeline still commits each message within batch_wait.
            limit = self.batch_size * DEEP_BATCH_FACTOR if self.store_queue.qsize() >= 2 * self.batch_size else self.batch_size
            while len(batch) < limit:
                try:
                    item = self.store_queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.store_queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Envelope, list[Hit], float]]) -> None:
        try:
            result = await asyncio.to_thread(self._write_batch, batch)
        except Exception as exc:
            # Nothing of the batch was committed (one transaction), checkpoints did not
            # advance: the sources will offer these messages again after a restart.
            self.stats.errors += 1
            log.error("archive write failed; batch rolled back", size=len(batch), error=str(exc))
            return
        for envelope, _hits, _t in batch:
            if envelope.on_commit is not None:
                try:
                    envelope.on_commit()
                except Exception as exc:  # a source's bookkeeping must not stop the writer
                    log.error("source on_commit failed", source=envelope.source, error=str(exc))
        if result.outbox:
            self.wake.set()
        if self.on_stored is not None:
            self.on_stored(result)

    # -- the transaction (runs in a worker thread) ----------------------------
    def _write_batch(self, batch: list[tuple[Envelope, list[Hit], float]]) -> StoreResult:
        archive = self.archive
        total = StoreResult()
        with archive.lock, archive.transaction():
            pending: list[tuple[Message, list[Hit]]] = []
            pending_keys: set[tuple[str, str, str]] = set()
            checkpoints: dict[tuple[str, str], str] = {}
            for envelope, hits, _t0 in batch:
                if envelope.checkpoint is not None:
                    channel, value = envelope.checkpoint
                    checkpoints[(envelope.source, channel)] = value
                if isinstance(envelope.event, Deletion):
                    # Flush what came before, to keep the source's order.
                    self._store_pending(pending, total)
                    pending_keys.clear()
                    self._delete(envelope.event, total)
                else:
                    key = envelope.event.key_tuple
                    if key in pending_keys:
                        # An edit of a message earlier in this batch: store that first,
                        # so the edit is compared with it (and gets its follow-up).
                        self._store_pending(pending, total)
                        pending_keys.clear()
                    pending_keys.add(key)
                    pending.append((envelope.event, hits))
            self._store_pending(pending, total)
            for (source, channel), value in checkpoints.items():
                archive._set_checkpoint(source, channel, value)
        self.stats.stored += total.new + total.edited + total.updated + total.unchanged
        self.stats.new += total.new
        self.stats.edited += total.edited
        self.stats.hits += total.hits
        self.stats.outbox += total.outbox
        return total

    def _store_pending(self, pending: list[tuple[Message, list[Hit]]], total: StoreResult) -> None:
        if not pending:
            return
        result = self.archive.store(pending)
        total.add(result)
        total.outcomes.extend(result.outcomes)
        conn = self.archive.conn
        for outcome in result.outcomes:
            if outcome.status != "edited":
                continue
            rowid = outcome.message_rowid
            new_text = conn.execute("SELECT text FROM messages WHERE id=?", (rowid,)).fetchone()[0]
            # Only a message whose earlier text had a hit gets an "edited" follow-up.
            had_hit = conn.execute(
                "SELECT 1 FROM hits WHERE message_rowid=? AND text_sha256 != ? LIMIT 1", (rowid, sha256_hex(new_text))
            ).fetchone()
            if had_hit is None:
                continue
            total.outbox += self._followup(
                rowid, "edited", {"previous_text": outcome.previous_text, "new_text": new_text}
            )
        pending.clear()

    def _delete(self, deletion: Deletion, total: StoreResult) -> None:
        self.stats.deletions += 1
        for rowid in self.archive.mark_deleted(deletion):
            text = self.archive.conn.execute("SELECT text FROM messages WHERE id=?", (rowid,)).fetchone()[0]
            total.outbox += self._followup(rowid, "deleted", {"previous_text": text, "new_text": None})

    def _followup(self, message_rowid: int, kind: str, payload: dict[str, Any]) -> int:
        """Queue one follow-up per destination that alerted on a hit of this message."""
        rows = self.archive.conn.execute(
            "SELECT h.id, o.destination FROM hits h JOIN outbox o ON o.hit_id = h.id"
            " WHERE h.message_rowid=? AND o.kind = 'alert' GROUP BY o.destination",
            (message_rowid,),
        ).fetchall()
        n = 0
        version = sha256_hex(payload.get("new_text") or "")
        for hit_id, destination in rows:
            # One follow-up per message, destination and new text (or deletion).
            key = f"{kind}:{message_rowid}:{destination}:{version}"
            if self.archive.enqueue(hit_id, destination, kind=kind, payload=payload, dedup_key=key) is not None:
                n += 1
        self.stats.followups += n
        return n
