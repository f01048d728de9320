"""Import benchmark: a generated Telegram Desktop export -> ingest.import_file -> SQLite (FTS on, no rules).

Generates a single-channel export of N messages (default 200,000; a realistic mix of Arabic,
Persian and English text, entity-split text, service messages, edits, forwards, replies,
photos and files) in a temp dir, imports it end to end, then imports it again (idempotent),
and prints messages/s and the peak RSS of this process.

Usage: python bench/import_bench.py [--messages 200000] [--keep DIR] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.archive import Archive  # noqa: E402
from monitor.ingest import import_file  # noqa: E402

T0 = 1704240000  # 2024-01-03T00:00:00Z
CHANNEL_ID = 1234500000
TEXTS = [
    "أعلن تنظيم الدولة الإسلامية مسؤوليته عن الهجوم في كرمان الذي استهدف تجمعاً قرب مرقد قاسم سليماني",
    "وكالة أعماق: مقاتلو الدولة الإسلامية يستهدفون تجمعاً للمرتدين في مدينة كرمان جنوب إيران",
    "ولاية خراسان تتبنى العملية وتنشر صورة المنفذين",
    "مؤسسة الفرقان تقدم: كلمة صوتية للمتحدث الرسمي",
    "الحرس الثوري ينفي أي علاقة للهجوم بالتوترات الداخلية",
    "وزارة الصحة تعلن عن حملة تطعيم جديدة في المدارس خلال الأسبوع المقبل",
    "أسعار النفط ترتفع مع توقعات بزيادة الطلب العالمي هذا العام",
    "وزارت امور خارجه ایران این اقدام تروریستی را به شدت محکوم کرد و آمریکا و رژیم صهیونیستی را مسئول دانست",
    "سخنگوی دولت: عاملان این جنایت به سزای اعمال خود خواهند رسید",
    "بازار تهران امروز شاهد افزایش قیمت طلا و ارز بود و معامله‌گران محتاط هستند",
    "Islamic State claimed responsibility for the twin bombings in Kerman, its Amaq agency said",
    "Iranian officials blamed the United States and the Zionist regime for the attack",
    "Weather across the region will be mild with light rain expected tomorrow",
    "The football match ended in a draw after extra time in the capital",
]
ENTITY_TYPES = ["bold", "italic", "link", "hashtag", "mention", "text_link"]
ARABIC_LETTERS = "ابتثجحخدذرسشصضطظعغفقكلمنهويةىأإآؤئپچژگکی"
PREFIXES = ["", "", "", "و", "ف", "ب", "ل", "ال", "وال", "بال", "لل"]


def vocabulary(rng: random.Random, size: int = 40_000) -> tuple[list[str], list[float]]:
    """Words of the sample sentences plus synthetic Arabic-script and Latin words, with Zipf weights."""
    words = sorted({w for t in TEXTS for w in t.split()})
    while len(words) < size:
        if rng.random() < 0.8:
            stem = "".join(rng.choice(ARABIC_LETTERS) for _ in range(rng.randint(3, 7)))
            words.append(rng.choice(PREFIXES) + stem)
        else:
            words.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))))
    rng.shuffle(words)
    cum, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += 1.0 / rank
        cum.append(total)
    return words, cum


def _text(rng: random.Random, i: int, vocab: tuple[list[str], list[float]]) -> tuple[object, list[dict]]:
    if rng.random() < 0.35:
        base = rng.choice(TEXTS) + f" #{i}"
    else:  # a message of 6-40 words drawn from the vocabulary (realistic cache behaviour)
        base = " ".join(rng.choices(vocab[0], cum_weights=vocab[1], k=rng.randint(6, 40)))
    if rng.random() < 0.35:
        words = base.split(" ")
        cut1, cut2 = sorted(rng.sample(range(1, len(words)), 2)) if len(words) > 3 else (1, 2)
        head, mid, tail = " ".join(words[:cut1]) + " ", " ".join(words[cut1:cut2]), " " + " ".join(words[cut2:])
        etype = rng.choice(ENTITY_TYPES)
        ent = {"type": etype, "text": mid}
        if etype == "text_link":
            ent["href"] = "https://example.org/a"
        text: object = [head, ent, tail]
        entities = [{"type": "plain", "text": head}, dict(ent), {"type": "plain", "text": tail}]
        return text, entities
    return base, [{"type": "plain", "text": base}]


def generate(path: Path, n: int, seed: int = 7) -> None:
    """Write a Telegram Desktop-style export (1-space indent, like the real exporter)."""
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    with open(path, "w", encoding="utf-8") as f:
        f.write('{\n "name": "Bench Channel",\n "type": "public_channel",\n "id": %d,\n "messages": [\n' % CHANNEL_ID)
        for i in range(1, n + 1):
            ts = T0 + i * 7
            date = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts + 3 * 3600 + 1800))
            if rng.random() < 0.04:
                m = {
                    "id": i, "type": "service", "date": date, "date_unixtime": str(ts),
                    "actor": "Bench Channel", "actor_id": f"channel{CHANNEL_ID}", "action": "pin_message",
                    "message_id": max(1, i - 1), "text": "", "text_entities": [],
                }
            else:
                text, entities = _text(rng, i, vocab)
                m = {
                    "id": i, "type": "message", "date": date, "date_unixtime": str(ts),
                    "from": "Bench Channel", "from_id": f"channel{CHANNEL_ID}",
                }
                r = rng.random()
                if r < 0.05:
                    m["edited"] = date
                    m["edited_unixtime"] = str(ts + 600)
                elif r < 0.10:
                    m["forwarded_from"] = "Other Channel"
                elif r < 0.14 and i > 1:
                    m["reply_to_message_id"] = i - 1
                r = rng.random()
                if r < 0.10:
                    m["photo"] = f"photos/photo_{i}@03-01-2024_12-00-00.jpg"
                    m["width"], m["height"] = 1280, 720
                elif r < 0.13:
                    m["file"] = f"files/statement_{i}.pdf"
                    m["file_size"] = 100_000 + i
                    m["mime_type"] = "application/pdf"
                m["text"] = text
                m["text_entities"] = entities
            body = json.dumps(m, ensure_ascii=False, indent=1)
            f.write("  " + body.replace("\n", "\n  "))
            f.write(",\n" if i < n else "\n")
        f.write(" ]\n}\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_peak_rss_mb() -> float:
    """Peak RSS of the largest finished child (the import's preparer process)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed_import(db: Path, export: Path, profile: bool, inline: bool = False) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, report) of one import_file."""
    with Archive.open(db) as archive:
        prof = cProfile.Profile() if profile else None
        t, c = time.perf_counter(), cpu_seconds()
        if prof:
            prof.enable()
        report = import_file(archive, export, matcher=None, prepare_process=False if inline else None)
        if prof:
            prof.disable()
        elapsed, cpu = time.perf_counter() - t, cpu_seconds() - c
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return elapsed, cpu, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--keep", type=Path, help="write the export and archive here and keep them")
    ap.add_argument("--profile", action="store_true", help="cProfile the first import (this process only)")
    ap.add_argument("--inline", action="store_true", help="prepare rows in this process (no preparer process)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="claimwatch-import-bench-")
    work = args.keep or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    export, db = work / "result.json", work / "bench.db"
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        p.unlink(missing_ok=True)

    t = time.perf_counter()
    generate(export, args.messages)
    size_mb = export.stat().st_size / 1e6
    print(f"generated {args.messages:,} messages, {size_mb:.1f} MB in {time.perf_counter() - t:.1f}s")
    rss_before = peak_rss_mb()

    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; other processes slow the wall-clock figures)")
    elapsed, cpu, report = timed_import(db, export, args.profile, args.inline)
    n = report.read + report.skipped_service
    print(
        f"import:    {report.read:,} messages stored (+{report.skipped_service:,} service) in {elapsed:.2f}s"
        f" = {n / elapsed:,.0f} msgs/s ({report.read / elapsed:,.0f} stored/s), {size_mb / elapsed:.1f} MB/s;"
        f" CPU {cpu:.2f}s = {n / cpu:,.0f} msgs/CPU-s; new={report.result.new:,}"
    )
    print(f"peak RSS after import: {peak_rss_mb():.0f} MB (before import: {rss_before:.0f} MB);"
          f" preparer process peak RSS: {child_peak_rss_mb():.0f} MB")

    elapsed2, cpu2, report2 = timed_import(db, export, False, args.inline)
    print(
        f"re-import: {report2.read:,} messages in {elapsed2:.2f}s = {n / elapsed2:,.0f} msgs/s;"
        f" CPU {cpu2:.2f}s = {n / cpu2:,.0f} msgs/CPU-s; new={report2.result.new}, unchanged={report2.result.unchanged:,}"
    )
    print(f"peak RSS: {peak_rss_mb():.0f} MB; archive {os.path.getsize(db) / 1e6:.0f} MB;"
          f" load average after: {os.getloadavg()[0]:.2f}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
