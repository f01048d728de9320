"""How much a build of the rule set beside the streaming daemon costs its pipeline, by the way
the build runs (an experiment for the hot reload's worker; not part of the daemon).

Starts ``claimwatch run`` on the pipeline bench's feed with the pack + ``--rules`` generated
rules (as ``pipeline_bench.py --reload-rules``), then alternates *quiet* periods (no build)
with periods in which a full build of the same set (load, compile, write a cache entry into a
fresh directory: the reload worker's job, :func:`monitor.rules.build_worker._build_at_low_priority`)
runs in a separate process, in one of these ways:

* ``idle``: the worker as the daemon starts it (``SCHED_IDLE``), no CPU placement;
* ``split``: the same, and the daemon's threads kept on one CPU and the worker on the other
  for the build's length (``sched_setaffinity`` on each of the daemon's threads from here, the
  build started under ``taskset``): whether such a placement in the daemon would pay (not in
  the daemon: not measured on a quiet machine yet);
* ``pin``: the daemon's threads on one CPU, no build (what the placement alone costs).

Each period's rate (messages stored per second, ``max(id)`` of the archive polled every 0.1 s)
and the daemon's CPUs are printed, then each way's rate against the mean of the quiet periods
around it. The order alternates (quiet, way 1, quiet, way 2, ...) so the rate's drift (the
archive grows) falls alike on each way.

Usage: python bench/worker_interference.py [--rules 10000] [--messages 1500000] [--rounds 3]
                                           [--ways idle,split] [--quiet 12]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import pipeline_bench as pb  # noqa: E402

BUILD = """
import os, sys
from monitor.rules.build_worker import _build_at_low_priority
ok, problems, timings, key = _build_at_low_priority([sys.argv[1]], None, ("slack",), sys.argv[2])
print(ok, {k: round(v, 2) for k, v in timings.items() if k != "key_at"}, flush=True)
os._exit(0)
"""


def threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def switches(pid: int) -> dict[int, tuple[int, int]]:
    """(voluntary, involuntary) context switches of each thread of ``pid`` so far."""
    out = {}
    for tid in threads(pid):
        try:
            rows = Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines()
        except OSError:
            continue
        v = {r.split(":")[0]: int(r.split()[1]) for r in rows if "ctxt_switches" in r}
        out[tid] = (v.get("voluntary_ctxt_switches", 0), v.get("nonvoluntary_ctxt_switches", 0))
    return out


def place(pid: int, cpus: set[int]) -> None:
    for tid in threads(pid):
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # the daemon stopped and the files removed
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=10000)
    ap.add_argument("--messages", type=int, default=1_500_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ways", default="idle,split")
    ap.add_argument("--quiet", type=float, default=12.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    args = ap.parse_args()
    ways = args.ways.split(",")
    allcpus = set(os.sched_getaffinity(0))

    tmp = Path(tempfile.mkdtemp(prefix="cw-interf-"))
    feed, db = tmp / "feed.jsonl", tmp / "archive.db"
    rules = pb.make_rule_set(tmp, args.rules)
    cfg = {"database": str(db), "rules": str(rules),
           "sources": {"files": [{"path": str(feed), "follow": True, "poll_interval": 0.005}]},
           "alerts": {"default": ["slack"], "destinations": {"slack": {"type": "slack", "webhook_url": "http://127.0.0.1:9/hook"}}},
           "log_level": "WARNING"}
    import yaml

    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    rnd = random.Random(7)
    with feed.open("w", encoding="utf-8") as fh:
        for i in range(args.messages):
            text = pb.CLAIM.format(n=i) if rnd.random() < 0.01 else rnd.choice(pb.NOISE) + f" #{i}"
            fh.write(pb.line(i, text))
    env = dict(os.environ, CLAIMWATCH_CACHE_DIR=str(tmp / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(tmp / "cfg.yaml"),
                             "--log-level", "WARNING"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        while pb.count(db, pb.STORED) < 1:
            if proc.poll() is not None:
                raise SystemExit("daemon exited early")
            time.sleep(0.1)
        time.sleep(args.warmup)
        print(f"daemon up; load average {pb.load_average()}", flush=True)
        order = []
        for _ in range(args.rounds):
            for w in ways:
                order += ["quiet", w]
        order.append("quiet")
        prev_quiet: float | None = None
        pending: list[tuple[str, float]] = []
        n_build = 0
        for way in order:
            acc = pb.Accounts(proc.pid)
            a0 = acc.snap()
            c0, t0, u0 = pb.count(db, pb.STORED), time.perf_counter(), pb.cpu_seconds(proc.pid)
            worker = None
            switches0 = switches(proc.pid)
            if way in ("split", "pin"):
                place(proc.pid, {min(allcpus)})
            if way in ("idle", "split"):
                n_build += 1
                cmd = [sys.executable, "-c", BUILD, str(rules), str(tmp / f"cache-build{n_build}")]
                if way == "split":
                    cmd = ["taskset", "-c", str(max(allcpus))] + cmd
                worker = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
                while worker.poll() is None:
                    time.sleep(0.1)
                    c = pb.cpu_seconds(worker.pid)  # not the daemon's child: counted here as "its worker"
                    if c == c:
                        acc.workers[worker.pid] = max(acc.workers.get(worker.pid, 0.0), c)
                    acc.snap()
                    if pb.count(db, pb.STORED) >= args.messages:
                        raise SystemExit("feed ran out")
            else:
                end = time.perf_counter() + args.quiet
                while time.perf_counter() < end:
                    time.sleep(0.1)
                    acc.snap()
            if way in ("split", "pin"):
                place(proc.pid, allcpus)
            c1, t1, u1 = pb.count(db, pb.STORED), time.perf_counter(), pb.cpu_seconds(proc.pid)
            a1 = acc.snap()
            rate = (c1 - c0) / (t1 - t0)
            sw = {k: (v - switches0.get(k, (0, 0))[0], w - switches0.get(k, (0, 0))[1]) for k, (v, w) in switches(proc.pid).items()}
            vol, invol = sum(v for v, _ in sw.values()) / (t1 - t0), sum(w for _, w in sw.values()) / (t1 - t0)
            extra = worker.stdout.read().strip() if worker is not None else ""
            print(f"{way:6s} {t1 - t0:5.1f} s {rate:8,.0f} msgs/s ({(c1 - c0) / max(u1 - u0, 1e-9):,.0f} per daemon CPU s); "
                  f"{acc.line(a0, a1)}; daemon context switches/s {vol:,.0f} voluntary, {invol:,.0f} involuntary {extra}",
                  flush=True)
            if way == "quiet":
                for w, r in pending:
                    ref = (prev_quiet + rate) / 2 if prev_quiet is not None else rate
                    results.setdefault(w, []).append((r, r / ref))
                pending = []
                prev_quiet = rate
            else:
                pending.append((way, rate))
        for w, got in results.items():
            print(f"{w}: " + ", ".join(f"{r:,.0f} ({q:.1%} of the quiet periods around it)" for r, q in got))
        print(f"load average {pb.load_average()}")
    finally:
        pb.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
