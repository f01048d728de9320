"""bench/bus_bench.py with the archiver's archive lock, store batches, commits and event loop timed.

Runs the same bench (same arguments) with, in the archiver (this process):

* every outermost hold of ``archive.lock`` timed: the wait to get it and the hold, by caller
  (the three innermost function names), e.g. the delivery worker's ``_prepare`` against the
  writer's ``_write_batch``;
* every ``Pipeline._write_batch`` (size and duration) and every transaction's end (the
  incident flush and ``COMMIT``);
* the event loop's lag (a task sleeping 10 ms, the overshoot).

The wrapping adds a little CPU to each lock acquisition; use bus_bench.py for the figures
of record and this for where the time goes. Printed at exit.

Usage: python bench/bus_lock_trace.py [bus_bench.py arguments]
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bus_bench  # noqa: E402

from monitor.archive import store  # noqa: E402
from monitor.daemon import pipeline  # noqa: E402

HOLDS: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)  # caller -> [(wait, hold)]
BATCHES: list[tuple[int, float]] = []  # (messages, seconds)
COMMITS: list[float] = []
LAG: list[float] = []


class TimedLock:
    """An RLock that records the wait and hold of each outermost acquisition."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._local = threading.local()

    @staticmethod
    def _caller() -> str:
        frame, names = sys._getframe(2), []
        while frame is not None and len(names) < 3:
            if frame.f_code.co_name not in ("__enter__", "acquire"):
                names.append(frame.f_code.co_name)
            frame = frame.f_back
        return "/".join(names)

    def acquire(self, *args, **kw):
        depth = getattr(self._local, "depth", 0)
        t0 = time.perf_counter()
        got = self._lock.acquire(*args, **kw)
        if got:
            t1 = time.perf_counter()
            if depth == 0:
                self._local.start = (t1, t1 - t0, self._caller())
            self._local.depth = depth + 1
        return got

    def release(self) -> None:
        self._local.depth -= 1
        if self._local.depth == 0:
            t1, wait, caller = self._local.start
            HOLDS[caller].append((wait, time.perf_counter() - t1))
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()


def _install() -> None:
    init = store.Archive.__init__

    def archive_init(self, *args, **kw):
        init(self, *args, **kw)
        self.lock = TimedLock()

    store.Archive.__init__ = archive_init
    write_batch = pipeline.Pipeline._write_batch

    def timed_write_batch(self, batch):
        t0 = time.perf_counter()
        try:
            return write_batch(self, batch)
        finally:
            BATCHES.append((len(batch), time.perf_counter() - t0))

    pipeline.Pipeline._write_batch = timed_write_batch
    tx_exit = store._Tx.__exit__

    def timed_exit(self, *exc):
        t0 = time.perf_counter()
        try:
            return tx_exit(self, *exc)
        finally:
            if self.outer:
                COMMITS.append(time.perf_counter() - t0)

    store._Tx.__exit__ = timed_exit


def _q(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else 0.0


def _ms(values: list[float]) -> str:
    return f"{_q(values, .5) * 1e3:.1f} / {_q(values, .99) * 1e3:.1f} / {max(values, default=0) * 1e3:.1f} ms"


def report() -> None:
    print("archive lock, outermost holds by caller (p50 / p99 / max):")
    for caller, rows in sorted(HOLDS.items(), key=lambda kv: -sum(h for _w, h in kv[1])):
        print(f"  {caller:55s} n={len(rows):6d}  wait {_ms([w for w, _h in rows])}  hold {_ms([h for _w, h in rows])}")
    if BATCHES:
        print(f"store batches: n={len(BATCHES)}, messages p50 {_q([n for n, _s in BATCHES], .5):.0f} "
              f"max {max(n for n, _s in BATCHES)}; duration {_ms([s for _n, s in BATCHES])}")
    if COMMITS:
        print(f"transaction ends (incident flush + COMMIT): n={len(COMMITS)}, {_ms(COMMITS)}")
    if LAG:
        print(f"event loop lag (10 ms sleeps, includes the bench's setup): n={len(LAG)}, {_ms(LAG)}")


async def _lagger() -> None:
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(0.01)
        LAG.append(time.perf_counter() - t0 - 0.01)


async def main() -> None:
    lagger = asyncio.create_task(_lagger())
    try:
        await bus_bench.main()
    finally:
        lagger.cancel()


if __name__ == "__main__":
    _install()
    atexit.register(report)
    asyncio.run(main())
