"""Search and verify benchmark: build an N-message archive, time 200 searches and verify.

    .venv/bin/python bench/search_bench.py                 # 1,000,000 messages (several minutes)
    .venv/bin/python bench/search_bench.py --messages 100000 --keep /tmp/bench.db

The archive is built through ``Archive.store`` (the real write path: messages, versions,
hash chain, FTS triggers) in large batches, from synthetic Arabic / Persian / English posts
drawn from a Zipf-distributed vocabulary (with diacritics, Persian letter forms and
proclitics) and 300 repeated names / set phrases, across 200 channels and one year. 1% of messages get an edited version and 2%
a rule hit. Queries mix common and rare words, phrases, prefixes, boolean operators and
filters; the worst cases (stopword-frequency words, phrases of two seldom-adjacent stopwords)
are timed and reported apart. Prints p50/p95/p99/max search latency (library call: FTS +
ranking + snippets), archive size, and verify throughput.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.archive import Archive  # noqa: E402
from monitor.model import Hit, Match, Message  # noqa: E402
from monitor.query.filters import Filters  # noqa: E402
from monitor.query.search import search  # noqa: E402
from monitor.query.verify import verify  # noqa: E402

AR_LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
FA_EXTRA = "پچژگکی"
EN_WORDS = (
    "attack claimed responsibility statement official forces army militants killed wounded city province "
    "ministry spokesman operation drone strike border police security convoy checkpoint explosion "
    "government report sources local officials said according news breaking update confirmed denied"
).split()
AR_WORDS = (
    "الدولة الإسلامية أعلنت مسؤوليتها عن الهجوم على قوات الجيش في مدينة ولاية بيان رسمي مقتل إصابة "
    "عملية استهداف دورية عناصر الشرطة المحافظة وزارة الدفاع المتحدث باسم الحكومة مصادر محلية"
).split()
FA_WORDS = "مسئولیت حمله نیروهای سپاه کشته شدند استان بیانیه رسمی سخنگوی وزارت یک کتاب".split()
DIACRITICS = "\u064e\u064f\u0650\u0651\u0652\u064b"
PROCLITICS = ("و", "ب", "ل", "ف", "وال", "بال", "لل")


def make_vocab(rng: random.Random, size: int) -> list[str]:
    words = list(dict.fromkeys(EN_WORDS + AR_WORDS + FA_WORDS))
    seen = set(words)
    while len(words) < size:
        kind = rng.random()
        if kind < 0.55:
            w = "".join(rng.choice(AR_LETTERS) for _ in range(rng.randint(3, 7)))
        elif kind < 0.7:
            w = "".join(rng.choice(AR_LETTERS + FA_EXTRA) for _ in range(rng.randint(3, 7)))
        else:
            w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    rng.shuffle(words)
    return words


class Zipf:
    """Draw vocabulary indexes with P(rank k) ~ 1/k^s (precomputed cumulative table)."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        import bisect
        import itertools

        weights = [1.0 / (k**s) for k in range(1, n + 1)]
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1]
        self.rng = rng
        self.bisect = bisect.bisect_left

    def draw(self) -> int:
        return self.bisect(self.cum, self.rng.random() * self.total)


FIXED_ENTITIES = ["الدولة الإسلامية", "ولاية سيناء", "الحرس الثوري", "claimed responsibility", "سپاه پاسداران",
                  "وزارة الدفاع", "islamic state"]


def make_entities(vocab: list[str], rng: random.Random, n: int = 300) -> list[str]:
    """Multi-word expressions (names, organisations, set phrases) that posts repeat."""
    out = list(FIXED_ENTITIES)
    while len(out) < n:
        out.append(" ".join(rng.choice(vocab[200:5000]) for _ in range(rng.randint(2, 3))))
    return out


def decorate(word: str, rng: random.Random) -> str:
    if word and "\u0600" <= word[0] <= "\u06ff":
        r = rng.random()
        if r < 0.15:
            word = rng.choice(PROCLITICS) + word
        if r > 0.9:  # a few diacritics
            word = "".join(c + (rng.choice(DIACRITICS) if rng.random() < 0.3 else "") for c in word)
    return word


def build(path: str, n: int, seed: int, vocab: list[str], entities: list[str]) -> float:
    rng = random.Random(seed)
    zipf = Zipf(len(vocab), 1.07, rng)
    ezipf = Zipf(len(entities), 1.0, rng)
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    channels = [(("telegram" if i % 4 else "x"), str(-1001000000000 - i if i % 4 else 10_000 + i), f"chan{i}")
                for i in range(200)]
    hit = Hit("bench-rule", "h1", "high", "Bench rule", (Match("sel", "x", 0, 1),), ())
    archive = Archive.open(path)
    started = time.perf_counter()
    batch = 20_000
    done = 0
    while done < n:
        items = []
        for i in range(done, min(n, done + batch)):
            platform, cid, cname = channels[rng.randrange(len(channels))]
            words = [decorate(vocab[zipf.draw()], rng) for _ in range(rng.randint(8, 40))]
            if rng.random() < 0.3:  # a name or set phrase, sometimes with a proclitic
                entity = entities[ezipf.draw()].split()
                entity[0] = decorate(entity[0], rng)
                at = rng.randrange(len(words) + 1)
                words[at:at] = entity
            text = " ".join(words)
            date = t0 + timedelta(seconds=i * (365 * 86400 // max(n, 1)))
            msg = Message(platform, cid, str(i + 1), date, text, channel=cname,
                          raw={"id": i + 1, "channel": cid, "text": text, "views": rng.randint(0, 10**5)})
            items.append((msg, [hit] if rng.random() < 0.02 else []))
        archive.store(items, alerts=False, collect=False)
        # 1% edited: a second version of some messages of this batch
        edits = []
        for msg, _ in items[:: 100]:
            text = msg.text + " " + vocab[zipf.draw()]
            edits.append((Message(msg.platform, msg.channel_id, msg.message_id, msg.date, text, channel=msg.channel,
                                  edit_date=msg.date + timedelta(minutes=5), raw={**msg.raw, "text": text}), []))
        archive.store(edits, alerts=False, collect=False)
        done += len(items)
        rate = done / (time.perf_counter() - started)
        print(f"\r  built {done:,}/{n:,} messages ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    archive.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    archive.conn.execute("ANALYZE")
    archive.close()
    return time.perf_counter() - started


def make_queries(vocab: list[str], entities: list[str], n: int, seed: int) -> list[tuple[str, str, Filters]]:
    """(kind, query, filters). Words by Zipf rank: "frequent" 20-200 (in ~1-8% of messages,
    like names and topic words), "mid" 200-5000, "rare" beyond; phrases are the names and set
    phrases posts repeat."""
    rng = random.Random(seed + 1)
    arabic = [w for w in vocab[20:3000] if "\u0600" <= w[0] <= "\u06ff"]
    chans = [f"chan{i}" for i in range(200)]
    out: list[tuple[str, str, Filters]] = []
    for i in range(n):
        kind = i % 10
        freq = rng.choice(vocab[20:200])
        mid = rng.choice(vocab[200:5000])
        rare = rng.choice(vocab[5000:])
        f = Filters()
        if kind == 0:
            name, q = "frequent word", freq
        elif kind == 1:
            name, q = "mid word", mid
        elif kind == 2:
            name, q = "rare word", rare
        elif kind == 3:
            name, q = "two words (AND)", f"{freq} {rng.choice(vocab[20:2000])}"
        elif kind == 4:
            name, q = "phrase", '"' + rng.choice(entities[: 20] if rng.random() < 0.5 else entities) + '"'
        elif kind == 5:
            name, q = "prefix", rng.choice(arabic or vocab)[:3] + "*"
        elif kind == 6:
            name, q = "OR", f"{mid} OR {rare} OR {freq}"
        elif kind == 7:
            name, q = "NOT", f"{freq} NOT {mid}"
        elif kind == 8:
            name, q = "word + channel", rng.choice([freq, mid])
            f = Filters.build(channel=rng.choice(chans))
        else:
            name, q = "word + month", rng.choice([freq, mid, "الدولة", "مسئولیت", "claimed"])
            month = rng.randint(1, 11)
            f = Filters.build(since=f"2024-{month:02d}-01", until=f"2024-{month:02d}-28")
        out.append((name, q, f))
    rng.shuffle(out)
    return out


def stopword_queries(vocab: list[str], seed: int, conn) -> list[tuple[str, str, Filters]]:
    """The worst cases, reported apart: words in 5-90% of all messages, alone and with filters,
    and phrases of two such words that are seldom adjacent."""
    rng = random.Random(seed + 2)
    out: list[tuple[str, str, Filters]] = []
    for i in range(20):
        w = vocab[i]
        f = [Filters(), Filters.build(channel=f"chan{rng.randrange(200)}"), Filters.build(platform="x"),
             Filters.build(rule="bench-rule")][i % 4]
        out.append(("stopword", w, f))
    texts = [r[0] for r in conn.execute("SELECT text FROM messages ORDER BY random() LIMIT 100")]
    for text in texts[:10]:
        words = text.split()
        j = rng.randrange(max(1, len(words) - 2))
        out.append(("random pair", '"' + " ".join(words[j : j + 2]) + '"', Filters()))
    return out


def timed(archive: Archive, queries: list[tuple[str, str, Filters]]) -> list[tuple[float, str, str, Filters, int]]:
    out = []
    for kind, q, f in queries:
        t = time.perf_counter()
        res = search(archive, q, f, limit=20)
        out.append(((time.perf_counter() - t) * 1000, kind, q, f, len(res)))
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def add_archive_args(ap: argparse.ArgumentParser) -> None:
    """The options of the bench archive (shared with web_bench.py)."""
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--vocab", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", help="Build (or reuse, if it exists) the archive at this path and keep it.")


def bench_archive(args: argparse.Namespace, prefix: str, after_build=None):
    """The vocabulary, the entities and the archive's path (built unless ``--keep`` names an
    existing one; ``after_build(path)`` runs after a build); the temporary folder (or None)
    must stay referenced while the archive is used."""
    rng = random.Random(args.seed)
    vocab = make_vocab(rng, args.vocab)
    entities = make_entities(vocab, rng)
    tmp = None
    if args.keep:
        path = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix=prefix)
        path = os.path.join(tmp.name, "bench.db")
    if not os.path.exists(path):
        print(f"building {args.messages:,} messages at {path}", file=sys.stderr)
        secs = build(path, args.messages, args.seed, vocab, entities)
        if after_build is not None:
            after_build(path)
        print(f"build: {args.messages:,} messages in {secs:.1f}s ({args.messages / secs:,.0f} msg/s)")
    return vocab, entities, path, tmp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_archive_args(ap)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    vocab, entities, path, tmp = bench_archive(args, "cw-search-bench-")
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    archive = Archive.open(path, readonly=True)
    n_msgs = archive.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    print(f"archive: {n_msgs:,} messages, {size / 1e6:,.0f} MB ({size / max(n_msgs, 1):,.0f} bytes/message)")

    queries = make_queries(vocab, entities, args.queries, args.seed)
    timed(archive, queries[:10])  # warm the page cache a little, like a running system
    runs = timed(archive, queries)
    lat = [r[0] for r in runs]
    print(
        f"search: {len(lat)} queries, p50 {statistics.median(lat):.1f} ms, p95 {pct(lat, 95):.1f} ms, "
        f"p99 {pct(lat, 99):.1f} ms, max {max(lat):.1f} ms ({sum(1 for r in runs if r[4])} with results; "
        "target p99 <= 50 ms)"
    )
    kinds: dict[str, list[float]] = {}
    for dt, kind, *_ in runs:
        kinds.setdefault(kind, []).append(dt)
    for kind, values in kinds.items():
        print(f"  {kind:16s} n={len(values):3d}  p50 {statistics.median(values):6.1f} ms  max {max(values):6.1f} ms")
    for dt, kind, q, f, _n in sorted(runs, key=lambda r: r[0], reverse=True)[:3]:
        print(f"  slowest: {dt:.1f} ms  {kind}: {q!r} {f.as_dict() or ''}")
    stop = timed(archive, stopword_queries(vocab, args.seed, archive.conn))
    for kind in ("stopword", "random pair"):
        slat = [r[0] for r in stop if r[1] == kind]
        print(f"worst cases, reported apart: {kind} (words in 5-90% of messages) n={len(slat)}: "
              f"p50 {statistics.median(slat):.1f} ms, max {max(slat):.1f} ms")
    for dt, kind, q, f, _n in sorted(stop, key=lambda r: r[0], reverse=True)[:4]:
        print(f"  {dt:6.1f} ms  {kind}: {q!r} {f.as_dict() or ''}")

    report = verify(archive.conn)
    records = report.chain + report.messages
    print(
        f"verify: {'OK' if report.ok else 'FAILED'} {report.messages:,} messages + {report.chain:,} chain records "
        f"in {report.seconds:.1f}s = {records / report.seconds:,.0f} records/s "
        f"({size / 1e6 / report.seconds:,.0f} MB/s of archive)"
    )
    archive.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
