"""The hot reload's build worker: the code that runs in the spawned worker process
(:func:`monitor.daemon.rules_state._in_process`). Kept in :mod:`monitor.rules`, out of :mod:`monitor.daemon`, so
the worker imports only the rules code it needs (``monitor.daemon`` imports the whole service:
0.3 CPU s more per reload)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

from . import RuleSetError
from .cache import CACHE_ENV, load_matcher
from .loader import format_problems


_BUILT: list[Any] = []  # in the worker process: the set it built, never freed object by object


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
    _exit_with_daemon()
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


def _run_in_child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The worker process: ``fn(*args)``, its result (or its exception) written pickled to the
    pipe, the pipe closed (the daemon reads to its end), then ``os._exit``: no interpreter
    teardown freeing what ``fn`` built, one object at a time."""
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
        fd = conn.fileno()
        while view:
            view = view[os.write(fd, view):]
        conn.close()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # pragma: no cover - closed stream
                pass
    finally:
        os._exit(0)


