"""The daemon: wires config, rules, archive, sources, pipeline, scheduler and delivery.

``Daemon(cfg)`` does nothing until :meth:`prepare` (load and validate rules, open and
migrate the archive, build destinations and sources) and :meth:`run`. Both are called
by ``claimwatch run``; tests call them directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import datetime, timezone
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from ..alerts.queue import requeue_sending, status_counts
from ..archive import Archive, now_iso
from ..config import Config
from ..logs import get_logger
from ..sources.base import Envelope, Source, SourceContext, SourceStopped
from ..timefmt import from_epoch
from .pipeline import Pipeline
from .rules_state import RulesState

log = get_logger("claimwatch.daemon")


class _Stopping(Exception):
    """The daemon stopped while a failed source waited to restart."""


HEARTBEAT_SECONDS = 15.0
WRITE_NOTICE_EVERY = 3600.0  # at most one "archive writes failing" notice an hour (flapping disk)
ONCE_WRITE_ATTEMPTS = 4  # --once: attempts per failing batch before it gives up (exit 1)


def once_outcome(cfg: Config, sources: dict[str, Source], source_errors: dict[str, str]) -> tuple[int, list[str]]:
    """The exit code of a ``run --once`` whose sources ran to their end, and its problems (one
    line each). A configured input that is missing or unreadable is an input error (2, as
    ``claimwatch import`` of a missing file); a source that failed otherwise is 1."""
    where = f"{cfg.source_path}: " if cfg.source_path else ""
    inputs = [where + p for src in sources.values() for p in src.input_problems()]
    failed = [f"{name}: {err}" for name, err in source_errors.items()]
    return (2 if inputs else 1 if failed else 0), inputs + failed


def build_sources(cfg: Config) -> dict[str, Source]:
    """One source per configured section (files, telegram, x)."""
    sources: dict[str, Source] = {}
    if cfg.sources.files:
        from ..sources.files.source import FilesSource

        sources["files"] = FilesSource(list(cfg.sources.files))
    if cfg.sources.telegram is not None:
        from ..sources.telegram.accounts import build_sources as build_telegram

        sources.update(build_telegram(cfg.sources.telegram))  # one source per account
    if cfg.sources.x is not None:
        from ..sources.x import build_source as build_x

        sources["x"] = build_x(cfg.sources.x)
    return sources


def status_file(db: str) -> str:
    return db + ".status.json"


def write_status_file(db: str, info: dict[str, Any]) -> None:
    """The daemon's latest status, overwritten in place (no new file to allocate on a
    full disk once it exists; padded so a shorter text leaves no stale bytes)."""
    data = json.dumps(info, default=str).encode()
    path = status_file(db)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        os.pwrite(fd, data.ljust(size, b" "), 0)
    finally:
        os.close(fd)


def read_status_file(db: str) -> dict[str, Any] | None:
    try:
        with open(status_file(db), "rb") as fh:
            return json.loads(fh.read() or b"null")
    except (OSError, ValueError):
        return None


class Daemon:
    def __init__(self, cfg: Config, *, db: str | None = None, drain_timeout: float = 30.0, role: str = "all") -> None:
        self.cfg = cfg
        self.role = role  # "all": the sources feed the pipeline; "archiver": the bus does
        self.db = db or cfg.database
        self.drain_timeout = drain_timeout
        self.archive: Archive | None = None
        self.rules: RulesState | None = None
        self.sources: dict[str, Source] = {}
        self.destinations: dict[str, Any] = {}
        self.pipeline: Pipeline | None = None
        self.worker: Any = None
        self.scheduler: AsyncIOScheduler | None = None
        self.http: Any = None
        self.started_at: str | None = None
        self.stop_event: asyncio.Event | None = None
        self.source_errors: dict[str, str] = {}
        # after run(once=True): what the sources could not read, one line each ("source: reason")
        self.problems: list[str] = []
        self._last_message: dict[str, tuple[float, Any]] = {}  # source -> (received at, latest event)
        # errors a source counts in its health() (the files source) recorded in the archive so far
        self._errors_recorded: dict[str, int] = {}
        self._lock_fh: Any = None
        self._write_notice_at = -WRITE_NOTICE_EVERY
        self._reload_tasks: set[asyncio.Task[bool]] = set()

    # -- preparation (synchronous; errors here mean "refuse to start") ---------
    def prepare(self) -> None:
        """Build destinations and sources, check the archive can be written, validate the
        rules, open/migrate the archive.

        Raises ``ConfigError``/``ValueError``/``OSError`` for unusable configuration or archive
        (checked first), ``RuleSetError`` for broken rules, before anything starts.
        """
        from ..alerts import build_destinations
        from ..alerts.policy import OutboxPolicy
        from ..alerts.render import Renderer

        # The cheap checks first (destinations, sources, the templates folder, the archive's
        # lock and write access): building the rules takes seconds for a big set, and a user
        # waited for it to learn that the archive was read-only. Nothing is created before the
        # rules are good but the lock file.
        self.destinations = build_destinations(self.cfg)
        if self.role != "archiver":
            self.sources = build_sources(self.cfg)
        Renderer(self.cfg.alerts.templates)  # RenderError when alerts.templates is not a folder
        Archive.check_writable(self.db)
        self._lock_archive()
        self.rules = RulesState(self.cfg, self.cfg.rules, on_error=self._notify_rules_error)
        self.rules.load()
        if self.role == "archiver":
            from ..bus.roles import archiver_sources

            self.sources = archiver_sources(self.cfg, self.rules)
        self.archive = Archive.open(self.db)
        from ..incidents import configure as configure_incidents

        configure_incidents(self.archive, self.cfg)
        self.archive.policy = OutboxPolicy.from_config(self.cfg)
        self._recover_interrupted_sends()
        from ..alerts import DeliveryWorker

        # Raises RenderError (a ValueError) when alerts.templates names a missing folder.
        self.worker = DeliveryWorker.from_config(self.archive, self.destinations, self.cfg, cancel_grace=4.0)

    def _lock_archive(self) -> None:
        """One daemon per archive: a second one would send the same outbox rows."""
        import fcntl
        from pathlib import Path

        lock_path = Path(self.db + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock_path, "a+")  # noqa: SIM115 - held for the daemon's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise ValueError(f"another claimwatch daemon is running on {self.db} (lock {lock_path})") from None
        self._lock_fh = fh

    def _recover_interrupted_sends(self) -> None:
        """Rows a killed daemon was sending are due again now (this process holds the lock,
        so no other worker can be sending them)."""
        assert self.archive is not None
        with self.archive.lock, self.archive.transaction() as conn:
            n = requeue_sending(conn, now_iso(), reason="interrupted: daemon restarted")
        if n:
            log.warning("re-queued alerts that were being sent when the previous run stopped", rows=n)

    # -- health ---------------------------------------------------------------
    def outbox_counts(self) -> dict[str, int]:
        if self.archive is None:
            return {}
        with self.archive.lock:
            return status_counts(self.archive.conn)

    def health(self) -> dict[str, Any]:
        return {
            "ok": self.pipeline is not None and not (self.stop_event and self.stop_event.is_set()),
            "started_at": self.started_at,
            "pid": os.getpid(),
            "rules": self.rules.info() if self.rules else None,
            "queues": self.pipeline.depths() if self.pipeline else {},
            "sources": {
                name: {**src.health(), "error": self.source_errors.get(name)} for name, src in self.sources.items()
            },
            "outbox": self.outbox_counts(),
            "archive_write_error": self.pipeline.write_error if self.pipeline else None,
        }

    def _on_write_error(self, error: str | None) -> None:
        """Archive writes started failing (or recovered: None): update the status at once
        and tell the default destinations once per outage (directly, not through the
        outbox: the archive may be full)."""
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, self._heartbeat)
        if error is None or time.monotonic() - self._write_notice_at < WRITE_NOTICE_EVERY:
            return
        self._write_notice_at = time.monotonic()
        task = loop.create_task(self._send_write_notice(error))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _send_write_notice(self, error: str) -> None:
        import dataclasses

        from ..alerts.render import notice_context

        payload = {
            "title": "claimwatch: archive writes failing; retrying, nothing is dropped",
            "text": f"database {self.db}: {error}",
            "level": "high",
        }
        for name in self.cfg.alerts.default:
            dest = self.destinations.get(name)
            if dest is None or self.worker is None:
                continue
            try:
                alert = self.worker.renderer.render(notice_context(payload))
                alert = dataclasses.replace(alert, destination=name, dedup_key=f"notice:write-error:{self.started_at}")
                await asyncio.wait_for(dest.send(alert), 30.0)
            except Exception as exc:
                log.error("could not send the archive write notice", destination=name, error=str(exc))

    def _notify_rules_error(self, text: str) -> None:
        """A reload failed: tell the default destinations (the old rules keep running)."""
        if self.archive is None:
            return
        payload = {"title": "claimwatch: rules reload failed, previous rules still active", "text": text}
        with self.archive.lock, self.archive.transaction():
            stamp = now_iso()
            for dest in self.cfg.alerts.default:
                self.archive.enqueue(None, dest, kind="notice", payload=payload, dedup_key=f"notice:{stamp}:{dest}")
        if self.pipeline is not None:
            self.pipeline.wake.set()

    # -- running --------------------------------------------------------------
    async def run(self, *, once: bool = False) -> int:
        if self.archive is None:
            self.prepare()
        assert self.archive is not None and self.rules is not None
        self.started_at = now_iso()
        self.stop_event = stop = asyncio.Event()
        worker_stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._install_signals(loop, stop)

        self.pipeline = pipeline = Pipeline(
            self.archive, self.rules.get, on_write_error=self._on_write_error,
            max_attempts=ONCE_WRITE_ATTEMPTS if once else None,
        )
        self._notices: set[asyncio.Task[None]] = set()
        pipeline.start()
        self.scheduler = AsyncIOScheduler(timezone=timezone.utc)
        self._schedule_jobs(self.scheduler, pipeline)
        self._heartbeat()  # status shows this run from the start
        self.scheduler.start()
        if self.cfg.http.enabled and not once:
            from .health import HealthServer

            self.http = HealthServer(self, self.cfg.http.host, self.cfg.http.port)
            await self.http.start()
            log.info("health endpoint listening", url=f"http://{self.http.host}:{self.http.port}/healthz")

        worker_task = None if once else asyncio.create_task(self.worker.run(worker_stop, pipeline.wake))
        ctx = SourceContext(self.archive, self._emit_tracked(pipeline), self.scheduler, stop)
        source_tasks = [
            asyncio.create_task(self._run_source(name, src, ctx, once), name=f"source:{name}")
            for name, src in self.sources.items()
        ]
        watch_task = None if once else asyncio.create_task(self._watch_rules(stop))
        # what the start-up left to first use (regexes), compiled while the pipeline runs
        self.rules.start_lazy()
        log.info(
            "claimwatch running",
            sources=list(self.sources),
            rules=self.rules.rule_count,
            database=self.db,
            once=once,
        )
        try:
            if once:
                await asyncio.gather(*source_tasks)
            else:
                await stop.wait()
                log.info("stopping: draining queues")
                stop_wait = [t for t in source_tasks if not t.done()]
                if stop_wait:
                    _done, still = await asyncio.wait(stop_wait, timeout=3.0)
                    for t in still:
                        t.cancel()
                    await asyncio.gather(*still, return_exceptions=True)
        finally:
            await self.rules.close()
            pipeline.give_up_retrying()  # what cannot be written now is re-read after a restart
            await pipeline.close()
            if self._notices:
                await asyncio.wait(self._notices, timeout=10.0)
            self._heartbeat(stopped=True)
            if worker_task is not None:
                worker_stop.set()
                pipeline.wake.set()
                try:
                    await asyncio.wait_for(worker_task, timeout=5.0)
                except asyncio.TimeoutError:
                    worker_task.cancel()
            # Deliver what the last batches queued; --once retries failing destinations
            # for up to drain_timeout, a SIGTERM only briefly (what fails stays pending).
            await self.worker.drain(self.drain_timeout if once else min(self.drain_timeout, 3.0))
            if watch_task is not None:
                stop.set()
                watch_task.cancel()
                await asyncio.gather(watch_task, return_exceptions=True)
            self.scheduler.shutdown(wait=False)
            if self.http is not None:
                await self.http.stop()
            for src in self.sources.values():
                await src.close()
            await self._close_destinations()
            self.archive.close()
            self._remove_signals(loop)
            if self._lock_fh is not None:
                self._lock_fh.close()
                self._lock_fh = None
        log.info("claimwatch stopped", **pipeline.stats.__dict__)
        if pipeline.stats.unstored:
            log.error("events were not stored (archive writes failed); they are read again on the next run",
                      unstored=pipeline.stats.unstored, error=pipeline.write_error)
            return 1
        if once:
            code, self.problems = once_outcome(self.cfg, self.sources, self.source_errors)
            return code
        return 0

    def _emit_tracked(self, pipeline: Pipeline) -> Any:
        """The pipeline's emit, remembering each source's latest event (for status)."""
        last = self._last_message

        async def emit(envelope: Envelope) -> None:
            last[envelope.source] = (time.time(), envelope.event)
            await pipeline.emit(envelope)

        return emit

    async def _run_source(self, name: str, source: Source, ctx: SourceContext, once: bool) -> None:
        """Run a source; restart it with backoff (1 s doubling to 5 min) after errors, unless
        it stopped for good, or the daemon is stopping, or ``once``."""
        wait = wait_exponential(multiplier=1.0, max=300.0)

        def failed(state: RetryCallState) -> None:
            assert state.outcome is not None
            exc = state.outcome.exception()
            self.source_errors[name] = f"{type(exc).__name__}: {exc}"
            log.error("source failed; restarting", source=name, error=str(exc), retry_in=wait(state))
            self._record_error(name, str(exc))

        async def pause(seconds: float) -> None:
            try:
                await asyncio.wait_for(ctx.stop.wait(), timeout=seconds)
            except asyncio.TimeoutError:
                return
            raise _Stopping  # stopped while waiting: no restart

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and not isinstance(exc, SourceStopped)),
            wait=wait, stop=lambda _state: once, after=failed, sleep=pause, reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await source.run(ctx, once=once)
        except SourceStopped as exc:
            self.source_errors[name] = str(exc)
            log.error("source stopped", source=name, error=str(exc))
            self._record_error(name, str(exc))
        except (_Stopping, Exception):  # the daemon is stopping, or a failed `once` run (recorded)
            return

    def _record_error(self, name: str, error: str) -> None:
        if self.archive is not None:
            self.archive.record_source_status(name, error=error)

    async def _watch_rules(self, stop: asyncio.Event) -> None:
        try:
            await self.rules.watch(stop)  # type: ignore[union-attr]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # watching is a convenience; SIGHUP still works
            log.warning("rules folder watch unavailable", error=str(exc))

    def _schedule_jobs(self, scheduler: AsyncIOScheduler, pipeline: Pipeline) -> None:
        scheduler.add_job(self._heartbeat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat", coalesce=True)
        # Safety net: pending rows whose retry time has come are picked up even if no
        # new hit wakes the worker.
        scheduler.add_job(pipeline.wake.set, "interval", seconds=5, id="outbox-retry", coalesce=True)
        digest = self.cfg.alerts.digest
        if digest is not None:
            from apscheduler.triggers.cron import CronTrigger

            from ..alerts import enqueue_digest

            def run_digest() -> None:
                with self.archive.lock:  # type: ignore[union-attr]
                    enqueue_digest(self.archive, self.cfg, datetime.now(timezone.utc))
                pipeline.wake.set()

            scheduler.add_job(run_digest, CronTrigger.from_crontab(digest.cron, timezone=timezone.utc), id="digest")

    def _heartbeat(self, *, stopped: bool = False) -> None:
        """Write per-source and daemon status to the archive (read by ``claimwatch status``);
        while the archive cannot be written, the daemon's status goes to ``<db>.status.json``."""
        if self.archive is None:
            return
        pipe = self.pipeline
        info = {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "stopped_at": now_iso() if stopped else None,
            "rules": self.rules.info() if self.rules else None,
            "queues": pipe.depths() if pipe else {},
            "stats": pipe.stats.__dict__ if pipe else {},
            "write_error": pipe.write_error if pipe else None,
            "write_failing_since": (
                from_epoch(pipe.write_failing_since)
                if pipe and pipe.write_failing_since else None
            ),
        }
        if self.db != ":memory:":
            try:
                write_status_file(self.db, {**info, "heartbeat_at": now_iso()})
            except OSError as exc:
                log.warning("status file not written", error=str(exc))
        try:
            for name, src in self.sources.items():
                received_at, received, date = None, None, None
                if name in self._last_message:
                    received_at, event = self._last_message[name]
                    received = from_epoch(received_at)
                    event_date = getattr(event, "date", None)
                    date = event_date.isoformat() if isinstance(event_date, datetime) else None
                src_info = {**src.health(), "last_message_date": date}
                # a source that counts its errors itself (a missing or broken file): into the
                # status row's errors and last error, which `claimwatch status` shows
                counted = src_info.get("errors")
                new_errors = counted - self._errors_recorded.get(name, 0) if isinstance(counted, int) else 0
                error = src_info.get("last_error") if new_errors > 0 else None
                self.archive.record_source_status(name, last_message_at=received, polled=True, info=src_info,
                                                  error=str(error) if error else None, error_count=new_errors)
                if error:
                    self._errors_recorded[name] = counted
            self.archive.record_source_status("daemon", polled=True, info=info)
        except Exception as exc:  # status is best effort (the archive may be full)
            log.warning("heartbeat failed", error=str(exc))

    async def _close_destinations(self) -> None:
        for dest in self.destinations.values():
            close = getattr(dest, "close", None)
            if close is not None:
                try:
                    res = close()
                    if asyncio.iscoroutine(res):
                        await res
                except Exception:  # pragma: no cover
                    pass

    # -- signals --------------------------------------------------------------
    def _install_signals(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        try:
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGHUP, self._sighup)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not main thread
            pass

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                pass

    def _sighup(self) -> None:
        log.info("SIGHUP: reloading rules")
        if self.rules is not None:  # built off the event loop; the pipeline keeps matching meanwhile
            task = asyncio.get_running_loop().create_task(self.rules.reload_async(), name="rules-reload")
            self._reload_tasks.add(task)
            task.add_done_callback(self._reload_tasks.discard)

    def request_stop(self) -> None:
        if self.stop_event is not None:
            self.stop_event.set()
