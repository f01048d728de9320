"""Whole-daemon benchmark: followed JSONL -> shipped rules -> archive -> outbox -> loopback Slack.

Runs ``claimwatch run`` as a subprocess (as in production) and a loopback Slack webhook
server in this process, then prints:

* sustained throughput: N messages already in the followed file, time until all are stored;
* message-to-alert latency: hit messages appended one at a time while the daemon is idle,
  time from the append to the Slack server receiving the alert (p50 / p99);
* the daemon's peak RSS (from /proc while it runs).

With ``--reload-rules N`` (e.g. 10000) the daemon runs the shipped pack plus N generated
rules with their watch lists (bench/match_bench.py's generator), and while it streams a rule
file is edited and SIGHUP sent: the bench waits ``--warmup`` seconds after the first message
is stored (the daemon's word caches fill and its rate settles), prints the steady rate over
``--steady`` seconds before the reload, the rate over the reload window (SIGHUP until the
first message matched by the new set) and their ratio, then the rate over ``--steady``
seconds after the window and the window's share of the mean of the rates before and after
(the archive grows and the machine is shared: the rate before alone can flatter or wrong the
window), and what the window cost: messages short of the rate before over as long, and short of
the daemon's rate per CPU second before for the CPU it had in the window (in daemon CPU seconds).
Every period polls the archive (``max(id)``, not ``count(*)``) and /proc alike, every 0.1 s.
Each rate is also given per CPU second of the daemon process (all its threads, from
/proc; the reload's worker process is not counted there: it runs at the lowest priority). The new set adds a rule whose term 1 % of the messages
carry, so the first hit of that rule marks the swap; no message is matched against a
half-built set (tests/test_rules_cache.py). ``--daemon-log FILE`` keeps the daemon's log
(INFO) and prints its ``rules reloaded`` line with the seconds of each reload phase. Each
period also gets the CPUs used by the daemon, by its worker processes (the reload's build),
by this bench and by everything else on the machine, and the machine's idle and steal time
(/proc); ``--gc-stats`` records the daemon's garbage collections (``gc.callbacks``) and
prints their count and pauses in each period.

``--startup RUNS`` measures restarts instead: the rule set's compiled form is written to the
cache by a first load, then the daemon is started RUNS times on a feed of ``--messages``:
seconds and daemon CPU seconds until the first message is stored and until all are, and
until the lazy work (the regexes compiled after start-up) is done. ``--code DIR`` runs the
daemon from another checkout (e.g. main's) for an A/B.

Usage: python bench/pipeline_bench.py [--messages 100000] [--latency-samples 200] [--reload-rules 10000]
                                      [--warmup 10] [--steady 10] [--daemon-log FILE] [--gc-stats]
                                      [--startup RUNS] [--code DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.model import Message  # noqa: E402

T0 = datetime(2024, 1, 3, tzinfo=timezone.utc)
NOISE = [
    "Weather across the region will be mild with light rain expected tomorrow",
    "وزارة الصحة تعلن عن حملة تطعيم جديدة في المدارس خلال الأسبوع المقبل",
    "بازار تهران امروز شاهد افزایش قیمت طلا و ارز بود و معامله‌گران محتاط هستند",
    "The football match ended in a draw after extra time in the capital",
    "أسعار النفط ترتفع مع توقعات بزيادة الطلب العالمي هذا العام",
    "نشست کمیسیون اقتصادی مجلس درباره بودجه سال آینده برگزار شد",
]
# The token sits mid-text: claims that differ only in a trailing tag are reposts of one text,
# which alert once (docs/alerts.md, "Incidents"); these must each alert.
CLAIM = "أعلن تنظيم الدولة الإسلامية مسؤوليته عن الهجوم tok{n}x في كرمان"


def line(n: int, text: str, channel_id: str = "1700") -> str:
    m = Message("telegram", channel_id, str(n), T0 + timedelta(seconds=n), text, channel=f"chan_{channel_id}", raw={"id": n})
    return json.dumps(m.to_dict(), ensure_ascii=False) + "\n"


def rss_kb(pid: int) -> int:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1])
    except OSError:
        pass
    return 0


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def make_rule_set(tmp: Path, n_rules: int) -> Path:
    """The shipped pack plus ``n_rules`` generated rules with watch lists, in ``tmp/rules``."""
    import shutil

    sys.path.insert(0, str(ROOT / "bench"))
    import match_bench as mb

    target = tmp / "rules"
    shutil.copytree(ROOT / "rules", target)
    gen = target / "generated"
    gen.mkdir()
    rng = random.Random(1)
    vocab = {lang: mb.make_vocab(rng, lang, 6000) for lang in ("en", "ar", "fa")}
    mb.make_rules(random.Random(2), vocab, n_rules, gen, mb.make_names(random.Random(3), 20 * n_rules))
    return target


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the reload's worker and multiprocessing's helpers)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = [int(k) for k in (task / "children").read_text().split()]
                out.extend(kids)
                todo.extend(kids)
        except OSError:
            pass
    return out


def machine_cpu() -> tuple[float, float, float]:
    """(busy, idle, steal) seconds of the whole machine so far (/proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tck = os.sysconf("SC_CLK_TCK")
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / tck, (v[3] + v[4]) / tck, v[7] / tck


class Accounts:
    """CPU seconds by whom, sampled: the daemon, its worker processes (kept after they exit:
    the last figure seen), this bench, the whole machine (busy, idle, steal)."""

    def __init__(self, daemon: int) -> None:
        self.daemon = daemon
        self.workers: dict[int, float] = {}

    def snap(self) -> dict[str, float]:
        import resource

        for p in descendants(self.daemon):
            c = cpu_seconds(p)
            if c == c:  # not NaN
                self.workers[p] = max(self.workers.get(p, 0.0), c)
        me = resource.getrusage(resource.RUSAGE_SELF)
        busy, idle, steal = machine_cpu()
        return {"t": time.perf_counter(), "daemon": cpu_seconds(self.daemon), "loop": cpu_seconds(self.daemon, self.daemon),
                "worker": sum(self.workers.values()), "faults": minor_faults(self.daemon),
                "bench": me.ru_utime + me.ru_stime, "busy": busy, "idle": idle, "steal": steal}

    @staticmethod
    def line(a: dict[str, float], b: dict[str, float]) -> str:
        wall = b["t"] - a["t"]
        d = {k: (b[k] - a[k]) / wall for k in a if k != "t"}
        return (f"CPUs: daemon {d['daemon']:.2f} (event-loop thread {d['loop']:.2f}; {d['faults']:,.0f} minor page "
                f"faults/s), its worker {d['worker']:.2f}, this bench {d['bench']:.2f}, "
                f"others {max(d['busy'] - d['daemon'] - d['worker'] - d['bench'], 0):.2f}; machine idle {d['idle']:.2f}, "
                f"steal {d['steal']:.2f}")


def stop(proc: subprocess.Popen) -> None:
    """Stop the daemon: SIGTERM, then SIGKILL if it has not ended within 20 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def minor_faults(pid: int) -> float:
    """Minor page faults of process ``pid`` so far (first touches of new memory)."""
    try:
        return float(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, all its threads (of its thread
    ``tid`` alone when given: the daemon's event-loop thread is ``tid == pid``)."""
    try:
        where = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
        fields = Path(where).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class Spy:
    """py-spy (if installed: ``pip install py-spy``) recording the daemon's Python stacks, one
    collapsed-stack file per period (``--py-spy DIR``): where its CPU goes before, in each
    part of the window and after. Non-blocking sampling (the daemon is not paused)."""

    def __init__(self, pid: int, out: Path | None, rate: int = 100) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: subprocess.Popen | None = None
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.exe = exe if out is not None and Path(exe).exists() else None
        if out is not None and self.exe is None:
            print("py-spy not found: no stacks recorded")

    def start(self, name: str) -> None:
        self.stop()
        if self.exe is None:
            return
        assert self.out is not None
        self.out.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.exe, "record", "--pid", str(self.pid), "--nonblocking", "--rate", str(self.rate), "--threads",
             "--format", "raw", "--output", str(self.out / f"{name}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


# messages stored so far: the largest id (an INTEGER PRIMARY KEY: a B-tree's last entry) equals the
# row count here (every message new, none deleted) and costs microseconds, where count(*) reads
# the whole table (tens of ms at 500,000 rows, beside the daemon's writer, more the longer the run)
STORED = "select coalesce(max(id), 0) from messages"
POLL = 0.1  # seconds between two polls of the archive and /proc, the same in every period


async def measure_reload(proc: subprocess.Popen, db: Path, rules_path: Path, n: int,
                         warmup: float = 10.0, steady_s: float = 10.0, spy_dir: Path | None = None,
                         control: float = 0.0) -> dict[str, float]:
    """Steady rate, then SIGHUP after an edit; the rate until the new set's first hit.
    Returns the wall-clock (time.time()) bounds of the periods: before, hup, swap, after."""
    acc = Accounts(proc.pid)
    spy = Spy(proc.pid, spy_dir)
    marks: dict[str, float] = {}
    t_start = time.perf_counter()
    while count(db, STORED) < 1:
        if proc.poll() is not None:
            raise SystemExit("daemon exited early")
        await asyncio.sleep(0.1)
    print(f"daemon up (rules loaded, compiled and cached) after {time.perf_counter() - t_start:.1f} s; load average {load_average()}")
    await asyncio.sleep(warmup)
    samples: list[tuple[float, int, float]] = []

    async def sample(until: float) -> None:
        while time.perf_counter() < until:
            samples.append((time.perf_counter(), count(db, STORED), cpu_seconds(proc.pid)))
            acc.snap()  # as often as in the window: the bench's own load alike in every period
            await asyncio.sleep(POLL)

    marks["before"] = time.time()
    spy.start("1-before")
    a0 = acc.snap()
    await sample(time.perf_counter() + steady_s)
    a1 = acc.snap()
    (t0, c0, u0), (t1, c1, u1) = samples[0], samples[-1]
    steady = (c1 - c0) / (t1 - t0)
    print(f"steady (after {warmup:.0f} s of warm-up): {steady:,.0f} msgs/s over {t1 - t0:.1f} s "
          f"({(c1 - c0) / max(u1 - u0, 1e-9):,.0f} msgs per daemon CPU second, {(u1 - u0) / (t1 - t0):.2f} CPUs); "
          f"load average {load_average()}")
    print(f"  before: {acc.line(a0, a1)}")
    if not control:
        edited = rules_path / "generated" / "bench-0000.yml"
        edited.write_text(edited.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        (rules_path / "generated" / "zz-marker.yml").write_text(
            "id: zz-marker\nlevel: info\nmatch:\n  m: [zzmarker]\n", encoding="utf-8")
    t_hup = time.perf_counter()
    c_hup = count(db, STORED)
    u_hup = cpu_seconds(proc.pid)
    a_hup = acc.snap()
    marks["hup"] = time.time()
    spy.start("2-build")
    if not control:
        proc.send_signal(signal.SIGHUP)
    timeline: list[tuple[float, int]] = [(t_hup, c_hup)]
    # the window in two parts: the worker process builds (load, compile, write the entry),
    # then the daemon reads the entry back until the swap (and the first hit is stored)
    built: tuple[float, int, float, float, dict[str, float]] | None = None
    busy_kids: set[int] = set()

    def window_open() -> bool:
        if control:  # no reload: a window as long as a reload's, for the drift of the rate alone
            return time.perf_counter() - t_hup < control
        return count(db, "select count(*) from hits where rule_id = 'zz-marker'") == 0

    while window_open():
        if proc.poll() is not None:
            raise SystemExit("daemon exited early")
        got = count(db, STORED)
        if got >= n:
            raise SystemExit("the feed ran out before the reload finished: use more --messages")
        timeline.append((time.perf_counter(), got))
        snap = acc.snap()  # the worker's CPU, while it lives
        if built is None:
            kids = set(descendants(proc.pid))
            busy_kids |= {p for p, c in acc.workers.items() if c > 0.5}
            if (busy_kids and not busy_kids & kids) or (control and time.perf_counter() - t_hup > control * 2 / 3):
                # the build worker has exited (control: the last third, as a read-back)
                spy.start("3-readback")
                built = (time.perf_counter(), got, cpu_seconds(proc.pid), cpu_seconds(proc.pid, proc.pid), snap)
        await asyncio.sleep(POLL)
    spy.stop()
    a_swap = acc.snap()
    periods: dict[str, dict[str, float]] = {
        "1-before": {"msgs": samples[-1][1] - samples[0][1], "seconds": samples[-1][0] - samples[0][0],
                     "daemon_cpu": samples[-1][2] - samples[0][2]}}
    marks["swap"] = time.time()
    t_swap = time.perf_counter()
    c_swap = count(db, STORED)
    u_swap = cpu_seconds(proc.pid)
    during = (c_swap - c_hup) / (t_swap - t_hup)
    print(("control (no reload): a window of " if control else "reload: SIGHUP -> first message matched by the new set ")
          + f"{t_swap - t_hup:.1f} s; "
          f"{during:,.0f} msgs/s during the reload = {during / steady:.0%} of the steady rate "
          f"({(c_swap - c_hup) / max(u_swap - u_hup, 1e-9):,.0f} msgs per daemon CPU second, "
          f"{(u_swap - u_hup) / (t_swap - t_hup):.2f} CPUs); load average {load_average()}")
    print(f"  window: {acc.line(a_hup, a_swap)}; the worker {a_swap['worker'] - a_hup['worker']:.1f} CPU s in all")
    # what the window cost in messages: short of the rate before over as long, and short of the
    # rate per daemon CPU second before for the CPU the daemon had in the window (the second is
    # the daemon's own loss, whatever others took from it meanwhile)
    per_cpu = (c1 - c0) / max(u1 - u0, 1e-9)
    short = steady * (t_swap - t_hup) - (c_swap - c_hup)
    short_cpu = per_cpu * (u_swap - u_hup) - (c_swap - c_hup)
    print(f"  the window stored {c_swap - c_hup:,} messages; short of the rate before: {short:,.0f} "
          f"({short / steady:.1f} s of it); short of what the daemon's CPU in the window stores at its rate per CPU "
          f"second before: {short_cpu:,.0f} ({short_cpu / per_cpu:.2f} daemon CPU s; per daemon CPU s "
          f"{(c_swap - c_hup) / max(u_swap - u_hup, 1e-9) / per_cpu:.0%} of before; negative: more)")
    if built is not None:
        t_b, c_b, u_b, l_b, a_b = built
        for name, (ta, ca, ua, la), (tb, cb, ub, lb), aa, ab in (
            ("build (SIGHUP -> worker exit)", (t_hup, c_hup, u_hup, a_hup["loop"]), (t_b, c_b, u_b, l_b), a_hup, a_b),
            ("read-back (worker exit -> first hit)", (t_b, c_b, u_b, l_b), (t_swap, c_swap, u_swap, a_swap["loop"]),
             a_b, a_swap),
        ):
            periods["2-build" if name.startswith("build") else "3-readback"] = {
                "msgs": cb - ca, "seconds": tb - ta, "daemon_cpu": ub - ua}
            print(f"  {name}: {tb - ta:.1f} s, {(cb - ca) / max(tb - ta, 1e-9):,.0f} msgs/s, "
                  f"{(cb - ca) / max(ub - ua, 1e-9):,.0f} msgs per daemon CPU s ({(cb - ca) / max(lb - la, 1e-9):,.0f} per "
                  f"event-loop thread CPU s); {acc.line(aa, ab)}")
    # msgs/s per second since SIGHUP: where a dip is (build in the worker process, read-back, swap)
    buckets: dict[int, list[tuple[float, int]]] = {}
    for t, c in timeline:
        buckets.setdefault(int(t - t_hup), []).append((t, c))
    rates = []
    prev = timeline[0]
    for sec in sorted(buckets):
        last = buckets[sec][-1]
        if last[0] > prev[0]:
            rates.append(f"{(last[1] - prev[1]) / (last[0] - prev[0]):,.0f}")
        prev = last
    print(f"per second since SIGHUP (swap at {t_swap - t_hup:.1f} s; messages are stored in batches, so single "
          f"seconds are coarse): {' '.join(rates)}")
    # the rate after the window too: the archive grows and the machine is shared, so the
    # rate before the reload alone can flatter or wrong the window
    samples.clear()
    a2 = acc.snap()
    marks["after"] = time.time()
    spy.start("4-after")
    await sample(time.perf_counter() + steady_s)
    spy.stop()
    a3 = acc.snap()
    marks["end"] = time.time()
    (t0, c0, u0), (t1, c1, u1) = samples[0], samples[-1]
    after = (c1 - c0) / (t1 - t0)
    periods["4-after"] = {"msgs": c1 - c0, "seconds": t1 - t0, "daemon_cpu": u1 - u0}
    rows, top = count(db, "select count(*) from messages"), count(db, STORED)
    if rows < top:
        print(f"note: {rows:,} rows but ids up to {top:,}: the rates above count ids, not rows")
    if spy_dir is not None:
        spy_dir.mkdir(parents=True, exist_ok=True)
        (spy_dir / "periods.json").write_text(json.dumps(periods, indent=1))
    if c1 >= n:
        print("after the reload: the feed ran out (use more --messages)")
    else:
        mean = (steady + after) / 2
        print(f"after the reload: {after:,.0f} msgs/s over {t1 - t0:.1f} s "
              f"({(c1 - c0) / max(u1 - u0, 1e-9):,.0f} msgs per daemon CPU second); the window = {during / mean:.0%} "
              f"of the mean of the rates before and after ({mean:,.0f} msgs/s); load average {load_average()}")
    print(f"  after: {acc.line(a2, a3)}")
    return marks


# the daemon run with a record of its garbage collections (start, pause, generation, collected),
# written as JSON to argv[1] when it exits
GC_PROBE = """
import atexit, gc, json, sys, time, runpy
out, rec, t = sys.argv[1], [], [0.0, 0.0]
def cb(phase, info):
    if phase == "start":
        t[0], t[1] = time.time(), time.perf_counter()
    else:
        rec.append((t[0], time.perf_counter() - t[1], info["generation"], info["collected"]))
gc.callbacks.append(cb)
atexit.register(lambda: open(out, "w").write(json.dumps(rec)))
sys.argv = ["monitor", *sys.argv[4:]]  # after: the file, "-m", "monitor"
runpy.run_module("monitor", run_name="__main__", alter_sys=True)
"""


def print_gc(path: Path, marks: dict[str, float]) -> None:
    """The daemon's collections in each period (before, window, after): count by generation,
    their pauses in all and the longest."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        print("gc: no record (the daemon did not exit cleanly)")
        return
    periods = [("before", marks["before"], marks["hup"]), ("window", marks["hup"], marks["swap"]),
               ("after", marks["after"], marks.get("end", marks["after"]))]
    for name, a, b in periods:
        got = [r for r in rec if a <= r[0] < b]
        by_gen = [sum(1 for r in got if r[2] == g) for g in range(3)]
        pause = sum(r[1] for r in got)
        longest = max((r[1] for r in got), default=0.0)
        full = sum(r[1] for r in got if r[2] == 2)
        print(f"gc {name} ({b - a:.1f} s): collections by generation {by_gen}, pauses {pause:.3f} s "
              f"({pause / max(b - a, 1e-9):.1%} of the period; full ones {full:.3f} s), longest {longest * 1000:.0f} ms")


async def measure_startup(args: argparse.Namespace, tmp: Path, cfg: dict, n: int) -> None:
    """Restarts with unchanged rules (the cache holds their compiled set, written by a first
    load from the same checkout): seconds and daemon CPU seconds from the start of the process
    until the first message is stored, and until all ``n`` are."""
    import yaml

    env = dict(os.environ, CLAIMWATCH_CACHE_DIR=str(tmp / "cache"))
    code = args.code.resolve()
    populate = ("import sys; from monitor.config import load_config; from monitor.daemon.rules_state import RulesState; "
                "c = load_config(sys.argv[1]); RulesState(c, c.rules).load()")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", populate, str(tmp / "cfg.yaml")], cwd=code, env=env, check=True)
    print(f"cache written in {time.perf_counter() - t:.1f} s (code: {code}); load average {load_average()}")
    for run in range(args.startup):
        db = tmp / f"archive{run}.db"
        run_cfg = dict(cfg, database=str(db), log_level="INFO")
        (tmp / "cfg-run.yaml").write_text(yaml.safe_dump(run_cfg), encoding="utf-8")
        log_path = tmp / f"daemon{run}.log"
        with log_path.open("w") as log_fh:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(tmp / "cfg-run.yaml"),
                                     "--log-level", "INFO"], cwd=code, stderr=log_fh, env=env)
            try:
                while count(db, "select count(*) from messages") < 1:
                    if proc.poll() is not None:
                        raise SystemExit("daemon exited early")
                    await asyncio.sleep(0.005)
                t1, u1 = time.perf_counter() - t0, cpu_seconds(proc.pid)
                while count(db, "select count(*) from messages") < n:
                    if proc.poll() is not None:
                        raise SystemExit("daemon exited early")
                    await asyncio.sleep(0.05)
                t2, u2 = time.perf_counter() - t0, cpu_seconds(proc.pid)
                t3 = float("nan")
                while time.perf_counter() - t0 < t2 + 30:  # the lazy work's end (logged)
                    if "rules ready" in log_path.read_text(errors="replace"):
                        t3 = time.perf_counter() - t0
                        break
                    await asyncio.sleep(0.05)
            finally:
                stop(proc)
        ready = [row for row in log_path.read_text(errors="replace").splitlines() if "rules loaded" in row or "rules ready" in row]
        print(f"restart {run + 1}: first message stored after {t1:.2f} s ({u1:.2f} daemon CPU s, the interpreter's "
              f"start and imports included); all {n:,} after {t2:.2f} s ({u2:.2f} CPU s: {n / (t2 - t1):,.0f} msgs/s "
              f"after the first); lazy work done after {t3:.2f} s; load average {load_average()}")
        for row in ready:
            print(f"  daemon: {row.strip()}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--latency-samples", type=int, default=200)
    ap.add_argument("--hit-ratio", type=float, default=0.01)
    ap.add_argument("--reload-rules", type=int, default=0, help="measure a hot reload of the pack + N generated rules")
    ap.add_argument("--warmup", type=float, default=10.0,
                    help="with --reload-rules: seconds of streaming before the steady rate is measured")
    ap.add_argument("--steady", type=float, default=10.0,
                    help="with --reload-rules: seconds over which the rates before and after the reload are measured")
    ap.add_argument("--profile", type=Path, help="cProfile the daemon into this file (slower; for finding costs)")
    ap.add_argument("--startup", type=int, default=0, metavar="RUNS",
                    help="measure RUNS restarts from a warm cache instead (with --reload-rules N: the pack + N "
                         "generated rules): time and daemon CPU until the first message is stored and until all are")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="run the daemon from this checkout (e.g. main's, for an A/B)")
    ap.add_argument("--gc-stats", action="store_true",
                    help="with --reload-rules: record the daemon's garbage collections (gc.callbacks) and print "
                         "their count and pauses in each period")
    ap.add_argument("--control", type=float, default=0.0, metavar="SECONDS",
                    help="with --reload-rules: no reload; the 'window' is SECONDS long (its first two thirds as "
                         "'build', the last as 'read-back'): the drift of the rate over a run without a reload")
    ap.add_argument("--py-spy", type=Path, metavar="DIR",
                    help="with --reload-rules: record the daemon's stacks with py-spy (if installed) into DIR, one "
                         "collapsed-stack file per period (before, build, read-back, after); see bench/spy_split.py")
    ap.add_argument("--daemon-log", type=Path,
                    help="the daemon's log (INFO) into this file; with --reload-rules the reload's phases are printed")
    args = ap.parse_args()

    received: dict[str, float] = {}
    token_re = re.compile(r"tok(\d+)x")

    async def hook(request: web.Request) -> web.Response:
        body = await request.text()
        now = time.perf_counter()
        for tok in token_re.findall(body):
            received.setdefault(tok, now)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001

    tmp = Path(tempfile.mkdtemp(prefix="cw-pipeline-"))
    feed = tmp / "feed.jsonl"
    db = tmp / "archive.db"
    rules_path = ROOT / "rules"
    if args.reload_rules:
        rules_path = make_rule_set(tmp, args.reload_rules)
    cfg = {
        "database": str(db),
        "rules": str(rules_path),
        "sources": {"files": [{"path": str(feed), "follow": True, "poll_interval": 0.005}]},
        "alerts": {
            "default": ["slack"],
            "destinations": {"slack": {"type": "slack", "webhook_url": f"http://127.0.0.1:{port}/hook"}},
        },
        "log_level": "WARNING",
    }
    import yaml

    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")

    rnd = random.Random(7)
    n = args.messages
    with feed.open("w", encoding="utf-8") as fh:
        for i in range(n):
            text = CLAIM.format(n=i) if rnd.random() < args.hit_ratio else rnd.choice(NOISE) + f" #{i}"
            if args.reload_rules and i % 100 == 0:  # 1 %: the hit load after the swap stays as before
                text += " zzmarker"
            fh.write(line(i, text))
    size_mb = feed.stat().st_size / 1e6

    if args.startup:
        try:
            await measure_startup(args, tmp, cfg, n)
        finally:
            await runner.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
        return
    profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
    gc_file = tmp / "gc.json"
    if args.gc_stats and not profile:
        profile = ["-c", GC_PROBE, str(gc_file)]
    env = dict(os.environ, CLAIMWATCH_CACHE_DIR=str(tmp / "cache"))
    log_fh = args.daemon_log.open("w") if args.daemon_log else None
    proc = subprocess.Popen(
        [sys.executable, *profile, "-m", "monitor", "run", "--config", str(tmp / "cfg.yaml"),
         "--log-level", "INFO" if log_fh else "WARNING"],
        cwd=args.code.resolve(),
        stderr=log_fh or subprocess.DEVNULL,
        env=env,
    )
    peak = 0
    try:
        if args.reload_rules:
            marks = await measure_reload(proc, db, rules_path, n, args.warmup, args.steady, args.py_spy, args.control)
            if args.gc_stats:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
                print_gc(gc_file, marks)
            if log_fh:
                await asyncio.sleep(0.5)
                for row in args.daemon_log.read_text(errors="replace").splitlines():
                    if "rules reloaded" in row:
                        print(f"daemon: {row.strip()}")
            return
        t_start = time.perf_counter()
        while count(db, "select count(*) from messages") < n:
            peak = max(peak, rss_kb(proc.pid))
            if proc.poll() is not None:
                raise SystemExit("daemon exited early")
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - t_start
        print(f"throughput: {n} messages ({size_mb:.1f} MB JSONL) in {elapsed:.2f} s = {n / elapsed:,.0f} msgs/s sustained")
        # Let the backlog of alerts drain before measuring latency.
        # (Throttle follow-ups stay pending until their window ends: only wait for due rows.)
        while True:
            now = datetime.now(timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"
            due = f"select count(*) from outbox where status in ('pending','sending') and next_attempt_at <= '{now}'"
            if count(db, due) == 0:
                break
            await asyncio.sleep(0.1)
        latencies = []
        with feed.open("a", encoding="utf-8") as fh:
            for k in range(args.latency_samples):
                i = n + k
                t0 = time.perf_counter()
                # Each sample from its own channel: shipped rules throttle per rule+channel.
                fh.write(line(i, CLAIM.format(n=i), channel_id=str(900000 + k)))
                fh.flush()
                tok = str(i)
                deadline = t0 + 5
                while tok not in received and time.perf_counter() < deadline:
                    await asyncio.sleep(0.0005)
                if tok in received:
                    latencies.append((received[tok] - t0) * 1000)
                peak = max(peak, rss_kb(proc.pid))
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
        print(
            f"latency (append -> Slack received), {len(latencies)}/{args.latency_samples} alerts: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
        print(f"daemon peak RSS: {peak / 1024:.0f} MB")
    finally:
        stop(proc)
        await runner.cleanup()
        # feed, archive and rules: ~130 MB a run at 100,000 messages, ~0.5 GB with --reload-rules
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
