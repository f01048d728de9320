"""Where the daemon's CPU went in each period of a reload run, from the py-spy stacks that
``pipeline_bench.py --reload-rules N --py-spy DIR`` records (one collapsed-stack file per
period: before, build, read-back, after; ``periods.json`` holds each period's messages).

Prints, per period, the samples (py-spy samples only threads that run, so a sample is
~1/rate CPU seconds) by category and per 1,000 messages stored: a category whose cost per
message grows in the window is where the daemon's lost CPU goes. ``--top N`` adds the
functions with the most samples of their own (leaf frames) in each period.

Usage: python bench/spy_split.py DIR [--top 15]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

# first match wins: (category, substrings of a frame anywhere in the stack)
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("reload: read-back steps", ("_read_back (monitor/daemon/rules_state.py", "steps (monitor/rules/cache.py")),
    ("reload: entry read (thread)", ("open_entry", "_open (monitor/rules/cache.py")),
    ("reload: free old set", ("_free_in_steps", "_emptied")),
    ("reload: regexes", ("_compile_regexes", "finish_lazy")),
    ("reload: key / watch / worker", ("source_key", "_unchanged", "awatch", "_in_process", "ProcessPool",
                                      "multiprocessing/")),
    ("match", ("monitor/rules/matcher.py", "monitor/text.py", "monitor/rules/morphology.py")),
    ("incidents", ("monitor/incidents/",)),
    ("archive write", ("monitor/archive",)),
    ("parse / sources", ("monitor/sources/", "monitor/model.py", "json/", "surrogates")),
    ("alerts / outbox", ("monitor/alerts/",)),
    ("pipeline", ("monitor/daemon/pipeline.py",)),
]

LINE = re.compile(r"^(.*) (\d+)$")


def category(stack: str) -> str:
    for name, keys in CATEGORIES:
        if any(k in stack for k in keys):
            return name
    return "other (event loop, logging, ...)"


def read(path: Path) -> tuple[Counter, Counter, Counter]:
    cats: Counter = Counter()
    leaves: Counter = Counter()
    threads: Counter = Counter()
    for row in path.read_text(errors="replace").splitlines():
        m = LINE.match(row)
        if not m:
            continue
        stack, n = m.group(1), int(m.group(2))
        frames = stack.split(";")
        threads["event-loop thread" if "MainThread" in frames[0] else "other threads"] += n
        cats[category(stack)] += n
        leaves[frames[-1]] += n
    return cats, leaves, threads


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--top", type=int, default=0)
    args = ap.parse_args()
    periods = json.loads((args.dir / "periods.json").read_text()) if (args.dir / "periods.json").exists() else {}
    files = sorted(args.dir.glob("*.txt"))
    data = {f.stem: read(f) for f in files}
    names = [f.stem for f in files]
    allcats = sorted({c for d in data.values() for c in d[0]}, key=lambda c: -sum(d[0][c] for d in data.values()))
    head = f"{'samples per 1,000 msgs':34}" + "".join(f"{n:>14}" for n in names)
    print(head)
    for what in ("msgs", "seconds", "daemon_cpu"):
        print(f"{what:34}" + "".join(f"{periods.get(n, {}).get(what, float('nan')):>14,.1f}" for n in names))
    for c in [*allcats, "event-loop thread", "other threads", "all"]:
        cells = []
        for n in names:
            cats, _, threads = data[n]
            v = threads[c] if c in threads else (sum(cats.values()) if c == "all" else cats[c])
            msgs = periods.get(n, {}).get("msgs")
            cells.append(f"{v * 1000 / msgs:>14.2f}" if msgs else f"{v:>14}")
        print(f"{c[:34]:34}" + "".join(cells))
    if args.top:
        for n in names:
            print(f"\n{n}: top leaf frames")
            for leaf, v in data[n][1].most_common(args.top):
                print(f"  {v:6}  {leaf[:110]}")


if __name__ == "__main__":
    main()
