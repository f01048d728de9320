"""Delivering the outbox: pending rows -> destinations, with retries that survive restarts.

Row life cycle (``outbox.status``)::

    pending --claim--> sending --ok--> sent            (never sent again)
                          |-- temporary error --> pending (next_attempt_at = backoff)
                          |-- permanent error --> failed  (last_error = reason)
                          '-- nothing to say ---> skipped (an empty throttle window)

* The worker *claims* due rows before sending them (``status='sending'``,
  ``next_attempt_at`` = now + lease, ``attempts`` + 1): one short transaction per batch,
  at most ``concurrency * queue_per_destination`` rows per destination ahead. A row marked
  ``sent`` is never claimed again.
* Stopped or cancelled, the worker lets the sends in flight finish (``cancel_grace``) and
  records them, and hands claimed-but-unsent rows back: nothing is sent twice. After a
  hard crash, the next ``run``/``drain`` hands back every row left ``sending`` and sends it
  again: the alert that was on the wire at the moment of the crash may arrive twice
  (at-least-once for that window only; emails carry a stable ``Message-ID`` per row).
* Temporary errors (5xx, 429, connection errors, timeouts) are retried with exponential
  backoff and jitter: ``min(max_delay, base_delay * 2**(attempt-1))`` times a random
  factor in [0.5, 1]. A 429's ``Retry-After`` is honoured exactly, for every pending row
  of that destination. A row gives up (``failed``) once its nominal backoff schedule
  spans ``max_retry_seconds``; ``retry_failed`` puts failed rows back to pending.
* Permanent errors (4xx other than 429, bad address, auth refused, template errors)
  mark the row ``failed`` with the reason.

All SQL runs in worker threads (``asyncio.to_thread``). Writes (claims, outcomes) go through
the archive's connection under ``archive.lock``, each in its own short transaction; handing a
row back while the worker is being cancelled is one short UPDATE. Reads (the due rows, the
next due time, rendering a claimed row, an incident's thread) go through the worker's own
read connection to the same file (WAL: it reads the last commit and never waits for the
writer), so the archiver's store transactions do not wait while alerts are rendered (an
in-memory archive has no second connection: there they run under ``archive.lock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import random
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from ..archive import Archive, utcnow
from ..config import Config
from ..logs import get_logger, redact
from . import queue
from .alert import Alert
from .kinds import DeliveryResult, OutboxStatus
from .destinations.base import Destination, PermanentDeliveryError, TemporaryDeliveryError
from .records import payload_of, row_dict
from .render import RenderError, Renderer, render_row
from ..timefmt import parse_ts, ts

log = get_logger("claimwatch.alerts")

STATUSES = tuple(OutboxStatus)
_ROW_COLUMNS = (
    "id, hit_id, destination, kind, payload, status, attempts, next_attempt_at, last_error, created_at, sent_at, dedup_key"
)


@dataclass
class _Job:
    """A claimed, rendered row waiting for (or in) its send."""

    row: dict[str, Any]
    alert: Alert
    attempts: int


@dataclass
class WorkerStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    by_destination: dict[str, int] = field(default_factory=dict)


class DeliveryWorker:
    """Sends due outbox rows to their destinations.

    ``destinations`` maps names (as in ``outbox.destination``) to :class:`Destination`
    objects. ``clock`` returns the current aware UTC datetime. ``concurrency`` is the number
    of sends in flight per destination (1 keeps each destination's alerts in order); at
    most ``concurrency * queue_per_destination`` rows per destination are claimed ahead.
    """

    def __init__(
        self,
        archive: Archive,
        destinations: Mapping[str, Destination],
        *,
        renderer: Renderer | None = None,
        max_retry_seconds: float = 3600,
        base_delay: float = 1.0,
        max_delay: float = 300,
        clock: Callable[[], datetime] = utcnow,
        concurrency: int = 1,
        queue_per_destination: int = 16,
        lease_seconds: float = 300.0,
        send_timeout: float = 60.0,
        cancel_grace: float = 30.0,
        poll_interval: float = 5.0,
        batch_size: int = 200,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.archive = archive
        self.destinations = dict(destinations)
        self.renderer = renderer or Renderer()
        self.max_retry_seconds = max_retry_seconds
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock = clock
        self.concurrency = max(1, concurrency)
        self.per_destination_cap = self.concurrency * max(1, queue_per_destination)
        self.lease_seconds = lease_seconds
        self.send_timeout = send_timeout
        self.cancel_grace = cancel_grace
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.rng = rng
        self.stats = WorkerStats()
        self._inflight: dict[int, str] = {}  # claimed rows (queued or sending) -> destination
        self._tasks: set[asyncio.Task[str]] = set()
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._kick: asyncio.Event | None = None
        self._stopping = False
        self._hold: dict[str, datetime] = {}  # destination -> rate-limited until (Retry-After)
        self._reader: sqlite3.Connection | None = None  # reads, apart from the archive's connection
        self._read_lock = threading.Lock()

    @classmethod
    def from_config(cls, archive: Archive, destinations: Mapping[str, Destination], cfg: Config, **kw: Any) -> "DeliveryWorker":
        """A worker using ``cfg.alerts`` (user templates, ``max_retry_seconds``); raises
        :class:`RenderError` when the templates folder does not exist."""
        if "renderer" not in kw:
            from ..rules.loader import load_actor_titles

            kw["renderer"] = Renderer(cfg.alerts.templates, actor_titles=load_actor_titles([cfg.rules]) if cfg.rules else None)
        kw.setdefault("max_retry_seconds", cfg.alerts.max_retry_seconds)
        return cls(archive, destinations, **kw)

    # -- public API ---------------------------------------------------------------
    async def deliver_due(self) -> int:
        """Send every row that is due now (each at most once per call); returns how many were sent."""
        sent = 0
        tried: set[int] = set()
        while True:
            tasks, handled, _ = await self._dispatch_due(frozenset(tried))
            tried.update(handled)
            if not tasks and not handled:
                return sent
            results = await asyncio.gather(*tasks)
            sent += sum(1 for r in results if r == DeliveryResult.SENT)

    async def run(self, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set: send due rows, then sleep until the next row is due,
        ``wake`` is set (new rows stored) or sends finish. On stop or cancellation the sends
        in flight finish (up to ``cancel_grace`` seconds) and are recorded; rows claimed but
        not yet sent are handed back."""
        self._stopping = False
        self._kick = asyncio.Event()
        wake = wake or asyncio.Event()
        try:
            try:
                await self.recover()
            except Exception as exc:
                log.error("outbox_error", error=redact(f"{type(exc).__name__}: {exc}"))
            while not stop.is_set():
                wake.clear()
                self._kick.clear()
                try:
                    _, _, delay = await self._dispatch_due()
                except Exception as exc:  # a locked or broken DB must not kill the worker
                    log.error("outbox_error", error=redact(f"{type(exc).__name__}: {exc}"))
                    delay = min(self.poll_interval, 1.0)
                delay = self.poll_interval if delay is None else min(max(delay, 0.0), self.poll_interval)
                if delay > 0:
                    await _wait_any((stop, wake, self._kick), delay)
        finally:
            await self._finish_inflight()
            self.close_reader()

    async def drain(self, timeout: float) -> int:
        """Deliver what is due, retrying failing rows until ``timeout`` seconds have passed.
        What still fails stays pending (delivered after the next start)."""
        deadline = time.monotonic() + timeout
        sent = 0
        try:
            await self.recover()
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    sent += await asyncio.wait_for(self.deliver_due(), remaining)
                except asyncio.TimeoutError:
                    break
                remaining = deadline - time.monotonic()
                nxt = await self._db(self._locked_next_due, frozenset(self._inflight), frozenset())
                if nxt is None or nxt >= remaining:
                    break
                await asyncio.sleep(max(nxt, 0.001))
        finally:
            self.close_reader()
        return sent

    async def recover(self) -> int:
        """Hand back rows a previous process left ``sending`` (it crashed mid-delivery), so
        they are sent now rather than when their lease expires. One delivering process per
        archive is assumed (the daemon); ``run`` and ``drain`` call this when they start."""
        if self._inflight:
            return 0
        n = await self._db(self._recover)
        if n:
            log.warning("outbox_recovered", rows=n, note="rows left 'sending' by a previous run are sent again")
        return n

    async def aclose(self) -> None:
        """Close the destinations' network clients (and the worker's read connection)."""
        self.close_reader()
        for dest in self.destinations.values():
            try:
                await dest.aclose()
            except Exception as exc:  # closing must not mask the real outcome
                log.warning("destination_close_failed", destination=dest.name, error=redact(str(exc)))

    def close_reader(self) -> None:
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads that need not wait for the archive's writer: the worker's
        own connection to the archive file (each statement sees the last commit), or, for an
        in-memory archive, the archive's connection under its lock."""
        path = self.archive.path
        if not path or path == ":memory:" or path.startswith("file:"):
            with self.archive.lock:
                yield self.archive.conn
            return
        with self._read_lock:
            if self._reader is None:
                conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA busy_timeout=10000")
                conn.execute("PRAGMA query_only=1")
                self._reader = conn
            yield self._reader

    # -- dispatching --------------------------------------------------------------
    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def _outcome(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Record a send's outcome (in a thread) even when the delivery is cancelled meanwhile
        (drain's deadline, shutdown): a cancelled thread job that had not started never ran
        and left the row 'sending'. The cancellation goes on once the outcome is written."""
        job = asyncio.ensure_future(self._db(fn, *args))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await job
            raise

    def _now(self) -> datetime:
        return self.clock()

    async def _dispatch_due(
        self, exclude: frozenset[int] = frozenset()
    ) -> tuple[list[asyncio.Task[str]], list[int], float | None]:
        """Claim and render due rows (one thread hop), start a send task for each.

        Returns the tasks, the ids handled (claimed or settled without sending) and the
        seconds until the next row that is neither in flight nor waiting for a full
        destination is due (None: nothing pending)."""
        claim = asyncio.ensure_future(self._db(self._prepare, dict(self._inflight), exclude))
        try:
            jobs, handled, next_due = await asyncio.shield(claim)
        except asyncio.CancelledError:
            # Cancelled (e.g. drain's deadline) while the claim ran in its thread: the claim
            # still completes, so wait for it and hand its rows back before giving up.
            try:
                claimed = (await claim)[0]
            except Exception:  # noqa: BLE001 - the claim failed: nothing to hand back
                claimed = []
            for job in claimed:
                self._release(job.row["id"], undo_attempt=True)
            raise
        tasks = []
        for job in jobs:
            rid, dest = job.row["id"], job.row["destination"]
            self._inflight[rid] = dest
            task = asyncio.create_task(self._deliver(job), name=f"outbox-{rid}")
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._task_done, dest))
            tasks.append(task)
        return tasks, handled, next_due

    def _task_done(self, destination: str, task: asyncio.Task[str]) -> None:
        """Wake the run loop when a retry was scheduled (it may be due before the loop's next
        wake-up) or when the destination's queue is half empty (time to claim more)."""
        self._tasks.discard(task)
        if self._kick is None:
            return
        retry = (not task.cancelled() and task.exception() is None
                 and task.result() in (DeliveryResult.RETRY, DeliveryResult.DEFERRED))
        queued = sum(1 for d in self._inflight.values() if d == destination)
        if retry or queued <= self.per_destination_cap // 2:
            self._kick.set()

    async def _finish_inflight(self) -> None:
        if not self._tasks:
            return
        self._stopping = True  # claimed rows not yet sending are handed back
        _, still = await asyncio.wait(set(self._tasks), timeout=self.cancel_grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
        self._stopping = False

    def _sem(self, destination: str) -> asyncio.Semaphore:
        sem = self._sems.get(destination)
        if sem is None:
            sem = self._sems[destination] = asyncio.Semaphore(self.concurrency)
        return sem

    async def _deliver(self, job: _Job) -> DeliveryResult:
        """Send one claimed row and record the outcome: sent | retry | failed | released."""
        rid = job.row["id"]
        sem = self._sem(job.row["destination"])
        try:
            try:
                await sem.acquire()
            except asyncio.CancelledError:
                self._release(rid, undo_attempt=True)
                raise
            try:
                if self._stopping:
                    await self._db(functools.partial(self._release, rid, undo_attempt=True))
                    return DeliveryResult.RELEASED
                hold = self._hold.get(job.row["destination"])
                if hold is not None and hold > self._now():
                    # claimed before the destination said "slow down": wait with the others
                    await self._db(functools.partial(self._release, rid, undo_attempt=True, due=hold))
                    return DeliveryResult.DEFERRED
                return await self._send(job)
            finally:
                sem.release()
        finally:
            self._inflight.pop(rid, None)

    async def _send(self, job: _Job) -> DeliveryResult:
        row, alert = job.row, job.alert
        dest = self.destinations[row["destination"]]
        if alert.incident_id is not None:
            # later alerts of an incident continue the thread its first alert started here
            # (looked up now, not when rendering: the first may have been sent in this batch)
            thread = await self._db(self._thread_of, alert.incident_id, row["destination"])
            if thread is not None:
                alert = job.alert = dataclasses.replace(alert, thread_ref=thread)
        started = time.perf_counter()
        try:
            ref = await asyncio.wait_for(dest.send(alert), self.send_timeout)
        except asyncio.CancelledError:
            # Interrupted mid-send (grace period over): hand the row back. It may have been
            # delivered already, which is the one case that can produce a duplicate.
            self._release(row["id"], undo_attempt=False)
            raise
        except TemporaryDeliveryError as exc:
            return await self._outcome(self._record_retry, row, job.attempts, exc.reason, exc.retry_after)
        except PermanentDeliveryError as exc:
            return await self._outcome(self._record_failed, row, exc.reason)
        except TimeoutError:
            return await self._outcome(self._record_retry, row, job.attempts, f"timed out after {self.send_timeout:g}s", None)
        except Exception as exc:  # a bug or an unexpected library error: retry, and say what it was
            log.exception("destination_error", destination=row["destination"], outbox_id=row["id"])
            reason = redact(f"{type(exc).__name__}: {exc}")
            return await self._outcome(self._record_retry, row, job.attempts, reason, None)
        return await self._outcome(self._record_sent, row, job.attempts, time.perf_counter() - started,
                              alert.incident_id if isinstance(ref, str) and ref else None, ref)

    # -- SQL (run in threads, under archive.lock) ---------------------------------
    def _prepare(self, inflight: dict[int, str], exclude: frozenset[int]) -> tuple[list[_Job], list[int], float | None]:
        """Fetch due rows, claim them (one short transaction under the archive lock) and
        render them (reads only, without the archive lock: a store transaction due meanwhile
        does not wait for the rendering)."""
        now = self._now()
        skip = set(inflight) | exclude
        per = Counter(inflight.values())
        with self._reading() as rconn:
            cur = rconn.execute(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE status IN ('pending', 'sending') AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT ?",
                (ts(now), self.batch_size + len(skip)),
            )
            rows = [row_dict(cur, values) for values in cur.fetchall()]
        picked = []
        for row in rows:
            dest = row["destination"]
            if row["id"] in skip or (dest in self.destinations and per[dest] >= self.per_destination_cap):
                continue
            per[dest] += 1
            picked.append(row)
            if len(picked) >= self.batch_size:
                break
        handled: list[int] = []
        claimed = []
        if picked:
            # The guards (status, next_attempt_at) make a claim of a row that changed since
            # it was read above a no-op (rowcount 0).
            lease = ts(now + timedelta(seconds=self.lease_seconds))
            conn = self.archive.conn
            with self.archive.lock, self.archive.transaction():
                for row in picked:
                    if row["destination"] not in self.destinations:
                        reason = f"unknown destination '{row['destination']}' (not in the configuration)"
                        cur = conn.execute(
                            "UPDATE outbox SET status='failed', last_error=? WHERE id=? AND status IN ('pending','sending')"
                            " AND next_attempt_at <= ?",
                            (reason, row["id"], ts(now)),
                        )
                        if cur.rowcount == 1:
                            handled.append(row["id"])
                            self.stats.failed += 1
                            log.warning("alert_failed", outbox_id=row["id"], destination=row["destination"], error=reason)
                        continue
                    cur = conn.execute(
                        "UPDATE outbox SET status='sending', attempts=attempts+1, next_attempt_at=?"
                        " WHERE id=? AND status IN ('pending','sending') AND next_attempt_at <= ?",
                        (lease, row["id"], ts(now)),
                    )
                    if cur.rowcount == 1:
                        claimed.append(row)
        jobs = []
        for row in claimed:
            handled.append(row["id"])
            job = self._render(row)
            if job is not None:
                jobs.append(job)
        full = frozenset(d for d, n in per.items() if n >= self.per_destination_cap)
        next_due = self._locked_next_due(frozenset(skip | {r["id"] for r in picked}), full)
        return jobs, handled, next_due

    def _render(self, row: dict[str, Any]) -> _Job | None:
        """The job for a claimed row, or None when the row was settled (failed/skipped)."""
        attempts = int(row["attempts"]) + 1
        if row["kind"] == "alert":
            from ..incidents.alerting import alerted_copy

            with self._reading() as rconn:
                first = alerted_copy(rconn, row)
            if first is not None:  # a repost of a text alerted already: counted in its incident and the digest
                with self.archive.lock, self.archive.transaction():
                    self.archive.conn.execute(
                        "UPDATE outbox SET status='skipped', sent_at=?, last_error=? WHERE id=?",
                        (ts(self._now()), f"repost of the text of alert {first}", row["id"]),
                    )
                self.stats.skipped += 1
                log.info("alert_skipped_repost", outbox_id=row["id"], destination=row["destination"], first=first)
                return None
        try:
            with self._reading() as rconn:
                alert = render_row(rconn, row, self.renderer)
        except RenderError as exc:
            self._record_failed(row, str(exc))
            return None
        except Exception as exc:
            log.exception("render_error", outbox_id=row["id"])
            self._record_failed(row, f"render error: {type(exc).__name__}: {exc}")
            return None
        if alert is None:
            with self.archive.lock, self.archive.transaction():
                self.archive.conn.execute(
                    "UPDATE outbox SET status='skipped', sent_at=? WHERE id=?", (ts(self._now()), row["id"])
                )
            self.stats.skipped += 1
            return None
        return _Job(row, alert, attempts)

    def _locked_next_due(self, exclude: frozenset[int], full: frozenset[str]) -> float | None:
        """Seconds until the next row not in ``exclude`` and not for a ``full`` destination is
        due (negative: overdue), or None."""
        best: str | None = None
        with self._reading() as rconn:
            for status in ("pending", "sending"):
                sql = "SELECT next_attempt_at FROM outbox WHERE status = ?"
                args: list[Any] = [status]
                if full:
                    sql += f" AND destination NOT IN ({','.join('?' * len(full))})"
                    args.extend(full)
                if exclude:
                    sql += f" AND id NOT IN ({','.join('?' * len(exclude))})"
                    args.extend(exclude)
                row = rconn.execute(sql + " ORDER BY next_attempt_at LIMIT 1", args).fetchone()
                if row is not None and (best is None or row[0] < best):
                    best = row[0]
        if best is None:
            return None
        return (parse_ts(best) - self._now()).total_seconds()

    def _recover(self) -> int:
        with self.archive.lock, self.archive.transaction():
            return queue.requeue_sending(self.archive.conn, ts(self._now()))

    def _release(self, outbox_id: int, *, undo_attempt: bool, due: datetime | None = None) -> None:
        """Hand a claimed row back (pending, due now or at ``due``)."""
        when = ts(due or self._now())
        with self.archive.lock, self.archive.transaction():
            if undo_attempt:
                self.archive.conn.execute(
                    "UPDATE outbox SET status='pending', next_attempt_at=?, attempts=max(attempts-1, 0)"
                    " WHERE id=? AND status='sending'",
                    (when, outbox_id),
                )
            else:
                self.archive.conn.execute(
                    "UPDATE outbox SET status='pending', next_attempt_at=?, last_error=? WHERE id=? AND status='sending'",
                    (ts(self._now()), "interrupted while sending", outbox_id),
                )

    def _thread_of(self, incident_id: int, destination: str) -> str | None:
        from ..incidents.alerting import thread_of

        with self._reading() as rconn:
            return thread_of(rconn, incident_id, destination)

    def _record_sent(self, row: Mapping[str, Any], attempts: int, seconds: float, incident_id: int | None = None,
                     ref: str | None = None) -> DeliveryResult:
        with self.archive.lock, self.archive.transaction():
            self.archive.conn.execute(
                "UPDATE outbox SET status='sent', sent_at=?, last_error=NULL WHERE id=?", (ts(self._now()), row["id"])
            )
            if incident_id is not None and ref:
                from ..incidents.alerting import record_thread

                # the first alert of the incident here starts its thread (kept if one exists)
                record_thread(self.archive.conn, incident_id, row["destination"], ref, row["id"], ts(self._now()))
        self.stats.sent += 1
        self.stats.by_destination[row["destination"]] = self.stats.by_destination.get(row["destination"], 0) + 1
        log.info("alert_sent", outbox_id=row["id"], destination=row["destination"], kind=row["kind"],
                 attempts=attempts, ms=round(seconds * 1000, 1))
        return DeliveryResult.SENT

    def _record_failed(self, row: Mapping[str, Any], reason: str) -> DeliveryResult:
        reason = redact(reason)
        with self.archive.lock, self.archive.transaction():
            self.archive.conn.execute(
                "UPDATE outbox SET status='failed', last_error=? WHERE id=?", (reason, row["id"])
            )
        self.stats.failed += 1
        log.warning("alert_failed", outbox_id=row["id"], destination=row["destination"], kind=row["kind"], error=reason)
        return DeliveryResult.FAILED

    def _record_retry(
        self, row: Mapping[str, Any], attempts: int, reason: str, retry_after: float | None
    ) -> DeliveryResult:
        reason = redact(reason)
        if self.schedule_spent(attempts):
            return self._record_failed(row, f"gave up after {attempts} attempts: {reason}")
        now = self._now()
        delay = retry_after if retry_after is not None else self.backoff(attempts)
        due = ts(now + timedelta(seconds=delay))
        with self.archive.lock, self.archive.transaction():
            conn = self.archive.conn
            conn.execute(
                "UPDATE outbox SET status='pending', next_attempt_at=?, last_error=? WHERE id=?",
                (due, reason, row["id"]),
            )
            if retry_after is not None:
                # Rate limited: the whole destination waits, not just this row.
                self._hold[row["destination"]] = now + timedelta(seconds=delay)
                conn.execute(
                    "UPDATE outbox SET next_attempt_at=? WHERE destination=? AND status='pending' AND next_attempt_at < ?",
                    (due, row["destination"], due),
                )
        self.stats.retried += 1
        log.warning("alert_retry", outbox_id=row["id"], destination=row["destination"], attempts=attempts,
                    retry_in=round(delay, 3), error=reason)
        return DeliveryResult.RETRY

    # -- backoff ------------------------------------------------------------------
    def nominal_delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))

    def backoff(self, attempt: int) -> float:
        """Delay before the next try after ``attempt`` failed tries (with jitter)."""
        return self.nominal_delay(attempt) * (0.5 + 0.5 * self.rng())

    def schedule_spent(self, attempts: int) -> bool:
        """True once the nominal backoff after ``attempts`` tries spans max_retry_seconds."""
        total = 0.0
        for i in range(1, attempts + 1):
            total += self.nominal_delay(i)
            if total >= self.max_retry_seconds:
                return True
        return False


async def _wait_any(events: Iterable[asyncio.Event], timeout: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


# -- library functions for the CLI --------------------------------------------------
def list_deliveries(archive: Archive, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Recent outbox rows (newest first) with their rule and channel; ``rules``: the rule ids
    of the hits an alert lists (its lead's first; one alert per message, however many rules
    hit it)."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status '{status}' (one of: {', '.join(STATUSES)})")
    sql = (
        "SELECT o.id, o.created_at, o.destination, o.kind, o.status, o.attempts, o.next_attempt_at, o.sent_at,"
        " o.last_error, o.hit_id, h.rule_id, h.title, h.level, o.payload, m.platform, m.channel_id, m.channel,"
        " m.channel_title, m.url"
        " FROM outbox o LEFT JOIN hits h ON h.id = o.hit_id LEFT JOIN messages m ON m.id = h.message_rowid"
    )
    args: list[Any] = []
    if status is not None:
        sql += " WHERE o.status = ?"
        args.append(status)
    sql += " ORDER BY o.id DESC LIMIT ?"
    args.append(int(limit))
    with archive.lock:
        cur = archive.conn.execute(sql, args)
        rows = [row_dict(cur, r) for r in cur.fetchall()]
        listed = {r["id"]: [i for i in payload_of(r).get("hit_ids") or () if i != r["hit_id"]]
                  for r in rows if r["kind"] == "alert"}
        wanted = sorted({i for ids in listed.values() for i in ids})
        rule_of = dict(archive.conn.execute(
            f"SELECT id, rule_id FROM hits WHERE id IN ({','.join('?' * len(wanted))})", wanted)) if wanted else {}
    for r in rows:
        if r["last_error"]:
            r["last_error"] = redact(r["last_error"])
        del r["payload"]
        if r["kind"] == "alert":
            r["rules"] = ([r["rule_id"]] if r["rule_id"] else []) + [rule_of[i] for i in listed[r["id"]] if i in rule_of]
    return rows


def status_counts(archive: Archive) -> dict[str, int]:
    with archive.lock:
        return queue.status_counts(archive.conn)


def retry_failed(archive: Archive, ids: Sequence[int] | None = None, *, now: datetime | None = None) -> int:
    """Put failed rows (all, or those in ``ids``) back to pending, due now, with a fresh
    retry schedule. Returns how many were re-queued."""
    when = ts(now or utcnow())
    sql = "UPDATE outbox SET status='pending', attempts=0, next_attempt_at=? WHERE status='failed'"
    args: list[Any] = [when]
    if ids is not None:
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        sql += f" AND id IN ({','.join('?' * len(ids))})"
        args.extend(ids)
    with archive.lock, archive.transaction():
        return archive.conn.execute(sql, args).rowcount
