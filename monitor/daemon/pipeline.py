"""The live pipeline: sources -> [queue] -> matcher -> [queue] -> archive writer -> outbox.

Both queues are bounded, so a fast source waits for the archive instead of filling memory.
The writer commits a batch of messages, their versions, hits, outbox rows and the sources'
checkpoints in one transaction, then wakes the delivery worker.

A batch that fails to commit (disk full, I/O error) is rolled back and retried with a
capped exponential backoff until it commits; the pipeline waits meanwhile (back-pressure
up to the sources), reports the failure (``write_error``; ``on_write_error`` once when
writes start failing and once, with None, when they recover) and never drops the batch. Only ``give_up_retrying()`` (shutdown, ``--once``) or
``max_attempts`` end the retries; what was not stored is counted in ``stats.unstored``.
After a commit, each envelope's ``on_commit`` is called in emit order.

The outbox rows a batch creates (alerts, throttle windows, ``edited`` / ``deleted``
follow-ups) are decided by the archive's outbox policy (:mod:`monitor.alerts.policy`),
the same on every path that stores messages.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from ..archive import Archive, StoreResult
from ..archive.rows import TEXT
from ..logs import get_logger
from ..model import Deletion, Hit, MatcherLike, Message
from ..sources.base import Envelope

log = get_logger("claimwatch.pipeline")

_STOP = object()
DEEP_BATCH_FACTOR = 4  # writer batches grow to 4 x batch_size while the store queue is deep



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
    write_errors: int = 0  # failed write attempts (each rolled back and retried)
    unstored: int = 0  # events given up on (shutdown or --once while writes failed)
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
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        max_attempts: int | None = None,
        on_write_error: Callable[[str | None], None] | None = None,
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
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.max_attempts = max_attempts  # None: retry until the batch commits
        # called with the error when writes start failing, with None when they recover
        self.on_write_error = on_write_error
        self.write_error: str | None = None  # the last write error while writes fail
        self.write_failing_since: float | None = None  # time.time() of the first failure
        self._give_up = asyncio.Event()

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

    def give_up_retrying(self) -> None:
        """Stop retrying failed writes (shutdown): a failing batch gets one more attempt."""
        self._give_up.set()

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
            event = envelope.event
            if isinstance(event, Message):
                matcher = self.get_matcher()
                if matcher is not None:
                    try:
                        hits = matcher.match(event)
                    except Exception as exc:  # a bad message must not stop the pipeline
                        self.stats.errors += 1
                        log.error("matching failed; message stored without hits", key=event.key, error=str(exc))
                self.stats.matched += 1
            elif not isinstance(event, Deletion):
                # Prepared by a bus worker process (monitor.bus.prepare): its hits, if they
                # came from the rule set in force now; else it is matched here.
                matcher = self.get_matcher()
                if matcher is not None:
                    try:
                        hits = event.hits_for(matcher)
                    except Exception as exc:
                        self.stats.errors += 1
                        log.error("matching failed; message stored without hits", key=":".join(event.key_tuple),
                                  error=str(exc))
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
        try:  # the common case, without the retry machinery (it costs ~80 us per batch)
            result = await asyncio.to_thread(self._write_batch, batch)
            attempt_number = 1
        except Exception as exc:
            retried = await self._retry_write(batch, exc)
            if retried is None:
                return
            result, attempt_number = retried
        if self.write_error is not None:
            log.warning("archive writes recovered", attempts=attempt_number, error_was=self.write_error)
            self.write_error = self.write_failing_since = None
            self._report(None)
        for envelope, _hits, _t0 in batch:
            if envelope.on_commit is not None:
                try:
                    envelope.on_commit()
                except Exception as exc:  # a source's bookkeeping must not stop the writer
                    log.error("on_commit failed", source=envelope.source, error=str(exc))
        if result.outbox:
            self.wake.set()
        if self.on_stored is not None:
            self.on_stored(result)

    async def _retry_write(
        self, batch: list[tuple[Envelope, list[Hit], float]], first: Exception
    ) -> tuple[StoreResult, int] | None:
        """Nothing of a failed batch was committed (one transaction) and no checkpoint
        advanced: retry the same batch (capped exponential backoff) until it commits. None:
        given up (shutdown, ``max_attempts``), the batch counted as unstored."""
        wait = wait_exponential(multiplier=self.retry_initial, max=self.retry_max)

        def give_up(state: RetryCallState) -> bool:
            return self._give_up.is_set() or (self.max_attempts is not None and state.attempt_number >= self.max_attempts)

        def failed(state: RetryCallState) -> None:
            assert state.outcome is not None
            self._write_failed(state.outcome.exception(), batch, state.attempt_number, wait(state))

        async def pause(seconds: float) -> None:  # cut short by give_up_retrying()
            try:
                await asyncio.wait_for(self._give_up.wait(), seconds)
            except asyncio.TimeoutError:
                pass

        retrying = AsyncRetrying(retry=retry_if_exception_type(Exception), wait=wait, stop=give_up, after=failed,
                                 sleep=pause, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number == 1:
                        raise first  # the attempt _commit made
                    result = await asyncio.to_thread(self._write_batch, batch)
        except Exception:
            self.stats.unstored += len(batch)
            log.error("archive write given up; events not stored", size=len(batch),
                      attempts=retrying.statistics.get("attempt_number", 0))
            return None
        return result, attempt.retry_state.attempt_number

    def _write_failed(self, exc: BaseException | None, batch: list[Any], attempt: int, delay: float) -> None:
        self.stats.errors += 1
        self.stats.write_errors += 1
        error = f"{type(exc).__name__}: {exc}"
        first = self.write_error is None
        self.write_error = error
        if first:
            self.write_failing_since = time.time()
        log.error("archive write failed; batch rolled back", size=len(batch), attempt=attempt, retry_in=delay,
                  error=error)
        if first:
            self._report(error)

    def _report(self, error: str | None) -> None:
        if self.on_write_error is not None:
            try:
                self.on_write_error(error)
            except Exception as exc:  # pragma: no cover - reporting is best effort
                log.error("write error report failed", error=str(exc))

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
                    if pending and (type(pending[-1][0]) is not type(envelope.event)):
                        # Messages and rows prepared by the bus's workers are stored by
                        # different calls: one after the other, in order.
                        self._store_pending(pending, total)
                        pending_keys.clear()
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
        self.stats.followups += total.followups
        return total

    def _store_pending(self, pending: list[tuple[Message, list[Hit]]], total: StoreResult) -> None:
        if not pending:
            return
        if isinstance(pending[0][0], Message):
            result = self.archive.store(pending)
        else:  # rows prepared by the bus's workers (monitor.bus.prepare.Prepared)
            incidents = self.archive.incidents
            if incidents is not None:  # their texts prepared for incident assignment there too
                given = [(p.row[TEXT] or "", p.incident) for p, hits in pending if hits and p.incident is not None]
                if given:
                    incidents.give(given, kept=True)
            result = self.archive.store_prepared([(p.row, hits, p.decoded() if hits else None) for p, hits in pending])
        total.add(result)
        total.outcomes.extend(result.outcomes)
        pending.clear()

    def _delete(self, deletion: Deletion, total: StoreResult) -> None:
        self.stats.deletions += 1
        self.archive.mark_deleted(deletion, result=total)
