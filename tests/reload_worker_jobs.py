"""Jobs run in the reload's build worker process by tests/test_rules_reload.py: a module that
imports nothing of the daemon, so what the worker imported is the worker's own doing."""

from __future__ import annotations

import os
import sys


def start_state() -> tuple[int, list[str]]:
    """The worker's scheduling policy as its job starts, and what it imported of
    multiprocessing, the daemon and the CLI (none of which it needs)."""
    names = ("multiprocessing", "monitor.daemon", "monitor.cli", "monitor.archive", "monitor.incidents")
    return os.sched_getscheduler(0), sorted(m for m in sys.modules if m.startswith(names))


def until_raised(nice: int, timeout: float) -> tuple[int, int]:
    """Sleep (so the worker counts as starved: it takes no CPU) until the daemon has moved it to
    the normal policy at ``nice``, or ``timeout`` seconds; its policy and nice value then."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.sched_getscheduler(0) == os.SCHED_OTHER and os.getpriority(os.PRIO_PROCESS, 0) == nice:
            break
        time.sleep(0.05)
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def spin(seconds: float) -> tuple[int, int]:
    """Use the CPU for ``seconds`` (the worker is not starved while it gets it); its policy and
    nice value then."""
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def build_after_raise(rules: str, directory: str) -> tuple[bool, int]:
    """In a spawned worker: raised to the normal policy first (as the daemon raises a starved
    worker, here before its job has started), then the reload's job on ``rules``; whether the
    rules were valid and the worker's policy after the job (it must not have lowered itself)."""
    from monitor.rules import build_worker

    assert build_worker.to_nice(os.getpid(), os.getpriority(os.PRIO_PROCESS, 0))
    ok, _problems, _timings, _key = build_worker._build_at_low_priority([rules], None, (), directory)
    return ok, os.sched_getscheduler(0)
