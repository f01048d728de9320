"""What the first messages cost after a cached load, with the regexes (RE2) compiled on first
use against compiled ahead (``Matcher.prepare()``, as the daemon did at start).

Builds the generated rule set of ``bench/match_bench.py`` (``--rules``, 20 names per rule in
watch lists), writes its compiled form to a temporary on-disk cache, loads it back, then forks
two children from that state (cold word caches, no regex compiled), both matching the same
first ``--messages`` messages in chunks: ``lazy`` compiles each regex when a message first
needs it, ``prepared`` calls ``prepare()`` first (its time printed apart). Prints per chunk the
CPU seconds of both and how many regexes the lazy child had compiled by then.

Usage: python bench/first_use_bench.py [--rules 10000] [--messages 20000] [--quiet 0.95] [--chunks 1000,4000,15000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import match_bench as mb  # noqa: E402

from monitor.rules import cache  # noqa: E402


def compiled_count(matcher) -> tuple[int, int]:  # noqa: ANN001
    return matcher.regexes_compiled()


def child(matcher, messages, chunks: list[int], prepare: bool, wfd: int) -> None:  # noqa: ANN001
    lines = []
    c = time.process_time()
    if prepare:
        matcher.prepare()
        lines.append(f"prepare {time.process_time() - c:.3f}")
    at = 0
    for n in chunks:
        part = messages[at : at + n]
        c = time.process_time()
        hits = sum(len(matcher.match(m)) for m in part)
        done, total = compiled_count(matcher)
        lines.append(f"{at}-{at + n} {time.process_time() - c:.3f} {hits} {done}/{total}")
        at += n
    os.write(wfd, ("\n".join(lines) + "\n").encode())
    os._exit(0)


def run(matcher, messages, chunks: list[int], prepare: bool) -> list[str]:  # noqa: ANN001
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child(matcher, messages, chunks, prepare, w)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode().split("\n")[:-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--quiet", type=float, default=0.95)
    ap.add_argument("--chunks", default="1000,4000,15000")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    chunks = [int(x) for x in args.chunks.split(",")]
    rng = random.Random(args.seed)
    vocab = {lang: mb.make_vocab(rng, lang, 6000) for lang in ("en", "ar", "fa")}
    names = mb.make_names(random.Random(args.seed + 2), 20 * args.rules)
    messages = mb.make_messages(rng, vocab, args.messages, names, args.quiet)
    with tempfile.TemporaryDirectory() as tmp:
        rules_dir = Path(tmp) / "rules"
        rules_dir.mkdir()
        mb.make_rules(random.Random(args.seed + 1), vocab, args.rules, rules_dir, names)
        os.environ[cache.CACHE_ENV] = str(Path(tmp) / "cache")
        cache.load_matcher([rules_dir])  # builds and writes the entry
        t, c = time.perf_counter(), time.process_time()
        matcher = cache.load_matcher([rules_dir])
        print(f"{args.rules:,} rules: cached load {time.perf_counter() - t:.2f} s ({time.process_time() - c:.2f} CPU s); "
              f"regexes compiled: {compiled_count(matcher)[0]}/{compiled_count(matcher)[1]}; "
              f"{len(messages):,} messages ({args.quiet:.0%} everyday text); load average {mb.load_average()}")
        lazy = run(matcher, messages, chunks, prepare=False)
        ahead = run(matcher, messages, chunks, prepare=True)
    print(f"prepare() in the 'prepared' child: {ahead[0].split()[1]} CPU s")
    print(f"{'messages':>14} {'lazy CPU s':>10} {'prepared CPU s':>14} {'regexes compiled (lazy)':>24} {'hits':>7}")
    for a, b in zip(lazy, ahead[1:]):
        span, ca, hits, done = a.split()
        print(f"{span:>14} {float(ca):>10.3f} {float(b.split()[1]):>14.3f} {done:>24} {hits:>7}")
    print(f"load average {mb.load_average()}")


if __name__ == "__main__":
    main()
