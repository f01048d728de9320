"""How much a hot reload's read-back slows the pipeline, against its own CPU time.

Builds the cache entry of generated rules (``match_bench``'s 10,000 rules + 200,000 names by
default), then runs a stand-in for the daemon's pipeline in the main thread (match each
message, insert it into an in-memory SQLite table, commit every 200: a loop that releases
the GIL often, as the daemon's does) and measures its rate alone (after ``--warmup``
seconds), while the entry is read back, and after. Modes:

* ``steps`` (the daemon's way): the pipeline's own thread unpickles the entry a step at a
  time (``cache._Entry.steps``), running the pipeline three times as long as each step took
  between two steps (as ``rules_state._read_back`` paces them on the event loop), then
  compiles the regexes one at a time, paced alike (``rules_state._compile_regexes``);
* ``thread``: a second thread reads the entry (``cache._read`` with the polite pause, a
  sleep three times as long as each 64 KiB frame took) and compiles the regexes (the
  daemon's way before the steps);
* ``plain``: the same thread without pauses; ``wakeups``: a thread that only wakes up as
  often (the cost of thread switches alone).

Prints the rates, the read-back's wall and CPU seconds (the steps' own time, or the reading
thread's CPU time) and the young/old garbage collections during the read-back.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import match_bench as mb  # noqa: E402
from monitor.rules import cache  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--mode", choices=("steps", "thread", "plain", "wakeups"), default="steps")
    ap.add_argument("--steady", type=float, default=6.0, help="seconds measured before and after")
    ap.add_argument("--warmup", type=float, default=8.0, help="seconds of pipeline before measuring (word caches)")
    args = ap.parse_args()
    rng = random.Random(1)
    vocab = {lang: mb.make_vocab(rng, lang, 6000) for lang in ("en", "ar", "fa")}
    names = mb.make_names(random.Random(3), 20 * args.rules)
    msgs = mb.make_messages(rng, vocab, 3000, names, 0.95)
    with tempfile.TemporaryDirectory() as tmp:
        rules_dir = Path(tmp) / "rules"
        rules_dir.mkdir()
        mb.make_rules(random.Random(2), vocab, args.rules, rules_dir, names)
        os.environ[cache.CACHE_ENV] = str(Path(tmp) / "cache")
        paths = [rules_dir]
        matcher = cache.load_matcher(paths)  # builds and writes the entry
        key = cache.source_key(paths)
        assert key is not None
        entry = cache.cache_dir() / f"{key[0]}-{key[1]}.pickle"  # type: ignore[operator]
        db = sqlite3.connect(":memory:")
        db.execute("create table t (x)")
        collections: list[int] = []
        gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)

        pos = [0]

        def pipeline(seconds: float, stop: threading.Event | None = None) -> tuple[float, float, int]:
            n, i, t = 0, pos[0], time.perf_counter()
            while time.perf_counter() - t < seconds and not (stop is not None and stop.is_set()):
                msg = msgs[i % len(msgs)]
                i += 1
                matcher.match(msg)
                db.execute("insert into t values (?)", (msg.text,))
                n += 1
                if n % 200 == 0:
                    db.commit()
            elapsed = time.perf_counter() - t
            pos[0] = i
            return n / elapsed, elapsed, n

        pipeline(args.warmup)  # warm the word caches
        before, _, _ = pipeline(args.steady)
        stop = threading.Event()
        out: dict[str, float] = {}

        def reader() -> None:
            t, c = time.perf_counter(), time.thread_time()
            if args.mode == "wakeups":
                for _ in range(600):
                    time.sleep(0.02)
                    sum(range(300))
            else:
                pause = 0.0 if args.mode == "plain" else 0.002
                got = cache._read(entry, key[1], pause=pause)
                assert got is not None
                got.prepare(pause=pause)
            out.update(wall=time.perf_counter() - t, cpu=time.thread_time() - c)
            stop.set()

        first = len(collections)
        if args.mode == "steps":
            t_all = time.perf_counter()
            opened = cache._open(entry, key[1])
            assert opened is not None
            steps = opened.steps()
            n_done, busy, t0 = 0, 0.0, time.perf_counter()
            got = None
            while got is None:  # the pipeline between two steps, three times as long as a step took
                ts, cs = time.perf_counter(), time.thread_time()
                try:
                    next(steps)
                except StopIteration as done:
                    got = done.value
                took = time.perf_counter() - ts
                busy += time.thread_time() - cs
                if got is None:
                    n_done += pipeline(took * 3)[2]
            out.update(steps_wall=time.perf_counter() - t_all, steps_cpu=busy)
            # the regexes, one at a time on the same thread, paced alike (rules_state._compile_regexes)
            tp, cp = time.perf_counter(), time.thread_time()
            prep_cpu = 0.0
            for index in got.fields.values():
                compiled = getattr(index, "compiled", None)
                for i in range(len(compiled or ())):
                    ts, cs = time.perf_counter(), time.thread_time()
                    compiled[i]  # noqa: B018 - compiles it
                    prep_cpu += time.thread_time() - cs
                    n_done += pipeline((time.perf_counter() - ts) * 3)[2]
            got.prepare()
            out.update(prepare=time.perf_counter() - tp, prepare_cpu=prep_cpu)
            window = time.perf_counter() - t0
            during = n_done / window
            out.update(wall=time.perf_counter() - t_all, cpu=busy + prep_cpu)
        else:
            thread = threading.Thread(target=reader)
            thread.start()
            during, window, _ = pipeline(600.0, stop)
            thread.join()
        gcs = collections[first:]
        after, _, _ = pipeline(args.steady)
        print(f"{args.mode}: pipeline {before:,.0f} msgs/s before, {during:,.0f} during the read-back "
              f"({during / before:.0%} of before; {during / ((before + after) / 2):.0%} of the mean of before and after) "
              f"over {window:.1f} s, {after:,.0f} after; read-back {out['wall']:.1f} s wall, {out['cpu']:.2f} CPU s "
              f"({out['cpu'] / out['wall']:.0%} of the window); collections during it: {gcs.count(0)} young, "
              f"{gcs.count(1)} middle, {gcs.count(2)} full; load average {mb.load_average()}")
        if args.mode == "steps":
            print(f"  of which the steps {out['steps_wall']:.1f} s wall, {out['steps_cpu']:.2f} CPU s; "
                  f"the regexes {out['prepare']:.1f} s wall, {out['prepare_cpu']:.2f} CPU s")


if __name__ == "__main__":
    main()
