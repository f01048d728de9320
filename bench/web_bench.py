"""Web view benchmark: render time of each page on a 1,000,000-message archive.

    .venv/bin/python bench/web_bench.py                       # builds 1,000,000 messages (minutes)
    .venv/bin/python bench/web_bench.py --messages 100000 --keep /tmp/web-bench.db

The archive is search_bench.py's (built through ``Archive.store``: 200 channels over a year,
2% with a hit, 1% edited), then given what the pages show, with bulk SQL: hits of every
level and kind with actors, 400 incidents of 5-60 messages (with repost families), outbox
rows, resolved channels and collector status. Each page is requested through Datasette's
in-process client (routing, permission checks, the archive queries and the template
rendering; no socket), 40 different URLs per page after a warm-up, read-only connections
as `claimwatch serve` opens them. Prints p50 / p95 / max per page; target p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_bench import add_archive_args, bench_archive  # noqa: E402

from monitor.archive import Archive  # noqa: E402

LEVELS = ("critical", "high", "medium", "low")
KINDS = ("claim", "statement", "denial", "report", "watch")
ACTORS = ("islamic-state", "amaq", "irgc", "iran", "houthis", "hamas", "israel", "united-states")
TARGET_MS = 300.0


def enrich(path: str, seed: int) -> None:
    """Hits of every level/kind with actors, incidents with families, outbox rows, channels."""
    rng = random.Random(seed + 5)
    a = Archive.open(path)
    c = a.conn
    c.execute("BEGIN")
    # replace the incidents the store path made of the synthetic hits (no places or actors:
    # one per hit) with bigger ones, as a real archive has
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table in ("incident_messages", "family_bands", "family_bands_new", "family_texts", "families", "incident_facets",
                  "incident_threads", "incidents"):
        if table in tables:
            c.execute(f"DELETE FROM {table}")
    c.execute("DELETE FROM meta WHERE key='incidents_bands_written'")  # (no text's band keys are written)
    hits = c.execute("SELECT h.id, h.message_rowid, m.date, m.platform, m.channel_id FROM hits h"
                     " JOIN messages m ON m.id = h.message_rowid ORDER BY h.id").fetchall()
    for hid, *_ in hits:
        actors = rng.sample(ACTORS, rng.randint(0, 3))
        c.execute("UPDATE hits SET level=?, kind=?, actors=?, rule_id=? WHERE id=?",
                  (rng.choice(LEVELS), rng.choice(KINDS), json.dumps(actors) if actors else None,
                   f"bench-rule-{rng.randrange(12)}", hid))
        if rng.random() < 0.5:
            c.execute("INSERT INTO outbox(hit_id, destination, status, attempts, next_attempt_at, created_at, sent_at)"
                      " VALUES (?, 'slack', 'sent', 1, ?, ?, ?)", (hid, hits[0][2], hits[0][2], hits[0][2]))
    now = "2025-01-01T00:00:00Z"
    by_date = sorted(hits, key=lambda h: h[2])
    n_inc = min(400, max(1, len(by_date) // 30))
    pos = 0
    for i in range(n_inc):
        size = rng.randint(5, 60)
        members = by_date[pos:pos + size]
        pos += size
        if not members:
            break
        cur = c.execute(
            "INSERT INTO incidents(title, start_at, end_at, first_message_rowid, places, actors, counts, messages,"
            " channels, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (f"Bench incident {i + 1}", members[0][2], members[-1][2], members[0][1], "[]",
             json.dumps(rng.sample(ACTORS, 2)), json.dumps({"claim": 1, "statement": len(members) - 1}),
             len(members), len({(m[3], m[4]) for m in members}), now, now),
        )
        iid = cur.lastrowid
        fam = None
        for j, (_hid, rowid, date, platform, channel_id) in enumerate(members):
            if j % 4 == 0:
                fam = c.execute("INSERT INTO families(incident_id, first_message_rowid, first_date, members)"
                                " VALUES (?,?,?,?)", (iid, rowid, date, 4)).lastrowid
            c.execute(
                "INSERT INTO incident_messages(message_rowid, incident_id, family_id, date, platform,"
                " channel_id, kind, rules, actors, places, how, origin, added_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rowid, iid, fam, date, platform, channel_id, rng.choice(KINDS[:4]), '["bench-rule-1"]',
                 json.dumps(rng.sample(ACTORS, 1)), "[]", "place", None, now),
            )
    for i in range(200):
        platform = "telegram" if i % 4 else "x"
        cid = str(-1001000000000 - i if i % 4 else 10_000 + i)
        c.execute("INSERT OR REPLACE INTO channels(platform, channel_id, username, title, updated_at)"
                  " VALUES (?,?,?,?,?)", (platform, cid, f"chan{i}", f"Channel {i}", now))
    c.execute("INSERT OR REPLACE INTO source_status(source, last_message_at, last_poll_at, errors, last_error,"
              " updated_at) VALUES ('telegram', ?, ?, 3, 'chan7: FloodWaitError (wait 30 s)', ?)", (now, now, now))
    c.execute("COMMIT")
    c.execute("ANALYZE")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    a.close()


def urls(path: str, n: int, seed: int, vocab: list[str], entities: list[str]) -> dict[str, list[str]]:
    rng = random.Random(seed + 9)
    a = Archive.open(path, readonly=True)
    c = a.conn
    max_id = c.execute("SELECT max(id) FROM messages").fetchone()[0]
    keys = []
    while len(keys) < n:
        r = c.execute("SELECT platform, channel_id, message_id FROM messages WHERE id=?",
                      (rng.randint(1, max_id),)).fetchone()
        if r:
            keys.append(":".join(r))
    edited = [":".join(r) for r in c.execute(
        "SELECT m.platform, m.channel_id, m.message_id FROM messages m WHERE m.edit_date IS NOT NULL LIMIT ?", (n // 2,))]
    hit_msgs = [":".join(r) for r in c.execute(
        "SELECT m.platform, m.channel_id, m.message_id FROM hits h JOIN messages m ON m.id = h.message_rowid"
        " ORDER BY h.id DESC LIMIT ?", (n // 4,))]
    incidents = [r[0] for r in c.execute("SELECT id FROM incidents ORDER BY messages DESC LIMIT ?", (n,))]
    channels = [r for r in c.execute("SELECT platform, channel_id FROM channels ORDER BY random() LIMIT ?", (n,))]
    a.close()
    words = [w for w in vocab[20:3000]]
    queries = []
    for i in range(n):
        r = rng.random()
        if r < 0.3:
            q = f'"{rng.choice(entities)}"'
        elif r < 0.6:
            q = rng.choice(words)
        elif r < 0.8:
            q = f"{rng.choice(words)} {rng.choice(words)}"
        else:
            q = f"{rng.choice(words)} OR {rng.choice(words)}"
        extra = rng.choice(["", "&kind=claim", "&level=high", "&platform=telegram", "&actor=irgc", "&sort=date"])
        queries.append("/search?q=" + quote(q) + extra)
    msg_keys = (keys[: n // 4] + edited[: n // 4] + hit_msgs + keys)[:n]
    return {
        "home": ["/"] * n,
        "incident": [f"/incident/{i}" for i in (incidents * n)[:n]],
        "incident.md": [f"/incident/{i}.md" for i in (incidents * n)[: max(1, n // 4)]],
        "message": ["/message/" + quote(k) for k in msg_keys],
        "channel": [f"/channel/{p}/{quote(cid)}" for p, cid in (channels * n)[:n]],
        "search": queries,
    }


async def time_pages(path: str, pages: dict[str, list[str]]) -> dict[str, list[float]]:
    from monitor.web.app import build_datasette

    ds = build_datasette(path)
    await ds.invoke_startup()
    out: dict[str, list[float]] = {}
    for name, paths in pages.items():
        for p in paths[:3]:  # warm-up (page cache, connections)
            await ds.client.get(p)
        times = []
        for p in paths:
            t0 = time.perf_counter()
            r = await ds.client.get(p)
            times.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"{p}: HTTP {r.status_code}: {r.text[:300]}")
        out[name] = times
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_archive_args(ap)
    ap.add_argument("--requests", type=int, default=40, help="URLs timed per page")
    args = ap.parse_args()
    vocab, entities, path, tmp = bench_archive(args, "cw-web-bench-", lambda p: enrich(p, args.seed))
    a = Archive.open(path, readonly=True)
    n_msgs, n_hits, n_inc = (a.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                             for t in ("messages", "hits", "incidents"))
    a.close()
    print(f"archive: {n_msgs:,} messages, {n_hits:,} hits, {n_inc:,} incidents")
    pages = urls(path, args.requests, args.seed, vocab, entities)
    results = asyncio.run(time_pages(path, pages))
    worst = 0.0
    for name, times in results.items():
        p95 = pct(times, 95)
        worst = max(worst, p95)
        print(f"  {name:12s} n={len(times):3d}  p50 {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms"
              f"  max {max(times):7.1f} ms")
    print(f"slowest page p95 {worst:.1f} ms (target <= {TARGET_MS:.0f} ms): {'OK' if worst <= TARGET_MS else 'OVER'}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
