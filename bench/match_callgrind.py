"""A fixed matching workload for instruction counts (valgrind ``--tool=callgrind``).

Builds the rule set and the stream as ``bench/match_bench.py`` does (same seeds: the first N
messages of its ``--quiet 0.95`` stream), compiles it, then runs three passes over the same
messages, each driven by one ``functools.reduce`` call so that callgrind can collect them
alone and dump each apart:

1. a first pass, every hit's matches read (as the bench's ``--explain`` run);
2. a warm pass, hits only (matches not read);
3. a warm pass, every hit's matches read.

``--passes`` picks and orders them (default ``123``); ``0`` is a first pass counting hits only
(the bench's rate without ``--explain``), ``d`` a digest pass (below).

Run (one dump file per pass, ``<out>.1`` ... ``.3``; the set is built uninstrumented and
instrumentation is switched on with ``callgrind_control`` once it is ready)::

    bench/match_callgrind.sh /tmp/cg-10k --set 10k --messages 1000

``--root DIR`` runs another checkout's code (an A/B against main: the same workload).
Without valgrind it prints the passes' hits and CPU times and a digest of every hit with its
matches (``repr``), so two checkouts can be compared for identical output.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=("10k", "pack"), default="10k")
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--skip", type=int, default=0, help="start this far into the stream")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--passes", default="123")
    ap.add_argument("--state", default=None,
                    help="pickle the compiled set and the messages here (read back if it exists: the "
                         "rule set as the on-disk cache reads it back, not freshly compiled)")
    ap.add_argument("--profile", action="store_true", help="cProfile the last pass")
    args = ap.parse_args()
    sys.path.insert(0, args.root)
    bench_dir = Path(args.root) / "bench"  # its match_bench puts its own root first
    sys.path.insert(1, str(bench_dir))
    import match_bench as mb  # noqa: E402 - the bench's generators (the code under test from --root)
    from monitor.rules import Matcher, load_rules  # noqa: E402

    import monitor  # noqa: E402

    print("code:", Path(monitor.__file__).parent, file=sys.stderr)
    state = Path(args.state) if args.state else None
    if state is not None and state.exists():  # (matcher, messages) pickled by an earlier run
        import pickle

        with state.open("rb") as f:
            matcher, messages = pickle.load(f)
    else:
        matcher, messages = build(args, mb, Matcher, load_rules)
        if state is not None:
            import pickle

            with state.open("wb") as f:
                pickle.dump((matcher, messages), f, protocol=pickle.HIGHEST_PROTOCOL)
    matcher.prepare()
    match = matcher.match
    ready = os.environ.get("CG_READY")  # run under --instr-atstart=no: wait to be instrumented
    if ready:
        Path(ready).write_text(str(os.getpid()))
        while Path(ready).exists():
            time.sleep(0.2)
    digest = hashlib.sha256()

    def explain(n: int, m) -> int:  # noqa: ANN001
        for h in match(m):
            h.matches  # noqa: B018
            n += 1
        return n

    def explain_digest(n: int, m) -> int:  # noqa: ANN001
        for h in match(m):
            digest.update(repr(h).encode())
            n += 1
        return n

    def hits_only(n: int, m) -> int:  # noqa: ANN001
        return n + len(match(m))

    for p in args.passes:
        fn = {"0": hits_only, "1": explain, "2": hits_only, "3": explain, "d": explain_digest}[p]
        c = time.process_time()
        if args.profile and p == args.passes[-1]:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            n = functools.reduce(fn, messages, 0)
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
        else:
            n = functools.reduce(fn, messages, 0)
        print(f"pass {p}: {n} hits, {time.process_time() - c:.3f} CPU s", file=sys.stderr)
    if "d" in args.passes:
        print("digest:", digest.hexdigest())


def build(args, mb, Matcher, load_rules):  # noqa: ANN001, ANN201, N803
    rules = 10_000 if args.set == "10k" else 1000
    seed = 1
    rng = random.Random(seed)
    vocab = {lang: mb.make_vocab(rng, lang, 6000) for lang in ("en", "ar", "fa")}
    names = mb.make_names(random.Random(seed + 2), 20 * rules)
    messages = mb.make_messages(rng, vocab, args.skip + args.messages, names, 0.95)[args.skip:]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "rules"
        d.mkdir()
        mb.make_rules(random.Random(seed + 1), vocab, rules, d, names)
        paths = [d] if args.set == "10k" else [Path(args.root) / "rules", d]
        matcher = Matcher(load_rules(paths))
    return matcher, messages


if __name__ == "__main__":
    main()
