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
