"""Incident assignment and listing benchmark (docs/performance.md, "Incidents").

Builds an archive of --messages messages with bulk SQL (not through the import path: that is
bench/import_bench.py's job), then assigns --hits of them to incidents incrementally, in date
order, through the archive's tracker in archive transactions of 500 (the daemon writer's batch
size): each hit is queued (``IncidentTracker.queue``, what ``Archive._store_hits`` does through
``on_hits``) and the transaction's hits are assigned as one batch, and their rows written,
when it commits. By default (``--preparer on``) a forked process prepares each transaction's
texts ahead of the writer (words, places, signatures: ``prepare_texts``; the writer is given
them, ``IncidentTracker.give``), as the import's preparer process and the bus's preparer
workers do; ``--preparer off``: the writer prepares them (the live daemon without the bus,
small imports). Then it times ``incidents`` listings. Also reports the
purity of the incidents and families found (share of their messages from the event that has
most of them), the tracker's state size after the run (incidents, families and texts held in
memory, texts not held counted; ``--in-memory N`` sets its bound) and the time to load it
from the tables. ``--base FILE`` keeps the built messages for later runs.

Texts: attacks in 300 cities of the gazetteer over a year (reports, statements naming blamed
countries, claims), a third of the hits reposts (exact, trimmed) in other channels, some
forwards, some without a place.

    python bench/incident_bench.py                       # 1,000,000 messages, 50,000 hits
    python bench/incident_bench.py --messages 100000 --hits 10000
"""

from __future__ import annotations

import argparse
import json
import marshal
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.archive import Archive  # noqa: E402
from monitor.incidents.assign import IncidentTracker, Incoming, Settings, prepare_texts  # noqa: E402
from monitor.incidents.gazetteer import load  # noqa: E402
from monitor.incidents.query import list_incidents  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
ACTORS = ["islamic-state", "iran", "israel", "united-states", "houthis", "hamas", "taliban", "ttp"]


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def start_preparer(texts: list[str], gazetteer: Any) -> tuple[Any, Any]:
    """A forked process that prepares the texts of each transaction of 500 hits ahead of the
    writer (:func:`~monitor.incidents.assign.prepare_texts`, each text once a transaction) and
    sends them marshalled through a bounded queue: what the process that produces hits (the
    import's preparer) does for the writer."""
    ctx = multiprocessing.get_context("fork")
    chunks = ctx.Queue(maxsize=8)

    def produce() -> None:
        for start in range(0, len(texts), 500):
            part = list(dict.fromkeys(texts[start:start + 500]))
            chunks.put(marshal.dumps(list(zip(part, prepare_texts(part, gazetteer)))))
        chunks.close()
        chunks.join_thread()

    proc = ctx.Process(target=produce, name="incident-bench-prepare", daemon=True)
    proc.start()
    return chunks, proc


def schedstat() -> tuple[float, float] | None:
    """This thread's seconds on a CPU and waiting for one (Linux's schedstat), or None."""
    try:
        with open("/proc/thread-self/schedstat") as fh:
            on_cpu, waiting = fh.read().split()[:2]
    except (OSError, ValueError):
        return None
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--hits", type=int, default=50_000)
    ap.add_argument("--db", default=None)
    ap.add_argument("--base", default=None,
                    help="a messages-only archive built by an earlier run with the same --messages/--hits: copied"
                         " instead of building (made there when missing)")
    ap.add_argument("--in-memory", type=int, default=None,
                    help="incidents the tracker holds before evicting those past the window (default: the tracker's)")
    ap.add_argument("--profile", default=None, help="write a cProfile of the assignment to this file")
    ap.add_argument("--preparer", choices=("on", "off"), default="on",
                    help="on: the texts' words, places and signatures are prepared in a second process ahead of"
                         " the writer (prepare_texts / IncidentTracker.give, as the import's preparer does);"
                         " off: the writer computes them (before the ninth session)")
    args = ap.parse_args()
    rnd = random.Random(7)
    gaz = load()
    cities = sorted((p for p in gaz.places.values() if p.kind == "city" and p.population > 200_000),
                    key=lambda p: -p.population)[:300]
    path = args.db or str(Path(tempfile.mkdtemp()) / "incidents.db")
    t = time.perf_counter()
    reuse = bool(args.base) and Path(args.base).exists()
    if reuse:
        shutil.copyfile(args.base, path)
    archive = Archive.open(path)
    conn = archive.conn
    span = 365 * 86400
    # the hits: events (city, time), each with a report, statements, a claim and reposts
    hit_rows = []
    event = 0
    while len(hit_rows) < args.hits:
        event += 1
        city = rnd.choice(cities)
        t0 = START + timedelta(seconds=rnd.randrange(span))
        claim = (f"The Islamic State claimed responsibility for the attack in {city.name} which killed "
                 f"{rnd.randrange(5, 90)} people, its statement said, naming attacker number {rnd.randrange(10**6)}")
        texts = [
            (0, f"Explosion reported in {city.name}, casualties feared ({rnd.randrange(10**6)})", "report", []),
            (7200, f"The government blamed Israel and the United States for the crime in {city.name} {rnd.randrange(10**6)}",
             "statement", ["iran", "israel", "united-states"]),
            (86400, claim, "claim", ["islamic-state"]),
        ]
        texts += [(86400 + rnd.randrange(3600), claim if i % 2 else claim[: len(claim) * 3 // 4], "claim",
                   ["islamic-state"]) for i in range(rnd.randrange(0, 6))]
        texts.append((3 * 3600, f"Officials said the investigation continues {rnd.randrange(10**6)}", "statement",
                      [rnd.choice(ACTORS)]))
        for delay, text, kind, actors in texts:
            hit_rows.append((t0 + timedelta(seconds=delay), text, kind, actors, event))
    hit_rows = hit_rows[: args.hits]
    hit_rows.sort()
    step = max(1, args.messages // max(1, args.hits))
    if not reuse:
        conn.execute("BEGIN")
    rows = []
    hit_at = {}
    for i in range(args.messages):
        if i % step == 0 and i // step < len(hit_rows):
            date, text, kind, actors, ev = hit_rows[i // step]
            hit_at[i + 1] = (kind, actors, ev)
        else:
            date, text = START + timedelta(seconds=rnd.randrange(span)), f"noise message {i} about markets and weather"
        ch = str(1000 + rnd.randrange(500))
        if reuse:
            continue
        rows.append(("telegram", ch, str(i), iso(date), text, "{}", "0" * 64, "", "2024", "2024"))
        if len(rows) == 10000:
            conn.executemany("INSERT INTO messages(platform, channel_id, message_id, date, text, raw, raw_sha256,"
                             " search_text, first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            rows = []
    if rows:
        conn.executemany("INSERT INTO messages(platform, channel_id, message_id, date, text, raw, raw_sha256,"
                         " search_text, first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    if not reuse:
        conn.execute("COMMIT")
        if args.base:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copyfile(path, args.base)
    print(f"{'copied' if reuse else 'built'} {args.messages:,} messages in {time.perf_counter() - t:.1f}s ({path})")
    todo = conn.execute(
        f"SELECT id, platform, channel_id, message_id, date, text FROM messages WHERE id IN"
        f" ({','.join(str(k) for k in hit_at)}) ORDER BY date, id"
    ).fetchall() if len(hit_at) < 500_000 else []
    settings = Settings() if args.in_memory is None else Settings(in_memory=args.in_memory)
    tracker = archive.incidents = IncidentTracker(settings)
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    chunks = preparer = None
    if args.preparer == "on":
        chunks, preparer = start_preparer([r[5] for r in todo], tracker.gazetteer)
    t, cpu, sched = time.perf_counter(), time.process_time(), schedstat()
    for start in range(0, len(todo), 500):
        if chunks is not None:
            tracker.give(marshal.loads(chunks.get()))
        with archive.transaction():
            for rowid, platform, cid, mid, date, text in todo[start:start + 500]:
                kind, actors, _ev = hit_at[rowid]
                tracker.queue(Incoming(rowid, platform, cid, mid, date, text, None, kind, ["r"], actors), "now", new=True)
    secs, cpu = time.perf_counter() - t, time.process_time() - cpu
    sched_end = schedstat()
    # the writer's thread: on a CPU, waiting for one (the host's load), and blocked (the rest:
    # I/O such as the log's syncs, waiting for the preparer): on an idle host the wall time is
    # about on CPU + blocked
    writer = None
    if sched is not None and sched_end is not None:
        on_cpu, waiting = sched_end[0] - sched[0], sched_end[1] - sched[1]
        writer = {"on_cpu_s": round(on_cpu, 2), "runqueue_s": round(waiting, 2),
                  "blocked_s": round(max(0.0, secs - on_cpu - waiting), 2)}
    if preparer is not None:
        preparer.join()
    load_avg = os.getloadavg()
    size = getattr(tracker._state, "size", dict)()
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile)
    n_inc = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    print(f"assigned {len(todo):,} hits in {secs:.1f}s: {len(todo) / secs:,.0f} hits/s"
          f" ({len(todo) / cpu:,.0f} per CPU second) -> {n_inc:,} incidents; load average {load_avg[0]:.2f}")
    if writer is not None:
        print(f"writer thread: {writer['on_cpu_s']:.2f}s on a CPU, {writer['runqueue_s']:.2f}s waiting for one,"
              f" {writer['blocked_s']:.2f}s blocked; without the wait: {len(todo) / (secs - writer['runqueue_s']):,.0f} hits/s")
    print(f"tracker state after: {size} (in_memory={getattr(settings, 'in_memory', None)})")
    print("texts prepared in a second process (words, places, signatures; --preparer on)" if preparer is not None
          else "texts prepared by the writer (--preparer off)")
    purity = {}
    for col in ("incident_id", "family_id"):
        groups: dict[int, list[int]] = {}
        for rowid, gid in conn.execute(f"SELECT message_rowid, {col} FROM incident_messages"):
            groups.setdefault(gid, []).append(hit_at[rowid][2])
        major = sum(max(Counter(evs).values()) for evs in groups.values())
        purity[col] = major / max(1, sum(len(v) for v in groups.values()))
    events = len({v[2] for v in hit_at.values()})
    # family recall: an event's claim and its copies (exact and trimmed) in one family
    claim_fams: dict[int, set[int]] = {}
    for rowid, fid in conn.execute("SELECT message_rowid, family_id FROM incident_messages WHERE kind='claim'"):
        claim_fams.setdefault(hit_at[rowid][2], set()).add(fid)
    n_claims = Counter(v[2] for v in hit_at.values() if v[0] == "claim")
    multi = [ev for ev, n in n_claims.items() if n > 1 and ev in claim_fams]
    recall = sum(1 for ev in multi if len(claim_fams[ev]) == 1) / max(1, len(multi))
    purity["recall"] = recall
    print(f"family recall: {recall:.4f} of {len(multi):,} events with copies of their claim have them in one family")
    print(f"purity: incidents {purity['incident_id']:.4f}, families {purity['family_id']:.4f}"
          f" ({events:,} events made)")
    t = time.perf_counter()
    with archive.transaction():
        IncidentTracker().state(conn)
    load_s = time.perf_counter() - t
    print(f"tracker state loaded from the tables in {load_s:.2f}s;"
          f" peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    lat = []
    for i in range(200):
        q = time.perf_counter()
        kw = [{}, {"place": ["Kabul"]}, {"kind": ["claim"]}, {"actor": ["iran"]}, {"since": "2024-06-01"}][i % 5]
        list_incidents(conn, **kw)
        lat.append((time.perf_counter() - q) * 1000)
    lat.sort()
    print(f"incidents listing (50 rows, 5 filter mixes): p50 {statistics.median(lat):.1f} ms,"
          f" p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms")
    print(json.dumps({"messages": args.messages, "hits": len(todo), "hits_per_s": round(len(todo) / secs),
                      "hits_per_cpu_s": round(len(todo) / cpu), "preparer": args.preparer,
                      "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 1), "incident_purity": round(purity["incident_id"], 4),
                      "family_purity": round(purity["family_id"], 4), "family_recall": round(purity["recall"], 4), "state_load_s": round(load_s, 2),
                      "load_avg": round(load_avg[0], 2), "writer": writer, "state": size}))
    archive.close()


if __name__ == "__main__":
    main()
