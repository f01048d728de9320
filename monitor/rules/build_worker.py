"""The hot reload's build worker: the code that runs in the worker process the daemon starts
(:func:`spawn_worker`, awaited by :func:`monitor.daemon.rules_state._in_process`). Kept in
:mod:`monitor.rules`, out of :mod:`monitor.daemon`, so the worker imports only the rules code it
needs (``monitor.daemon`` imports the whole service: 0.3 CPU s more per reload).

The worker is started with ``posix_spawn`` at ``SCHED_IDLE`` from its first instruction (the
policy is set in the child before ``exec``): its interpreter's start and its imports (0.3 – 0.6
CPU s) no longer run at normal priority beside the daemon, as they did under
``multiprocessing``'s spawn (the job set the policy only once it ran). Nor does a second
interpreter start at normal priority for ``multiprocessing``'s resource tracker, and the daemon's
main module (the ``claimwatch`` console script: the whole CLI) is not imported again in the
worker."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

_BUILT: list[Any] = []  # in the worker process: the set it built, never freed object by object
# in a worker started by spawn_worker: its priority is the daemon's business (SCHED_IDLE, or
# nice 19 where that is refused, from its start; raised when starved: Escalation), so the job
# must not lower it again (a job starting after a raise would undo it, and nothing would raise
# it a second time)
_SPAWNED = False


def _build_at_low_priority(
    paths: list[str], known: set[str] | None, defaults: tuple[str, ...], directory: str
) -> tuple[bool, str | None, dict[str, float], tuple[str, str] | None]:
    """The worker process's job: load, compile and cache the set (as
    :func:`monitor.rules.cache.build_into_cache`) at the lowest CPU priority, so on a busy
    machine the daemon's own pipeline keeps its share of the cores; returns whether the rules
    are valid (else their problems), the seconds of its phases (logged with the reload) and
    the key of the entry written. The built set is kept: the worker ends with ``os._exit``
    once the daemon has the answer (:func:`_in_process`), so its million objects are dropped
    with the process's memory instead of freed one by one (0.3 s of CPU for the set, 0.35 s
    more for the interpreter's teardown at 10,000 rules, beside the daemon's read-back)."""
    from . import RuleSetError
    from .cache import CACHE_ENV, load_matcher
    from .loader import format_problems

    _exit_with_daemon()
    if not _SPAWNED:  # started by spawn_worker: the daemon set its priority and may have raised it since
        _lowest_priority()
    timings: dict[str, float] = {"key_at": time.monotonic()}  # the files' key is taken first (a system-wide clock)
    os.environ[CACHE_ENV] = directory
    keys: list[tuple[str, str]] = []
    try:
        matcher = load_matcher(paths, known_destinations=known, default_destinations=defaults,
                               timings=timings, keys=keys)
    except RuleSetError as exc:
        return False, format_problems(exc.problems), timings, None
    _BUILT.append(matcher)
    return True, None, timings, keys[0] if keys else None


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


def _answer(fd: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The worker process: ``fn(*args)``, its result (or its exception) written pickled to the
    pipe ``fd``, the pipe closed (the daemon reads to its end), then ``os._exit``: no
    interpreter teardown freeing what ``fn`` built, one object at a time."""
    import pickle

    try:
        try:
            answer: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - reported to the daemon
            answer = ("error", exc)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an answer that does not pickle
            data = pickle.dumps(("error", RuntimeError(f"rules build worker: {type(exc).__name__}: {exc}")))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # pragma: no cover - closed stream
                pass
    finally:
        os._exit(0)


# The worker's interpreter runs this (``python -S -c``): the daemon's import path first (the
# site module is skipped: the path already holds what it would add), then the job.
# argv: -c, the answer's fd, the daemon's pid, the job (pickled, hex), the import path ...
_BOOT = ("import sys; sys.path[:] = sys.argv[4:]; "
         "from monitor.rules.build_worker import _child_main; _child_main()")
ANSWER_FD = 3  # the answer pipe's number in the worker


def _child_main() -> None:
    """The worker process's entry (:data:`_BOOT`): ends with the daemon, then runs the job
    and answers (:func:`_answer`)."""
    import pickle

    global _SPAWNED
    fd, parent = int(sys.argv[1]), int(sys.argv[2])
    _SPAWNED = True
    _exit_with_daemon()
    if os.getppid() != parent:  # the daemon ended before the parent-death signal was set
        os._exit(1)
    fn, args = pickle.loads(bytes.fromhex(sys.argv[3]))
    _answer(fd, fn, args)


def spawn_worker(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[int, int]:
    """Start the worker process for ``fn(*args)`` (``fn`` importable by name in the worker:
    a module-level function) with ``posix_spawn`` and put it at ``SCHED_IDLE`` as its
    interpreter starts (:func:`_idle`; where the system refuses, nice 19 from here
    instead). Returns its pid and the reading end of the pipe its answer comes
    on (blocking, close-on-exec; the caller reads it to its end, then reaps the pid)."""
    import pickle

    job = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL).hex()
    argv = [sys.executable, "-S", "-c", _BOOT, str(ANSWER_FD), str(os.getpid()), job,
            *(p for p in sys.path if isinstance(p, str))]
    read, write = os.pipe()
    try:
        actions = [(os.POSIX_SPAWN_DUP2, write, ANSWER_FD)] if write != ANSWER_FD else []
        if write == ANSWER_FD:  # dup2 onto itself would keep close-on-exec
            os.set_inheritable(write, True)
        pid = os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions)
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    _idle(pid)
    return pid, read


def _idle(pid: int) -> bool:
    """Put process ``pid`` at ``SCHED_IDLE``; False where the system refuses (then nice 19, set
    from here too: the job leaves its priority alone). Called right after ``posix_spawn``
    returns, i.e. as the worker's interpreter starts: ``posix_spawnattr_setschedpolicy``
    accepts only ``SCHED_OTHER``, ``SCHED_FIFO`` and ``SCHED_RR``, and a ``SCHED_IDLE`` thread
    of the daemon calling ``posix_spawn`` (it waits until the child has called ``exec``) could
    wait on a starved child."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))  # type: ignore[attr-defined]
        return True
    except (AttributeError, OSError):  # not Linux, not permitted, or ended already
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, pid, 19)  # a child's nice may always be raised by its parent
    except (AttributeError, OSError):  # pragma: no cover - not POSIX, or ended already
        pass
    return False


# -- a starved worker raised a step at a time ------------------------------------------------
# At SCHED_IDLE the worker runs only on CPU time nothing else wants: on a quiet machine that is
# most of the second core (the reload does not slow the stream), on a busy one next to nothing
# (a reload of 10,000 rules took 155 s beside a CI run). So the daemon watches the worker's CPU
# time: once it has had less than STARVED_SHARE of a CPU for STARVED_AFTER seconds in a row, it
# is moved to the normal policy at the next nice level of RAISE_STEPS (never above the
# daemon's own priority), and so on. A quiet machine never raises it; a busy one bounds the
# swap's delay at the cost of the worker's (weighted) share beside the daemon from then on.
STARVED_SHARE = 0.5  # CPU seconds per wall second below which the worker counts as starved
STARVED_AFTER = 15.0  # wall seconds starved at one level before it is raised a step
RAISE_STEPS = (10, 0)  # the nice levels it is raised to (SCHED_OTHER), one a step
CHECK_EVERY = 1.0  # seconds between two looks at its CPU time (/proc: ~20 µs on the loop)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (``/proc``), None where unknown
    (not Linux, or it has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def to_nice(pid: int, nice: int) -> bool:
    """Move process ``pid`` from ``SCHED_IDLE`` (or a higher nice) to the normal policy at
    ``nice``; False where the system refuses: leaving ``SCHED_IDLE`` or lowering a nice value
    needs ``CAP_SYS_NICE`` or a high enough ``RLIMIT_NICE`` (``ulimit -e``: 20 − nice)."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)  # first, so the policy switch lands at it
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))  # type: ignore[attr-defined]
        return True
    except (AttributeError, OSError):
        return False


class Escalation:
    """Watches a worker started at ``SCHED_IDLE`` (:func:`spawn_worker`) and raises it a step
    (:data:`RAISE_STEPS`) each time it has been starved (:data:`STARVED_SHARE`) for
    :data:`STARVED_AFTER` seconds; call :meth:`check` every :data:`CHECK_EVERY` seconds
    while it builds. ``raised`` lists ``(nice, seconds since the start)`` of each step;
    ``refused`` is set when the system did not allow a step (no further steps then). Where
    the worker's CPU time is unknown (no ``/proc``) it counts as starved: plain deadlines."""

    def __init__(self, pid: int, *, share: float | None = None, after: float | None = None,
                 steps: tuple[int, ...] | None = None, now: float | None = None,
                 cpu: Callable[[int], float | None] = cpu_seconds,
                 apply: Callable[[int, int], bool] = to_nice) -> None:
        self.pid = pid
        self.share = STARVED_SHARE if share is None else share
        self.after = STARVED_AFTER if after is None else after
        try:
            own = os.getpriority(os.PRIO_PROCESS, 0)
        except (AttributeError, OSError):  # pragma: no cover - not POSIX
            own = 0
        self.steps: list[int] = []
        for n in RAISE_STEPS if steps is None else steps:
            if max(n, own) not in self.steps:
                self.steps.append(max(n, own))
        self._cpu, self._apply = cpu, apply
        self.start = time.monotonic() if now is None else now
        self._at, self._used = self.start, cpu(pid) or 0.0
        self.starved = 0.0
        self.raised: list[tuple[int, float]] = []
        self.refused = False

    def check(self, now: float | None = None) -> bool:
        """One look at the worker (raise it a step if it is due); False when there is nothing
        left to do (every step taken, or refused)."""
        now = time.monotonic() if now is None else now
        used = self._cpu(self.pid)
        dt = now - self._at
        if dt <= 0:
            return bool(self.steps)
        starved = used is None or (used - self._used) / dt < self.share
        self._at = now
        if used is not None:
            self._used = used
        self.starved = self.starved + dt if starved else 0.0
        if self.starved >= self.after and self.steps:
            nice = self.steps.pop(0)
            if not self._apply(self.pid, nice):
                self.refused = True
                self.steps.clear()
                return False
            self.raised.append((nice, round(now - self.start, 1)))
            self.starved = 0.0
        return bool(self.steps)
