"""The loaded rule set and its hot reload (SIGHUP or a change in the rules folder).

An invalid new rule set is reported (log and a notice to the default alert
destinations) and the previous rules keep matching.

Loading goes through the on-disk cache of compiled sets (:mod:`monitor.rules.cache`): a
restart with unchanged rule files skips parsing and compiling. At start-up nothing is
compiled ahead: the first messages are matched as soon as the cached set is read, and what
compiles on first use (the fields' RE2 regexes) is compiled by :meth:`RulesState.finish_lazy`
on the event loop, a regex at a time, paced (or by the first message that needs one).

A hot reload in the running daemon (:meth:`RulesState.reload_async`) never blocks the event
loop: the new set is loaded and compiled in a worker process (``posix_spawn``, at
``SCHED_IDLE`` from its start, ended with the daemon; it writes the cache entry and says which), the entry is
read and checked in a worker thread, then unpickled on the event loop itself a step (~100
compiled rules, a few ms) at a time, paced so the steps take at most a quarter of the loop's
time (no second thread contending for the GIL with the pipeline: the loop between two steps
matches messages as usual), and only the complete matcher is swapped in, in one assignment.
Every message is matched against the old set or the new one, never a half-built one (a set
whose regexes compile on first use is complete: same hits). The regexes the replaced set had
compiled are handed to the new one where the pattern is the same (:func:`_carry_regexes`);
after the swap the rest are compiled as at start-up, and the replaced set is freed a few ms
at a time
(:func:`_free_in_steps`) once the pipeline no longer holds it. The read-back builds only the
live matcher: the rule set's own objects are read on first use
(:class:`monitor.rules.cache.CachedMatcher`). Without a cache directory the build runs in a
worker thread.

The worker process answers over a pipe that the event loop reads (no thread waits for it) and
then ends with ``os._exit``: the set it built is dropped with its memory, not freed object by
object beside the daemon's read-back.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..config import Config
from ..logs import get_logger
from ..rules import Matcher, RuleSetError
from ..rules.cache import cache_dir, load_matcher, open_entry, source_key
from ..rules.loader import format_problems
from ..rules import build_worker
from ..rules.build_worker import _build_at_low_priority, _lowest_priority, spawn_worker  # noqa: F401 (tests)

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
    _key_taken_at: float | None = field(default=None, repr=False)  # time.monotonic() before that key was taken
    _again_at: float = field(default=0.0, repr=False)  # time.monotonic() of the last request during a reload
    lazy_pending: bool = False  # the current set still has regexes to compile (finish_lazy)
    _released: "asyncio.Task[None] | None" = field(default=None, repr=False)  # freeing the replaced set
    _lazy_task: "asyncio.Task[bool] | None" = field(default=None, repr=False)

    def _known_destinations(self) -> set[str]:
        return self.cfg.destination_names()

    def load(self) -> None:
        """First load: raises RuleSetError (the daemon refuses to start). Nothing is compiled
        ahead here (the first message would wait for it): what compiles on first use (the
        fields' regexes) is compiled by :meth:`finish_lazy` while the pipeline runs, or by
        the first message that needs it."""
        t = time.perf_counter()
        c = time.process_time()
        self._swap(self._build(prepare=False))
        self.lazy_pending = True
        log.info("rules loaded", rules=self.rule_count, cache=self.cache_status,
                 seconds=round(time.perf_counter() - t, 3), cpu_seconds=round(time.process_time() - c, 3))

    def _build(self, prepare: bool = True) -> tuple[Matcher, int, str]:
        statuses: list[str] = []
        matcher = load_matcher(
            [self.path], known_destinations=self._known_destinations(),
            default_destinations=tuple(self.cfg.alerts.default), on_status=statuses.append,
        )
        self.cache_status = statuses[-1] if statuses else None
        return self._built(matcher.prepare() if prepare else matcher)

    def start_lazy(self) -> "asyncio.Task[bool]":
        """:meth:`finish_lazy` as a task of the running loop (one at a time: a newer set's
        replaces the previous one's, which stops by itself)."""
        task = asyncio.get_running_loop().create_task(self.finish_lazy(), name="rules-lazy")
        self._lazy_task = task
        return task

    async def close(self) -> None:
        """Stop the lazy work and the freeing of replaced sets (shutdown)."""
        for task in (self._lazy_task, self._released):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def finish_lazy(self) -> bool:
        """Compile what the start-up left to first use (the fields' regexes) on the event loop,
        a regex at a time, paced as a reload's read-back (the pipeline matches between two),
        so neither the first message nor a later one waits for all of them. Runs after the
        start-up and after each reload's swap; stops early when a reload swaps the set
        meanwhile (the new set's own run follows). True when done."""
        matcher = self.matcher
        if matcher is None or not self.lazy_pending:
            return True
        phases: dict[str, float] = {}
        done = await _compile_regexes(matcher, phases, current=lambda: self.matcher is matcher)
        if self.matcher is matcher:
            self.lazy_pending = False
        if done:
            log.info("rules ready: regexes compiled", **phases)
        return done

    @staticmethod
    def _built(matcher: Matcher) -> tuple[Matcher, int, str]:
        # from the compiled rules' hit fields (the rule id and file hash each hit carries):
        # the same as hashing matcher.rules' (id, hash), without reading a cached set's rules
        keys = [cr.hit["rule_id"] + (cr.hit["rule_hash"] or "") for cr in matcher._rules]
        if getattr(matcher, "classifier", None) is not None:  # its id and model digest (a retrained model is a new set)
            keys.append(matcher.classifier.key)
        fp = hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()
        return matcher, len(keys), fp

    def _swap(self, built: tuple[Matcher, int, str]) -> Matcher | None:
        """Put the new set in force; returns the one it replaced."""
        from ..archive import now_iso

        old = self.matcher
        # one assignment: the pipeline reads self.matcher per message, so each message is
        # matched against the old set or the new one
        self.matcher, self.rule_count, self.fingerprint = built
        self.loaded_at = now_iso()
        self.last_error = None
        return old

    def _release(self, old: Matcher | None) -> None:
        """Free the replaced set off the swap: a million objects or more, freed at once, held
        the event loop for 0.2 - 0.3 CPU s at 10,000 rules (:func:`_free_in_steps`)."""
        if old is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # blocking reload(): freed here
            return
        previous = self._released
        task = loop.create_task(_free_in_steps(old, previous), name="rules-release")
        self._released = task

    async def released(self) -> None:
        """Wait until every replaced set is freed (tests, shutdown)."""
        while self._released is not None:
            task = self._released
            await task
            if self._released is task:
                self._released = None

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
        self.lazy_pending = False
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
            self._again_at = time.monotonic()
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
                # only if the files differ from those of the set just read back. A request
                # made before that set's key was taken (the watch's, ~0.3 s after the edit,
                # while the worker starts) came after every edit the key saw: no need to
                # hash the files again here (a thread holding the GIL beside the pipeline)
                if ok and self._key_taken_at is not None and self._again_at < self._key_taken_at:
                    log.info("rules asked again before the reload read the files; not reloading again")
                    break
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
        key_at: float | None = None  # time.monotonic() before ``key`` was taken (system-wide: the worker's too)
        try:
            matcher = None
            if mode == "process" and directory is not None:
                raised: list = []
                ok, problems, phases, key = await _in_process(
                    _build_at_low_priority, [self.path], known, defaults, str(directory), raised=raised)
                key_at = phases.pop("key_at", None)
                if raised:  # the worker was starved and raised (see build_worker.Escalation)
                    phases["raised"] = " ".join(  # type: ignore[assignment]  (logged as worker_raised)
                        r if isinstance(r, str) else f"nice{r[0]}@{r[1]}s" for r in raised)
                if not ok:
                    return self._failed(problems or "invalid rules", problems=problems)
                phases = {f"worker_{k}": v for k, v in phases.items()}
                phases["worker_total"] = round(time.perf_counter() - t, 3)
                t_read = time.perf_counter()
                if key is not None:
                    # complete as it is: its regexes compile on first use, or paced on the
                    # loop after the swap (finish_lazy), as at start-up
                    matcher = await _read_back(key, phases)
                phases["read_back"] = round(time.perf_counter() - t_read, 3)
                status = "process"
            if matcher is None:  # thread mode, or no entry (a file changed while the worker read them)
                statuses: list[str] = []
                keys: list[tuple[str, str]] = []
                key_at = time.monotonic()
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
        phases["regexes_carried"] = _carry_regexes(self.matcher, matcher)
        old = self._swap(self._built(matcher))
        self.lazy_pending = status == "process"  # the thread compiled them ahead
        self._loaded_key = key
        self._key_taken_at = key_at if key is not None else None
        self._release(old)
        del old
        if self.lazy_pending:
            self.start_lazy()
        phases["swap"] = round(time.perf_counter() - t_swap, 3)
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


async def _compile_regexes(
    matcher: Matcher, phases: dict[str, float], current: Callable[[], bool] | None = None
) -> bool:
    """What :meth:`Matcher.prepare` compiles (the fields' RE2 regexes), on the event loop a
    regex at a time (~1 ms each), paced as the read-back's steps; whatever is left then
    (nothing, normally) by ``prepare`` in a worker thread. Stops (returns False) as soon as
    ``current()`` is false (the set was replaced). ``phases`` gets ``prepare`` (the
    compilations' own time), ``regexes`` (how many compiled here) and ``prepare_wall``."""
    t = time.perf_counter()
    busy = 0.0
    n = 0
    for index in list(matcher.fields.values()):
        compiled = getattr(index, "compiled", None)
        if not compiled:
            continue
        for i in range(len(compiled)):
            if current is not None and not current():
                phases.update(prepare=round(busy, 3), regexes=n, prepare_wall=round(time.perf_counter() - t, 3))
                return False
            if list.__getitem__(compiled, i) is not None:  # compiled already (by a message)
                continue
            t0 = time.perf_counter()
            compiled[i]  # noqa: B018 - compiled on first access
            took = time.perf_counter() - t0
            busy += took
            n += 1
            await asyncio.sleep(took * (1 - BUSY_SHARE) / BUSY_SHARE)
    t0 = time.perf_counter()
    await asyncio.to_thread(matcher.prepare, pause=READ_PAUSE)
    busy += time.perf_counter() - t0
    phases.update(prepare=round(busy, 3), regexes=n, prepare_wall=round(time.perf_counter() - t, 3))
    return True


def _regex_slots(matcher: Matcher) -> Iterator[tuple[Any, int, str]]:
    """(the field's compiled-on-first-use list, index, pattern) of each regex of ``matcher``."""
    for index in matcher.fields.values():
        compiled = getattr(index, "compiled", None)
        patterns = getattr(compiled, "patterns", None)
        if not compiled or patterns is None:
            continue
        for i, pattern in enumerate(patterns):
            yield compiled, i, pattern


def _carry_regexes(old: Matcher | None, new: Matcher) -> int:
    """Give ``new`` the regexes ``old`` has compiled, where the pattern is the same (a regex is
    compiled from its pattern alone, and an RE2 object is immutable: the two sets share it
    safely). A reload of a few changed files then compiles only their new patterns, on first
    use or in :meth:`RulesState.finish_lazy`, instead of all of them again (~1 CPU s on the
    event loop at 10,000 rules). Returns how many were carried over."""
    if old is None:
        return 0
    done: dict[str, tuple[Any, Any]] = {}
    for compiled, i, pattern in _regex_slots(old):
        got = list.__getitem__(compiled, i)
        if got is not None and pattern not in done:
            programs = getattr(compiled, "programs", None)
            done[pattern] = (got, programs[i] if programs is not None else None)
    carried = 0
    if not done:
        return 0
    for compiled, i, pattern in _regex_slots(new):
        if list.__getitem__(compiled, i) is not None or pattern not in done:
            continue
        got, program = done[pattern]
        list.__setitem__(compiled, i, got)
        programs = getattr(compiled, "programs", None)
        if programs is not None and program is not None and programs[i] is None:
            programs[i] = program
        carried += 1
    return carried


FREE_STEP = 0.004  # seconds of freeing per step (checked every FREE_CHECK elements)
FREE_CHECK = 32
RELEASE_WAIT = 60.0  # seconds a replaced set may stay in use before it is left to be freed whole


async def _free_in_steps(old: Matcher, previous: "asyncio.Task[None] | None" = None) -> None:
    """Free a replaced matcher a few ms at a time on the event loop, paced as the read-back
    (the pipeline matches between two steps), instead of all at once where its last
    reference goes (0.2 - 0.3 CPU s at 10,000 rules + 200,000 names, with the GIL held).

    Only containers nothing else refers to are emptied (their reference count says so), so an
    object still in use elsewhere (a hit in flight holding a rule, the bus) stays whole; the
    matcher itself is taken apart only once the pipeline's last reference to it is gone (the
    matcher stage holds the set it matched the previous message with until the next one)."""
    if previous is not None:
        await previous  # one replaced set at a time
    waited = 0.0
    # our own references: ``old`` here and getrefcount's argument
    while sys.getrefcount(old) > 2:
        if waited > RELEASE_WAIT:  # still in use (an idle pipeline): freed where its last reference goes
            return
        await asyncio.sleep(0.05)
        waited += 0.05
    parts: list[Any] = [old.__dict__]
    del old
    t = time.perf_counter()
    busy = 0.0
    n = 0
    try:
        for took in _emptied(parts):
            busy += took
            n += 1
            await asyncio.sleep(took * (1 - BUSY_SHARE) / BUSY_SHARE)
    except asyncio.CancelledError:  # shutdown: the rest is freed at once
        raise
    except Exception as exc:  # pragma: no cover - freeing must never stop the daemon
        log.warning("freeing the replaced rules failed", error=str(exc))
        return
    log.info("replaced rules freed", seconds=round(busy, 3), steps=n, wall=round(time.perf_counter() - t, 3))


def _emptied(todo: list[Any]) -> Iterator[float]:
    """Empty the containers in ``todo`` and, depth first, those inside them that nothing else
    refers to (each element freed as it is taken out, unless in use elsewhere); yields the
    seconds of each step (about FREE_STEP)."""
    t0 = time.perf_counter()
    done = 0
    while todo:
        box = todo.pop()
        if isinstance(box, dict):
            take: Callable[[], Any] = lambda b=box: b.popitem()[1]  # noqa: E731
        elif isinstance(box, (list, set)):
            take = box.pop
        else:  # pragma: no cover - _container gives only these
            continue
        while box:
            inner = take()
            if sys.getrefcount(inner) == 2:  # ``inner`` and the argument: ours alone
                sub = _container(inner)
                if sub is not None:
                    todo.append(sub)
            del inner
            done += 1
            if done >= FREE_CHECK:
                done = 0
                took = time.perf_counter() - t0
                if took >= FREE_STEP:
                    yield took
                    t0 = time.perf_counter()
        del box, take
    yield time.perf_counter() - t0


_ATOMIC = (str, int, float, bool, bytes, frozenset, type(None))
BIG = 64  # containers with fewer elements are freed whole (in C, cheaply)


def _container(obj: Any) -> Any:
    """What of ``obj`` is worth emptying a step at a time: itself when a large dict, list or
    set, a large tuple's elements (as a list), the ``__dict__`` of an object holding a large
    container (directly or in a short tuple), else None (freed whole: the many small
    containers of a set, each cheap to free in C)."""
    if isinstance(obj, (dict, list, set)):
        return obj if len(obj) >= BIG else None
    if isinstance(obj, tuple):
        if len(obj) >= BIG:
            return list(obj)
        if len(obj) <= 4 and any(_holds_big(x) for x in obj):  # e.g. (name, field index)
            return list(obj)
        return None
    return obj.__dict__ if _holds_big(obj) else None


def _holds_big(obj: Any) -> bool:
    """An object (not a container) with a large container among its attributes."""
    if isinstance(obj, _ATOMIC) or isinstance(obj, (dict, list, set, tuple)):
        return False
    d = getattr(obj, "__dict__", None)
    if not isinstance(d, dict):
        return False
    return any(isinstance(v, (dict, list, set, tuple, frozenset)) and len(v) >= BIG for v in d.values())


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


WORKER_EXIT_WAIT = 10.0  # seconds the daemon waits for the worker to end after its answer


async def _in_process(fn: Callable[..., Any], *args: Any, raised: list | None = None) -> Any:
    """``fn(*args)`` in a freshly started worker process (it shares nothing with the daemon's
    event loop, threads or GIL), at ``SCHED_IDLE`` from its first instruction
    (:func:`monitor.rules.build_worker.spawn_worker`: ``posix_spawn``; ``fn`` a module-level
    function). The answer is read on the event loop as it arrives (a non-blocking reader on
    the pipe, to its end: no thread waits for it, so a shutdown never waits for a build, and a
    slow writer at the lowest priority never blocks the loop); the worker ends right after
    writing it (:func:`monitor.rules.build_worker._answer`) and is reaped without blocking; a
    cancelled reload (shutdown) kills it. A worker starved of CPU is raised a step at a time
    (:class:`monitor.rules.build_worker.Escalation`, checked on the loop); ``raised`` (a list)
    gets its steps, ``(nice, seconds after the start)``, and ``"refused"`` where the system
    did not allow one."""
    import pickle

    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    chunks: list[bytes] = []
    pid, fd = spawn_worker(fn, args)
    worker = _Worker(pid)
    watch = build_worker.Escalation(pid)
    timer: asyncio.TimerHandle | None = None

    def look() -> None:
        nonlocal timer
        timer = None
        if ended.done():
            return
        if watch.check():
            timer = loop.call_later(build_worker.CHECK_EVERY, look)
        elif watch.refused:
            log.warning("the rules build worker is starved of CPU and may not be raised from idle priority "
                        "(needs CAP_SYS_NICE or RLIMIT_NICE); the new set comes when the machine has CPU to spare",
                        pid=pid)

    timer = loop.call_later(build_worker.CHECK_EVERY, look)
    try:
        os.set_blocking(fd, False)

        def readable() -> None:
            while not ended.done():
                try:
                    got = os.read(fd, 1 << 16)
                except BlockingIOError:
                    return
                except OSError as exc:  # pragma: no cover - the pipe failed
                    ended.set_exception(exc)
                    return
                if not got:
                    ended.set_result(None)
                    return
                chunks.append(got)

        loop.add_reader(fd, readable)
        try:
            await ended
        finally:
            loop.remove_reader(fd)
        if not chunks:  # ended without an answer
            await _reap(worker, WORKER_EXIT_WAIT / 10)
            raise RuntimeError(f"the rules build worker died (exit code {worker.exitcode})")
    except BaseException:
        if worker.exitcode is None:  # cancelled (shutdown) or failed: the build is abandoned
            worker.kill()
            for _ in range(100):
                if worker.exitcode is not None:
                    break
                time.sleep(0.01)
        raise
    finally:
        os.close(fd)
        if timer is not None:
            timer.cancel()
        if raised is not None:
            raised.extend(watch.raised)
            if watch.refused:
                raised.append("refused")
    reaping = loop.create_task(_reap(worker), name="rules-build-reap")
    _REAPING.add(reaping)
    reaping.add_done_callback(_REAPING.discard)
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise value
    return value


class _Worker:
    """A started worker process, reaped without blocking (``waitpid(WNOHANG)``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._code: int | None = None

    @property
    def exitcode(self) -> int | None:
        """Its exit code (negative: the signal that ended it) once it has ended, else None."""
        if self._code is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # pragma: no cover - reaped elsewhere
                self._code = -1
            else:
                if pid:
                    self._code = os.waitstatus_to_exitcode(status)
        return self._code

    def kill(self) -> None:
        if self.exitcode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:  # pragma: no cover - ended meanwhile
                pass


_REAPING: set["asyncio.Task[None]"] = set()


async def _reap(proc: "_Worker", wait: float = WORKER_EXIT_WAIT) -> None:
    """Wait (polling, never blocking the loop) for the worker to end; kill it if it lingers
    more than ``wait`` seconds."""
    waited = 0.0
    while proc.exitcode is None:  # waitpid(WNOHANG) under the hood
        if waited > wait:
            proc.kill()
            waited = 0.0
        await asyncio.sleep(0.02)
        waited += 0.02
