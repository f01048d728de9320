"""The collector's side of the bus: envelopes -> ``XADD`` (or the spool) -> checkpoints.

Sources emit envelopes as in the single process; the publisher batches them (what arrives
within ``BATCH_WAIT``, up to ``BATCH``), adds each batch to the stream as entries of up to
100 events (:func:`.codec.encode_batch`) in one round trip (pipelined ``XADD ... MAXLEN ~``)
and only then commits: it
writes the envelopes' checkpoints to the collector's own state file in one SQLite
transaction and calls their ``on_commit`` in emit order. While Redis cannot be reached, a
batch is appended to the on-disk spool (fsynced) instead, which is a commit too; once the
spool holds anything every new batch goes there as well, so the stream gets events in the
order the sources emitted them, and the spool drains whenever Redis answers again. A full
spool holds the sources back (their ``emit`` waits) and is reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ..config import BusConfig
from ..logs import get_logger
from ..sources.base import Envelope
from ..timefmt import from_epoch
from . import codec
from .connection import collectors_key, node_name, unreachable_errors
from .spool import Spool, SpoolFull

if TYPE_CHECKING:  # pragma: no cover
    from ..archive import Archive

log = get_logger("claimwatch.bus.publisher")

_STOP = object()
BATCH = 500  # envelopes per batch at most (stream entries of up to codec.ENTRY_EVENTS events each)
BATCH_WAIT = 0.005  # linger: a batch waits this long for more envelopes
DRAIN_ENTRIES = 50  # spooled entries added to the stream per round trip
RETRY_INITIAL = 0.2
RETRY_MAX = 5.0
REPORT_EVERY = 2.0


class Publisher:
    def __init__(self, cfg: BusConfig, redis: Any, state: "Archive", spool: Spool, *, queue_size: int = 10_000) -> None:
        self.cfg = cfg
        self.redis = redis
        self.state = state
        self.spool = spool
        self.name = node_name(cfg)
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self.connected = True
        self.spool_full = False
        self.published = 0
        self.spooled = 0
        self.received = 0
        self.errors = 0
        self.last_publish: float | None = None
        self.last_error: str | None = None
        self.started_at = from_epoch(time.time())
        self._retry_at = 0.0
        self._delay = RETRY_INITIAL
        self._reported = 0.0
        self._per_entry = 1.0  # events per stream entry lately (moving average)
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None  # the batching loop, waiting for envelopes
        self._unreachable = unreachable_errors()

    def maxlen_entries(self) -> int:
        """``bus.maxlen`` counts events; the stream is trimmed in entries, so the cap is
        maxlen / the events per entry this collector published lately (approximate, as
        ``MAXLEN ~`` is anyway)."""
        return max(100, int(self.cfg.maxlen / max(1.0, self._per_entry)))

    # -- source side ----------------------------------------------------------
    async def emit(self, envelope: Envelope) -> None:
        self.received += 1
        await self.queue.put(envelope)
        self._wake()

    def _wake(self, _: Any = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait_queue(self, timeout: float) -> None:
        """Until something is queued or ``timeout`` seconds passed (a future and a timer:
        ``asyncio.wait_for`` makes a task each time, which a collector did several times a
        batch)."""
        if not self.queue.empty() or timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout, self._wake)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bus-publisher")

    async def close(self) -> None:
        """Publish (or spool) what is queued, then stop."""
        await self.queue.put(_STOP)
        self._wake()
        if self._task is not None:
            await self._task

    def health(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "connected": self.connected,
            "published": self.published,
            "spooled": self.spooled,
            "spool_bytes": self.spool.pending_bytes,
            "spool_full": self.spool_full,
            "queue": self.queue.qsize(),
            "last_publish": (
                from_epoch(self.last_publish) if self.last_publish else None
            ),
            "last_error": self.last_error,
        }

    # -- the loop -------------------------------------------------------------
    async def _next_batch(self) -> tuple[list[Envelope], bool]:
        await self._wait_queue(0.2 if self.spool.has_data() else 1.0)
        if self.queue.empty():
            return [], False
        first = self.queue.get_nowait()
        if first is _STOP:
            return [], True
        batch = [first]
        deadline = time.monotonic() + BATCH_WAIT
        while len(batch) < BATCH:
            if self.queue.empty():
                await self._wait_queue(deadline - time.monotonic())
                if self.queue.empty():
                    break
            item = self.queue.get_nowait()
            if item is _STOP:
                await self._handle(batch)
                return [], True
            batch.append(item)
        return batch, False

    async def _run(self) -> None:
        while True:
            batch, stopping = await self._next_batch()
            if batch:
                await self._handle(batch)
            elif self.spool.has_data():
                await self._drain()
            if time.monotonic() - self._reported >= REPORT_EVERY:
                await self._report()
            if stopping:
                if self.spool.has_data():
                    self._retry_at = 0.0
                    await self._drain()
                await self._report()
                return

    async def _handle(self, batch: list[Envelope]) -> None:
        now_ms = int(time.time() * 1000)
        entries = codec.encode_batch([env.event for env in batch], self.name, now_ms)
        self._per_entry += 0.1 * (len(batch) / len(entries) - self._per_entry)
        if self.spool.has_data():
            await self._drain()
        if not self.spool.has_data() and await self._xadd(entries):
            self.published += len(batch)
        else:
            await self._to_spool(entries)
            self.spooled += len(batch)
        await self._commit(batch)

    async def _xadd(self, entries: list[dict[str, str]]) -> bool:
        """Add entries to the stream in one round trip; False when Redis is unreachable."""
        if not self.connected and time.monotonic() < self._retry_at:
            return False
        try:
            pipe = self.redis.pipeline(transaction=False)
            for e in entries:
                pipe.xadd(self.cfg.stream, e, maxlen=self.maxlen_entries(), approximate=True)
            await pipe.execute()
        except self._unreachable as exc:
            self._unreachable_now(exc)
            return False
        if not self.connected:
            log.warning("redis reachable again", stream=self.cfg.stream)
        self.connected = True
        self._delay = RETRY_INITIAL
        self.last_publish = time.time()
        self.last_error = None
        return True

    def _unreachable_now(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.connected:
            log.warning("redis unreachable; spooling to disk", error=self.last_error, spool=str(self.spool.folder))
        self.connected = False
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, RETRY_MAX)

    async def _to_spool(self, entries: list[dict[str, str]]) -> None:
        """Append to the spool; while it is full, wait for Redis to drain it (back-pressure)."""
        while True:
            try:
                n = await asyncio.to_thread(self.spool.append, entries)
                entries = entries[n:]
                if not entries:
                    if self.spool_full:
                        log.warning("spool has room again", bytes=self.spool.pending_bytes)
                    self.spool_full = False
                    return
                raise SpoolFull(f"spool {self.spool.data_path} full ({self.spool.size} bytes)")
            except SpoolFull as exc:
                if not self.spool_full:
                    log.error("spool full; sources wait until redis is back", error=str(exc))
                    self.spool_full = True
                    await self._report()
            await asyncio.sleep(max(0.05, self._retry_at - time.monotonic()))
            self._retry_at = min(self._retry_at, time.monotonic())
            await self._drain()

    async def _drain(self) -> None:
        """Add spooled entries to the stream, in order, while Redis answers."""
        while self.spool.has_data():
            if not self.connected and time.monotonic() < self._retry_at:
                return
            entries, pos = await asyncio.to_thread(self.spool.read, DRAIN_ENTRIES)
            if entries and not await self._xadd(entries):
                return
            await asyncio.to_thread(self.spool.advance, pos)
            self.published += sum(_events_in(e) for e in entries)
            if not self.spool.has_data():
                log.info("spool drained", stream=self.cfg.stream)

    async def _commit(self, batch: list[Envelope]) -> None:
        """The events are in the stream or the spool: advance the sources' checkpoints."""
        checkpoints: dict[tuple[str, str], str] = {}
        for env in batch:
            if env.checkpoint is not None:
                checkpoints[(env.source, env.checkpoint[0])] = env.checkpoint[1]
        if checkpoints:
            # On the loop: one small transaction (WAL, synchronous=NORMAL: no fsync) costs less
            # than a hop to a worker thread and back, which a collector made for every batch.
            self._write_checkpoints(checkpoints)
        for env in batch:
            if env.on_commit is not None:
                try:
                    env.on_commit()
                except Exception as exc:  # a source's bookkeeping must not stop the publisher
                    log.error("on_commit failed", source=env.source, error=str(exc))

    def _write_checkpoints(self, checkpoints: dict[tuple[str, str], str]) -> None:
        state = self.state
        with state.lock, state.transaction():
            for (source, channel), value in checkpoints.items():
                state._set_checkpoint(source, channel, value)

    async def _report(self) -> None:
        """This collector's line in ``<stream>:collectors`` (read by ``claimwatch status``)."""
        self._reported = time.monotonic()
        if not self.connected and time.monotonic() < self._retry_at:
            return
        info = {**self.health(), "host": socket.gethostname(), "pid": os.getpid(), "started_at": self.started_at,
                "reported_at": from_epoch(time.time())}
        try:
            await self.redis.hset(collectors_key(self.cfg), self.name, json.dumps(info))
        except self._unreachable as exc:
            self._unreachable_now(exc)


def _events_in(entry: dict[str, str]) -> int:
    try:
        return int(entry.get("n", 1))
    except ValueError:
        return 1
