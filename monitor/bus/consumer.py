"""The archiver's side of the bus: a :class:`~monitor.sources.base.Source` reading the stream.

``BusSource`` joins the consumer group (created at the stream's start if missing), reads
with ``XREADGROUP`` (up to ``READ_COUNT`` entries a call) and emits each event of each entry
(:mod:`.codec`: an entry holds up to 100 events) as an envelope into the normal pipeline,
which stores, matches and queues alerts in one SQLite transaction. The envelopes'
``on_commit`` (called after that transaction committed) counts the entry's events down; the
last one queues the entry id for ``XACK`` (acknowledgements go out together, every
``ACK_WAIT``, in one ``XACK``): an entry is acknowledged only once all its events are
stored. Entries of this consumer that were delivered but never acknowledged (a crash, a
lost connection) are read again first (``XREADGROUP ... 0``), and entries pending on a
consumer that went away are taken over with ``XAUTOCLAIM`` once idle for ``bus.claim_idle``. The archive's store is idempotent and alerts have dedup keys, so an
entry delivered twice is stored once and alerted once.

With ``bus.preparers`` (default 1) the entries go to worker processes first, which decode,
match and prepare the rows (:mod:`.prepare`); the envelopes then carry those rows, emitted
in the order the entries were read.

An entry that cannot be read is copied to ``<stream>:dead`` with the reason, then
acknowledged (it would fail the same way on every delivery); an entry with one bad event
among good ones is copied there with the event's ``index`` and the reason, and its other
events are stored.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from ..config import BusConfig
from ..logs import get_logger
from ..sources.base import Envelope, Source, SourceContext
from . import codec, prepare
from .connection import client, collectors_key, dead_key, node_name, unreachable_errors

log = get_logger("claimwatch.bus.consumer")

READ_COUNT = 100  # entries per XREADGROUP (each up to codec.ENTRY_EVENTS events)
BLOCK_MS = 1000  # an idle read returns as soon as an entry arrives
ACK_WAIT = 0.01
INFO_EVERY = 5.0
PREPARE_ENTRIES = 5  # entries (up to 500 events) per task for a preparer process
PREPARE_AHEAD = 8  # tasks sent to the preparers and not yet emitted, at most
LAG_COUNT_CAP = 1000  # Redis < 7 has no lag field: entries after the group's position counted up to this


class BusSource(Source):
    name = "bus"

    def __init__(self, cfg: BusConfig, *, redis: Any = None, claim_every: float | None = None, rules: Any = None,
                 preparers: int | None = None) -> None:
        self.cfg = cfg
        # The archiver's rule set (RulesState): with it, ``preparers`` worker processes decode,
        # match and prepare the rows (:mod:`.prepare`); without, or with 0, this process does.
        self.rules = rules
        self.preparers = (cfg.preparers if preparers is None else preparers) if rules is not None else 0
        self._pool: Any = None
        self._ready: asyncio.Queue[Any] | None = None  # (entries, future of their preparation), in read order
        self._queued: set[str] = set()  # entry ids sent to the preparers and not yet emitted
        self._reread = False  # emitting failed (Redis unreachable): read this consumer's pending entries again
        self.prepared = 0  # events prepared in the worker processes
        self.preparer_failures = 0
        self.redis = redis
        self.consumer = node_name(cfg)
        self.claim_every = claim_every if claim_every is not None else max(1.0, cfg.claim_idle / 2)
        self.inflight: dict[str, int] = {}  # entry id -> its events not committed yet (0: to acknowledge)
        self._sizes: dict[str, int] = {}  # entry id -> its events (counted as acked with the entry)
        self.to_ack: list[str] = []
        self._closing = False
        self.delivered = 0
        self.acked = 0
        self.claimed = 0
        self.dead = 0
        self.errors = 0
        self.connected = False
        self.last_error: str | None = None
        self.bus_info: dict[str, Any] = {}  # stream length, lag, pending, collectors (refreshed)
        self.latencies: list[float] = []  # publish -> stored, seconds (kept when record_latency)
        self.record_latency = False
        self._unreachable = unreachable_errors()

    def health(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "stream": self.cfg.stream,
            "group": self.cfg.group,
            "connected": self.connected,
            "delivered": self.delivered,
            "acked": self.acked,
            "claimed": self.claimed,
            "dead": self.dead,
            "inflight": len(self.inflight),
            "errors": self.errors,
            "last_error": self.last_error,
            "preparers": self.preparers,
            "prepared": self.prepared,
            **{k: v for k, v in self.bus_info.items() if k != "collectors"},
        }

    async def close(self) -> None:
        self._stop_pool()
        if self.redis is not None:
            try:
                await self.redis.aclose()
            except Exception:  # pragma: no cover
                pass

    # -- running --------------------------------------------------------------
    async def run(self, ctx: SourceContext, *, once: bool = False) -> None:
        if self.redis is None:
            self.redis = client(self.cfg)
        self._closing = False
        acker = asyncio.create_task(self._ack_loop(ctx.stop), name="bus-ack")
        emitter = None
        if self.preparers:
            await self.start_preparers()
            self._ready = asyncio.Queue(PREPARE_AHEAD)
            emitter = asyncio.create_task(self._emitter(ctx), name="bus-emitter")
        try:
            await self._consume(ctx, once)
            if emitter is not None:  # emit what the preparers have (or fail over to here)
                await self._ready.put(None)  # type: ignore[union-attr]
                await emitter
            if once:
                while self.inflight and not acker.done():  # wait for the last commits' acks
                    await asyncio.sleep(0.02)
        finally:
            if emitter is not None and not emitter.done():
                emitter.cancel()
                await asyncio.gather(emitter, return_exceptions=True)
            self._ready = None
            self._queued.clear()
            self._closing = True  # (no cancel: wait_for in 3.11 may swallow it)
            await asyncio.gather(acker, return_exceptions=True)
            if self.to_ack:
                try:
                    await self._flush_acks()
                except self._unreachable:
                    pass  # they stay pending and are delivered again: the store is idempotent

    async def _consume(self, ctx: SourceContext, once: bool) -> None:
        from redis.exceptions import ResponseError

        delay = 0.2
        own_pending = True  # first re-read what this consumer was given and did not acknowledge
        cursor = "0"  # position in this consumer's pending entries while re-reading them
        next_claim = 0.0
        next_info = 0.0
        while not ctx.stop.is_set():
            try:
                if self._reread:
                    self._reread = False
                    own_pending, cursor = True, "0"
                if not self.connected:
                    await self._join()
                    self.connected = True
                    delay = 0.2
                now = time.monotonic()
                if now >= next_info:
                    next_info = now + INFO_EVERY
                    await self._refresh_info()
                if now >= next_claim:
                    next_claim = now + self.claim_every
                    await self._claim(ctx)
                start = cursor if own_pending else ">"
                reply = await self.redis.xreadgroup(
                    self.cfg.group, self.consumer, {self.cfg.stream: start}, count=READ_COUNT,
                    block=None if own_pending else (50 if once else BLOCK_MS),
                )
                entries = reply[0][1] if reply else []
                if own_pending:
                    if not entries:
                        own_pending = False
                        continue
                    cursor = _sid(entries[-1][0])  # the next read goes on after these
                    entries = [(i, f) for i, f in entries if not self._taken(_sid(i))]
                    if not entries:
                        continue
                elif not entries:
                    if once:
                        return
                    continue
                await self._emit_entries(ctx, entries)
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream or group is gone (Redis restarted without its data): join again.
                log.error("consumer group missing; creating it again", stream=self.cfg.stream, error=str(exc))
                self.connected = False
                own_pending, cursor = True, "0"
            except self._unreachable as exc:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.connected:
                    log.warning("redis unreachable; retrying", error=self.last_error)
                self.connected = False
                own_pending, cursor = True, "0"
                try:
                    await asyncio.wait_for(ctx.stop.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, 5.0)

    async def _join(self) -> None:
        from redis.exceptions import ResponseError

        try:
            await self.redis.xgroup_create(self.cfg.stream, self.cfg.group, id="0", mkstream=True)
            log.info("consumer group created", stream=self.cfg.stream, group=self.cfg.group)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _claim(self, ctx: SourceContext) -> None:
        """Take over entries pending on other consumers for longer than claim_idle."""
        start = "0-0"
        idle_ms = int(self.cfg.claim_idle * 1000)
        for _ in range(100):  # bounded per round
            reply = await self.redis.xautoclaim(
                self.cfg.stream, self.cfg.group, self.consumer, idle_ms, start_id=start, count=READ_COUNT
            )
            start, entries = reply[0], reply[1]
            fresh = [(i, f) for i, f in entries if not self._taken(_sid(i))]
            if fresh:
                self.claimed += len(fresh)
                log.warning("took over pending entries of a consumer that went away", entries=len(fresh))
                await self._emit_entries(ctx, fresh)
            if _sid(start) in ("0-0", "0"):
                return

    def _taken(self, sid: str) -> bool:
        """Is this entry being prepared, stored or acknowledged already?"""
        return sid in self.inflight or sid in self._queued

    async def _emit_entries(self, ctx: SourceContext, entries: list[tuple[Any, dict[Any, Any]]]) -> None:
        if self._ready is None:
            await self._emit_decoded(ctx, entries)
            return
        for start in range(0, len(entries), PREPARE_ENTRIES):
            part = entries[start:start + PREPARE_ENTRIES]
            self._queued.update(_sid(i) for i, _f in part)
            await self._ready.put((part, self._submit([None if f is None else prepare.entry_body(f) for _i, f in part])))

    def _submit(self, bodies: list[bytes | None]) -> Any:
        """The entries' preparation in a worker process (a future), or None (done here)."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            if self._pool is None:
                self._pool = self._start_pool()
            return asyncio.get_running_loop().run_in_executor(
                self._pool, prepare.prepare_entries, bodies, self.rules.fingerprint)
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            self._preparer_failed(exc)
            return None

    async def start_preparers(self) -> None:
        """Start the preparer processes and wait until each has loaded the rules (a few
        seconds; the first entries would wait for them anyway). Failing that, this process
        decodes and matches until the next entries try again."""
        if not self.preparers or self._pool is not None:
            return
        try:
            self._pool = self._start_pool()
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(self._pool, prepare.prepare_entries, [], self.rules.fingerprint)
                                   for _ in range(self.preparers)))
        except Exception as exc:
            self._preparer_failed(exc)

    def _start_pool(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        r = self.rules
        return ProcessPoolExecutor(
            max_workers=self.preparers, mp_context=multiprocessing.get_context("spawn"),
            initializer=prepare.init_worker,
            initargs=(r.path, r._known_destinations(), tuple(r.cfg.alerts.default), os.getpid()),
        )

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)  # the workers exit on their own
            self._pool = None

    def _preparer_failed(self, exc: BaseException) -> None:
        self.preparer_failures += 1
        log.error("bus preparer process failed; decoding and matching here until it is started again",
                  error=f"{type(exc).__name__}: {exc}")
        self._stop_pool()  # started again with the next entries

    async def _emitter(self, ctx: SourceContext) -> None:
        """Emit prepared entries in the order they were read."""
        assert self._ready is not None
        while True:
            item = await self._ready.get()
            if item is None:
                return
            part, future = item
            result = None
            if future is not None:
                try:
                    result = await future
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the worker died (BrokenProcessPool) or failed: decode here
                    self._preparer_failed(exc)
            try:
                await self._emit_prepared(ctx, part, result)
            except self._unreachable as exc:  # setting an entry aside failed: it stays pending
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._reread = True
            finally:
                for raw_id, _f in part:
                    self._queued.discard(_sid(raw_id))

    async def _emit_prepared(self, ctx: SourceContext, entries: list[tuple[Any, dict[Any, Any]]],
                             result: tuple[str, list[list[Any]]] | None) -> None:
        """Emit the entries' events: the rows and hits a worker prepared (``result``), and
        what it left (deletions, events that are not valid) or all of them without a result,
        decoded here (as :meth:`_emit_decoded`)."""
        fp, prepared = result if result is not None else ("", None)
        for k, (raw_id, fields) in enumerate(entries):
            sid = _sid(raw_id)
            if fields is None:  # trimmed away while pending
                self.to_ack.append(sid)
                continue
            items = prepared[k] if prepared is not None else None
            entry = prepare.EntryEvents(fields)
            events: list[Any] | None = None
            if not items or None in items:
                try:
                    events = entry.events()
                except codec.BusRecordError as exc:
                    await self._set_aside(sid, fields, str(exc))
                    continue
                if items and len(items) != len(events):  # cannot happen; be sure
                    items = None
            good: list[Any] = []
            for index in range(len(items) if items else len(events or ())):
                item = items[index] if items else None
                if item is not None:
                    good.append(prepare.Prepared(item[0], item[1], item[2], fp, entry, index,
                                                 item[3] if len(item) > 3 else None))
                    continue
                event = events[index]  # type: ignore[index]
                if isinstance(event, codec.BusRecordError):
                    await self._set_aside(sid, fields, str(event), index=index, ack=False)
                else:
                    good.append(event)
            if items:
                self.prepared += sum(1 for item in items if item is not None)
            await self._emit_good(ctx, sid, good, lambda: codec.entry_time(fields))

    async def _emit_good(self, ctx: SourceContext, sid: str, good: list[Any], published: Any) -> None:
        """Emit an entry's valid events with one commit callback (acknowledged once all are
        stored); an entry with none is acknowledged at once. ``published`` gives the entry's
        publish time, read only when latency is recorded."""
        if not good:
            self.to_ack.append(sid)
            return
        self.inflight[sid] = len(good)
        self._sizes[sid] = len(good)
        self.delivered += len(good)
        on_commit = self._committer(sid, published() if self.record_latency else None)
        for event in good:
            await ctx.emit(Envelope(event, self.name, on_commit=on_commit))

    async def _emit_decoded(self, ctx: SourceContext, entries: list[tuple[Any, dict[Any, Any]]]) -> None:
        for raw_id, fields in entries:
            sid = _sid(raw_id)
            if fields is None:  # trimmed away while pending
                self.to_ack.append(sid)
                continue
            try:
                events, _collector, published = codec.decode_entry(fields)
            except codec.BusRecordError as exc:
                await self._set_aside(sid, fields, str(exc))
                continue
            good: list[Any] = []
            for index, event in enumerate(events):
                if isinstance(event, codec.BusRecordError):
                    await self._set_aside(sid, fields, str(event), index=index, ack=False)
                else:
                    good.append(event)
            await self._emit_good(ctx, sid, good, lambda: published)

    def _committer(self, sid: str, published_ms: int | None) -> Any:
        """Called after each of the entry's events committed; the last one queues the XACK."""

        def on_commit() -> None:
            left = self.inflight.get(sid, 1) - 1
            self.inflight[sid] = left
            if left == 0:
                self.to_ack.append(sid)
            if published_ms is not None:
                self.latencies.append(time.time() - published_ms / 1000)

        return on_commit

    async def _set_aside(self, sid: str, fields: dict[Any, Any], reason: str, *, index: int | None = None,
                         ack: bool = True) -> None:
        """Copy an entry (or, with ``index``, the entry naming its bad event) to the dead stream."""
        self.dead += 1
        log.error("invalid stream entry set aside", id=sid, index=index, stream=self.cfg.stream, error=reason)
        record = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in fields.items()}
        record["reason"] = reason[:500]
        record["id"] = sid
        if index is not None:
            record["index"] = str(index)
        await self.redis.xadd(dead_key(self.cfg), record, maxlen=100_000, approximate=True)
        if ack:
            await self.redis.xack(self.cfg.stream, self.cfg.group, sid)

    async def _ack_loop(self, stop: asyncio.Event) -> None:
        while not self._closing:
            await asyncio.sleep(ACK_WAIT)
            if not self.to_ack:
                continue
            try:
                await self._flush_acks()
            except self._unreachable as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.5)  # kept; retried (entries stay pending meanwhile)

    async def _flush_acks(self) -> None:
        ids = self.to_ack[:]
        await self.redis.xack(self.cfg.stream, self.cfg.group, *ids)
        del self.to_ack[: len(ids)]
        for sid in ids:
            self.inflight.pop(sid, None)
            self.acked += self._sizes.pop(sid, 0)

    async def _refresh_info(self) -> None:
        self.bus_info = await bus_snapshot(self.redis, self.cfg)


async def bus_snapshot(redis: Any, cfg: BusConfig) -> dict[str, Any]:
    """Stream length, the group's lag and pending entries, and each collector's report."""
    from redis.exceptions import ResponseError

    info: dict[str, Any] = {"stream_length": await redis.xlen(cfg.stream), "lag": None, "pending": None,
                            "consumers": {}}
    try:
        groups = await redis.xinfo_groups(cfg.stream)
    except ResponseError:
        groups = []
    for g in groups:
        g = {(k.decode() if isinstance(k, bytes) else k): v for k, v in g.items()}
        name = g.get("name")
        name = name.decode() if isinstance(name, bytes) else name
        if name != cfg.group:
            continue
        info["pending"] = int(g.get("pending") or 0)
        lag = g.get("lag")
        if lag is None:  # Redis < 7: count the entries after the last delivered id (capped)
            last = g.get("last-delivered-id") or "0-0"
            last = last.decode() if isinstance(last, bytes) else last
            newest = await redis.xrevrange(cfg.stream, count=1)
            newest_id = newest[0][0].decode() if newest and isinstance(newest[0][0], bytes) else (newest[0][0] if newest else None)
            if newest_id is None or newest_id == last:
                lag = 0
            else:
                lag = len(await redis.xrange(cfg.stream, min=f"({last}", max="+", count=LAG_COUNT_CAP))
            info["lag_capped"] = lag >= LAG_COUNT_CAP
        info["lag"] = int(lag)
        try:
            for c in await redis.xinfo_consumers(cfg.stream, cfg.group):
                c = {(k.decode() if isinstance(k, bytes) else k): v for k, v in c.items()}
                cname = c.get("name")
                cname = cname.decode() if isinstance(cname, bytes) else str(cname)
                info["consumers"][cname] = {"pending": int(c.get("pending") or 0), "idle_ms": int(c.get("idle") or 0)}
        except ResponseError:
            pass
    collectors = {}
    for name, raw in (await redis.hgetall(collectors_key(cfg))).items():
        name = name.decode() if isinstance(name, bytes) else name
        try:
            collectors[name] = json.loads(raw)
        except ValueError:
            continue
    info["collectors"] = collectors
    return info


def _sid(raw_id: Any) -> str:
    return raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
