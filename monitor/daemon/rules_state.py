"""The loaded rule set and its hot reload (SIGHUP or a change in the rules folder).

An invalid new rule set is reported (log and a notice to the default alert
destinations) and the previous rules keep matching.

Loading goes through the on-disk cache of compiled sets (:mod:`monitor.rules.cache`): a
restart with unchanged rule files skips parsing and compiling. A hot reload in the running
daemon (:meth:`RulesState.reload_async`) never blocks the event loop: the new set is loaded
and compiled in a worker process (spawned, at the lowest CPU priority; it writes the cache
entry and says which), the entry is read and checked in a worker thread, then unpickled on
the event loop itself a step (~100 compiled rules, a few ms) at a time, paced so the steps
take at most a quarter of the loop's time (no second thread contending for the GIL with the
pipeline: the loop between two steps matches messages as usual), its regexes compiled there
too, one at a time, and only the complete matcher is swapped in, in one assignment. Every
message is matched against the old set or the new one, never a half-built one. The
read-back builds only the live matcher: the rule set's own objects are read on first use
(:class:`monitor.rules.cache.CachedMatcher`). Without a cache directory the build runs in a
worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import Config
from ..logs import get_logger
from ..rules import Matcher, RuleSetError
from ..rules.cache import build_into_cache, cache_dir, load_matcher, open_entry, source_key
from ..rules.loader import format_problems

log = get_logger("claimwatch.rules")


@dataclass
class RulesState:
    """Holds the current compiled matcher; ``reload()`` swaps it only when the new set is valid."""

    cfg: Config
    path: str
    matcher: Matcher | None = None
    loaded_at: str | None = None
    rule_count: int = 0
    fingerprint: str = ""
    last_error: str | None = None
    reloads: int = 0
    on_error: Callable[[str], None] | None = None
    reload_in: str = "auto"  # "process" (worker process + cache), "thread", "auto": process when caching is on
    cache_status: str | None = None  # hit | miss | off: how the current set was loaded
    last_reload_seconds: float | None = None
    _watch_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _reloading: "asyncio.Future[bool] | None" = field(default=None, repr=False)
    _again: bool = field(default=False, repr=False)
    _loaded_key: tuple[str, str] | None = field(default=None, repr=False)  # source_key of the set read back

    def _known_destinations(self) -> set[str]:
        return self.cfg.destination_names()

    def load(self) -> None:
        """First load: raises RuleSetError (the daemon refuses to start)."""
        self._swap(self._build())

    def _build(self) -> tuple[Matcher, int, str]:
        statuses: list[str] = []
        matcher = load_matcher(
            [self.path], known_destinations=self._known_destinations(),
            default_destinations=tuple(self.cfg.alerts.default), on_status=statuses.append,
        )
        self.cache_status = statuses[-1] if statuses else None
        return self._built(matcher.prepare())

    @staticmethod
    def _built(matcher: Matcher) -> tuple[Matcher, int, str]:
        # from the compiled rules' hit fields (the rule id and file hash each hit carries):
        # the same as hashing matcher.rules' (id, hash), without reading a cached set's rules
        keys = [cr.hit["rule_id"] + (cr.hit["rule_hash"] or "") for cr in matcher._rules]
        fp = hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()
        return matcher, len(keys), fp

    def _swap(self, built: tuple[Matcher, int, str]) -> None:
        from ..archive import now_iso

        # one assignment: the pipeline reads self.matcher per message, so each message is
        # matched against the old set or the new one
        self.matcher, self.rule_count, self.fingerprint = built
        self.loaded_at = now_iso()
        self.last_error = None

    def _failed(self, text: str, **kw: Any) -> bool:
        self.last_error = text
        log.error("rules reload failed; keeping the previous rules", **kw)
        if self.on_error is not None:
            self.on_error(text)
        return False

    def reload(self) -> bool:
        """Load the rules again, here and now (blocking); keep the old set when the new one
        has errors. The daemon uses :meth:`reload_async`."""
        t = time.perf_counter()
        try:
            built = self._build()
        except RuleSetError as exc:
            return self._failed(format_problems(exc.problems), problems=format_problems(exc.problems))
        except Exception as exc:  # unreadable folder etc.
            return self._failed(str(exc), error=str(exc))
        self._swap(built)
        self.reloads += 1
        self.last_reload_seconds = time.perf_counter() - t
        log.info("rules reloaded", rules=self.rule_count, seconds=round(self.last_reload_seconds, 3))
        return True

    async def reload_async(self) -> bool:
        """Reload without blocking the event loop (see the module docstring); the current set
        keeps matching until the new one is complete. A reload asked for while one runs is
        done once more after it (the files may have changed again)."""
        if self._reloading is not None:
            self._again = True
            return await asyncio.shield(self._reloading)
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._reloading = fut
        ok = False
        try:
            while True:
                self._again = False
                ok = await self._reload_off_loop()
                if not self._again:
                    break
                # asked again meanwhile (SIGHUP and the folder watch both fire on an edit):
                # only if the files differ from those of the set just read back
                if ok and await self._unchanged():
                    log.info("rules unchanged since the reload; not reloading again")
                    break
        finally:
            self._reloading = None
            if not fut.done():
                fut.set_result(ok)
        return ok

    async def _unchanged(self) -> bool:
        key = self._loaded_key
        if key is None:
            return False
        now = await asyncio.to_thread(
            source_key, [self.path], self._known_destinations(), tuple(self.cfg.alerts.default))
        return now == key

    async def _reload_off_loop(self) -> bool:
        t = time.perf_counter()
        mode = self.reload_in
        directory = cache_dir()
        if mode == "auto":
            mode = "process" if directory is not None else "thread"
        known = self._known_destinations()
        defaults = tuple(self.cfg.alerts.default)
        phases: dict[str, float] = {}
        key: tuple[str, str] | None = None
        try:
            matcher = None
            if mode == "process" and directory is not None:
                ok, problems, phases, key = await _in_process(
                    _build_at_low_priority, [self.path], known, defaults, str(directory))
                if not ok:
                    return self._failed(problems or "invalid rules", problems=problems)
                phases = {f"worker_{k}": v for k, v in phases.items()}
                phases["worker_total"] = round(time.perf_counter() - t, 3)
                t_read = time.perf_counter()
                if key is not None:
                    matcher = await _read_back(key, phases)
                    if matcher is not None:
                        await _compile_regexes(matcher, phases)
                phases["read_back"] = round(time.perf_counter() - t_read, 3)
                status = "process"
            if matcher is None:  # thread mode, or no entry (a file changed while the worker read them)
                statuses: list[str] = []
                keys: list[tuple[str, str]] = []
                matcher = await asyncio.to_thread(
                    _prepared, load_matcher, [self.path], known_destinations=known, default_destinations=defaults,
                    on_status=statuses.append, keys=keys,
                )
                key = keys[0] if keys else None
                status = "thread"
        except RuleSetError as exc:
            return self._failed(format_problems(exc.problems), problems=format_problems(exc.problems))
        except Exception as exc:  # unreadable folder, worker died ...
            return self._failed(str(exc), error=str(exc))
        t_swap = time.perf_counter()
        self._swap(self._built(matcher))
        self._loaded_key = key
        phases["swap"] = round(time.perf_counter() - t_swap, 3)  # the old set freed here too
        self.reloads += 1
        self.last_reload_seconds = time.perf_counter() - t
        log.info("rules reloaded", rules=self.rule_count, built_in=status, seconds=round(self.last_reload_seconds, 3),
                 **phases)
        return True

    def get(self) -> Matcher | None:
        return self.matcher

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload when a file under the rules path changes (watchfiles)."""
        from watchfiles import awatch

        target = Path(self.path)
        if not target.exists():
            return
        async for _changes in awatch(target, stop_event=stop, debounce=300, recursive=True):
            await self.reload_async()

    def info(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rules": self.rule_count,
            "loaded_at": self.loaded_at,
            "fingerprint": self.fingerprint,
            "reloads": self.reloads,
            "last_error": self.last_error,
            "cache": self.cache_status,
            "last_reload_seconds": self.last_reload_seconds,
        }


READ_PAUSE = 0.002  # seconds the thread that compiles the regexes sleeps at least after each
BUSY_SHARE = 0.25  # at most this share of the event loop's time goes to reading a reloaded set back


async def _read_back(key: tuple[str, str], phases: dict[str, float]) -> Matcher | None:
    """The cache entry ``key`` read back: read and checked in a thread, unpickled on the event
    loop a step at a time (each a few ms), sleeping after each three times as long as it took
    (the pipeline runs meanwhile). None when the entry is missing or damaged (removed: the
    caller builds the set in a thread instead). ``phases`` gets ``read`` (the thread's part),
    ``unpickle`` (the steps' own time), ``steps`` and ``read_wall`` (the steps' span)."""
    t = time.perf_counter()
    entry = await asyncio.to_thread(open_entry, key)
    phases["read"] = round(time.perf_counter() - t, 3)
    if entry is None:
        return None
    t = time.perf_counter()
    busy = 0.0
    n = 0
    steps = entry.steps()
    try:
        while True:
            t0 = time.perf_counter()
            try:
                next(steps)
            except StopIteration as stop:
                matcher = stop.value
                busy += time.perf_counter() - t0
                break
            took = time.perf_counter() - t0
            busy += took
            n += 1
            await asyncio.sleep(took * (1 - BUSY_SHARE) / BUSY_SHARE)
    except ValueError:  # damaged (removed)
        return None
    finally:
        steps.close()
    phases.update(unpickle=round(busy, 3), steps=n, read_wall=round(time.perf_counter() - t, 3))
    return matcher


async def _compile_regexes(matcher: Matcher, phases: dict[str, float]) -> None:
    """What :meth:`Matcher.prepare` compiles (the fields' RE2 regexes), on the event loop a
    regex at a time (~1 ms each), paced as the read-back's steps; whatever is left then
    (nothing, normally) by ``prepare`` in a worker thread. ``phases`` gets ``prepare`` (the
    compilations' own time) and ``prepare_wall``."""
    t = time.perf_counter()
    busy = 0.0
    for index in list(matcher.fields.values()):
        compiled = getattr(index, "compiled", None)
        if not compiled:
            continue
        for i in range(len(compiled)):
            t0 = time.perf_counter()
            compiled[i]  # noqa: B018 - compiled on first access
            took = time.perf_counter() - t0
            busy += took
            await asyncio.sleep(took * (1 - BUSY_SHARE) / BUSY_SHARE)
    t0 = time.perf_counter()
    await asyncio.to_thread(matcher.prepare, pause=READ_PAUSE)
    busy += time.perf_counter() - t0
    phases.update(prepare=round(busy, 3), prepare_wall=round(time.perf_counter() - t, 3))


def _prepared(
    fn: Callable[..., "Matcher | None"], *args: Any, phases: dict[str, float] | None = None, **kw: Any
) -> "Matcher | None":
    """``fn(...)`` with what compiles on first use compiled here (off the event loop);
    ``phases`` gets the seconds of both (``read``, ``prepare``)."""
    t = time.perf_counter()
    matcher = fn(*args, **kw)
    t2 = time.perf_counter()
    if matcher is not None:
        matcher.prepare(pause=READ_PAUSE)
    if phases is not None:
        phases["read"] = round(t2 - t, 3)
        phases["prepare"] = round(time.perf_counter() - t2, 3)
    return matcher


def _build_at_low_priority(*args: Any) -> tuple[bool, str | None, dict[str, float], tuple[str, str] | None]:
    """The worker process's job: :func:`build_into_cache` at the lowest CPU priority, so on a
    busy machine the daemon's own pipeline keeps its share of the cores; returns its result,
    the seconds of its phases (logged with the reload) and the key of the entry written."""
    _exit_with_daemon()
    _lowest_priority()
    timings: dict[str, float] = {}
    ok, problems, key = build_into_cache(*args, timings=timings)
    return ok, problems, timings, key


def _exit_with_daemon() -> None:
    """End this worker when the daemon is gone (Linux's parent-death signal): at the lowest
    priority on a busy machine it may still be building when the daemon stops."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux
        pass


def _lowest_priority() -> str:
    """Run this process only on CPU time nothing else wants: ``SCHED_IDLE`` on Linux (a
    nice-10 worker still takes its weighted share of a contended core), else nice 19;
    returns which. On a saturated machine the new set arrives later; the old one matches
    meanwhile."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # type: ignore[attr-defined]
        return "idle"
    except (AttributeError, OSError):  # not Linux, or not permitted
        pass
    try:
        os.nice(19)
        return "nice"
    except (AttributeError, OSError):  # pragma: no cover - not POSIX
        return "normal"


async def _in_process(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a freshly spawned worker process (it shares nothing with the daemon's
    event loop, threads or GIL)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    finally:
        pool.shutdown(wait=False)  # the worker exits on its own; never join it on the event loop
