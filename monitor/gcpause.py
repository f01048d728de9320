"""Cyclic garbage collection paused while a rule set is loaded, compiled or read back, and
while the incident tracker assigns a batch of hits (monitor.incidents.assign).

Loading 10,000 rules with 200,000 names allocates millions of small objects that all stay
alive; every few thousand allocations the collector would walk the growing heap again (a
third of the compile time). Nothing built here is cyclic garbage, so the collector is
paused meanwhile (process-wide, nesting-safe) and resumed as it was.

On resuming, the objects built meanwhile are moved to the oldest generation at once
(``gc.freeze()`` then ``gc.unfreeze()``: two list splices, no traversal), as if they had
survived two collections: otherwise the first young collection after the load walks all of
them (a million objects of a cached 10,000-rule set: ~0.5 s with the GIL held, on whatever
thread allocates next, e.g. the daemon's event loop). Nothing stays frozen.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.freeze()
                gc.unfreeze()
                gc.enable()
