"""Matching benchmark: the compiled matcher against a naive loop, in one run.

Generates 1,000 rules (YAML files in a temp dir; half of them ``a and b`` with ``b`` a
common word, so condition evaluation is exercised, not only term finding) and 200,000
mixed-language messages (Arabic with proclitics and diacritics, Persian with ZWNJ, English,
hashtags, punctuation), then prints:

* rule-set load (parse + validate) and compile times;
* msgs/s of the compiled matcher over all messages, normalisation included;
* msgs/s of the naive loop (one compiled regex per term, every rule evaluated on every
  message) timed on the first 1,000 messages, the ratio, and whether both found exactly the
  same hits on those 1,000;
* with ``--workers N`` the aggregate msgs/s of N processes (fork, one share each);
* peak RSS of this process.

``--scale 1000,5000,10000`` instead prints, for each rule count, the match patterns, load
and compile times, the compiled matcher's RSS and the msgs/s of one process (no naive loop).

A hit's matches (spans) are computed when first read (the archive and alerts read them;
``rules eval`` and this bench's count do not): ``--explain`` reads them for every hit.

Usage: python bench/match_bench.py [--rules 1000] [--messages 200000] [--naive N]
                                   [--workers 2] [--seed 1] [--profile] [--scale 1000,5000,10000]
                                   [--actors rules/actors.yml] [--explain]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.model import Message  # noqa: E402
from monitor.rules import Matcher, load_rules  # noqa: E402
from monitor.rules.reference import NaiveMatcher  # noqa: E402

# -- vocabulary -----------------------------------------------------------------------------
COMMON = {
    "en": "the of and to in a is that for on with as was by at from it said has were are be this".split(),
    "ar": "في من على الى أن عن مع التي الذي هذا كان بعد قد إن ما بين خلال حيث وقال كما".split(),
    "fa": "و در به از که این را با است برای آن شد می یک تا هم کرد شده خود".split(),
}
REAL = {
    "en": (
        "attack killed claimed responsibility statement province soldiers caliphate bombing explosion "
        "ministry foreign condemned terrorist regime zionist united states iran kerman tehran baghdad "
        "mosul kabul police army security forces gunmen suicide bomber mosque market checkpoint convoy"
    ).split(),
    "ar": (
        "الدولة الإسلامية تبنى أعلن مسؤوليته ولاية خراسان سيناء هجوم تفجير انتحاري جنود الخلافة "
        "وكالة أعماق بيان كرمان بغداد الموصل الجيش الشرطة مقتل إصابة عبوة ناسفة استهدف المرتدين"
    ).split(),
    "fa": (
        "وزارت امور خارجه محکوم رژیم صهیونیستی آمریکا تروریستی حمله انفجار کرمان تهران سپاه "
        "پاسداران جنایت مسئول بیانیه سخنگوی شهید کشته زخمی امنیتی"
    ).split(),
}
SYLLABLES = {
    "en": "ka ri mo ta le su ne vo pa li dro gan tor mel vis ran ost ber cal fen".split(),
    "ar": "با تي مو را سا لي نو قا حي دو كر عم فا رج سل ها طو بي مز شر".split(),
    "fa": "پا گو چی ژا کا می نو دا ره سی بو لا زا شو فر گل مه تا خو یا".split(),
}
# Everyday news and chat words without attack vocabulary (sport, weather, prices, family,
# traffic): most of a real channel's messages are like this and hit nothing (``--quiet``).
NEUTRAL = {
    "en": (
        "weather rain sunny tomorrow morning match team goal league coach season price market bread "
        "rice fuel bus traffic road school students teacher exam family wedding birthday photo video "
        "happy thanks friends music concert film festival holiday travel flight hotel phone internet "
        "football player club win draw cup final weekend city park garden doctor hospital clinic medicine"
    ).split(),
    "ar": (
        "الطقس أمطار مشمس غدا صباح مباراة فريق هدف الدوري المدرب الموسم سعر السوق الخبز الأرز الوقود "
        "حافلة المرور الطريق المدرسة الطلاب المعلم امتحان العائلة زفاف عيد صورة فيديو سعيد شكرا "
        "أصدقاء موسيقى حفل فيلم مهرجان عطلة سفر رحلة فندق هاتف الإنترنت كرة لاعب النادي فوز تعادل"
    ).split(),
    "fa": (
        "هوا باران آفتابی فردا صبح مسابقه تیم گل لیگ مربی فصل قیمت بازار نان برنج سوخت اتوبوس "
        "ترافیک جاده مدرسه دانش آموزان معلم امتحان خانواده عروسی تولد عکس ویدیو خوشحال ممنون "
        "دوستان موسیقی کنسرت فیلم جشنواره تعطیلات سفر پرواز هتل گوشی اینترنت فوتبال بازیکن باشگاه"
    ).split(),
}
PROCLITIC = ["و", "ب", "ال", "وال", "لل", "ف", "بال"]
DIACRITICS = ["\u064e", "\u064f", "\u0650", "\u0651", "\u0652"]


def make_vocab(rng: random.Random, lang: str, n: int) -> list[str]:
    words = set()
    syl = SYLLABLES[lang]
    while len(words) < n:
        words.add("".join(rng.choice(syl) for _ in range(rng.randint(2, 4))))
    return COMMON[lang] + REAL[lang] + sorted(words)


def zipf_weights(n: int) -> list[float]:
    return [1.0 / (r + 1) ** 1.05 for r in range(n)]


NAME_SYLLABLES = {
    "en": "ab du mal ik ha san mu ham mad ya hya sa ree ka rim na sir ja mal fa rid ta riq zu bair".split(),
    "ar": "عب د ال مل ك حس ن مح مد يح يى سر يع كر يم نا صر جم فر طا رق زب ير".split(),
    "fa": "قا سم سل ما نی حس ین علی رضا مهد پو ری زا ده کا ظم اح مد خا نی".split(),
}


def make_names(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct person names of two or three words, a third each in English, Arabic and
    Persian script (a watch list's commanders, spokesmen, officials)."""
    out: dict[str, None] = {}
    langs = ["en", "ar", "fa"]
    while len(out) < n:
        lang = langs[len(out) % 3]
        syl = NAME_SYLLABLES[lang]
        words = ["".join(rng.choice(syl) for _ in range(rng.randint(2, 3))) for _ in range(rng.choice([2, 2, 3]))]
        if lang == "en":
            words = [w.capitalize() for w in words]
            if rng.random() < 0.2:
                words = ["Abu", *words[:1], "al-" + words[-1]]
        elif rng.random() < 0.2:
            words = ["أبو" if lang == "ar" else "ابو", *words[:1], "ال" + words[-1]]
        out[" ".join(words)] = None
    return list(out)


# -- messages -------------------------------------------------------------------------------
def quiet_vocab(rng: random.Random, vocab: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per language: the common words, everyday words (:data:`NEUTRAL`) and 6,000 made-up words
    of five syllables (the generated rules' terms have two to four), no attack vocabulary."""
    out = {}
    for lang in vocab:
        known = set(vocab[lang])
        words: set[str] = set()
        syl = SYLLABLES[lang]
        while len(words) < 6000:
            w = "".join(rng.choice(syl) for _ in range(5))
            if w not in known:
                words.add(w)
        out[lang] = COMMON[lang] + NEUTRAL[lang] + sorted(words)
    return out


def _cumulative(vocab: dict[str, list[str]]) -> dict[str, list[float]]:
    cum = {}
    for lang, v in vocab.items():
        acc, total = [], 0.0
        for w in zipf_weights(len(v)):
            total += w
            acc.append(total)
        cum[lang] = acc
    return cum


def make_messages(rng: random.Random, vocab: dict[str, list[str]], n: int, names: list[str] | None = None,
                  quiet: float = 0.0) -> list[Message]:
    """``n`` messages; a ``quiet`` fraction of them drawn from everyday words only (see
    :func:`quiet_vocab`), the rest from ``vocab`` (the rules' own words at a high rate)."""
    t0 = datetime(2024, 1, 3, tzinfo=timezone.utc)
    cum = _cumulative(vocab)
    qvocab = quiet_vocab(random.Random(rng.random()), vocab) if quiet else vocab
    qcum = _cumulative(qvocab) if quiet else cum
    langs = ["ar"] * 4 + ["fa"] * 3 + ["en"] * 3
    channels = ["amaq_news", "nashir_media", "presstv", "irna_en", "alarabiya_brk", "kabul_now", "sahel_watch"]
    out = []
    for i in range(n):
        lang = rng.choice(langs)
        if quiet and rng.random() < quiet:
            words = rng.choices(qvocab[lang], cum_weights=qcum[lang], k=rng.randint(8, 45))
        else:
            words = rng.choices(vocab[lang], cum_weights=cum[lang], k=rng.randint(8, 45))
        if lang == "ar":
            words = [
                (rng.choice(PROCLITIC) + w if rng.random() < 0.15 else w)
                + (rng.choice(DIACRITICS) if rng.random() < 0.05 else "")
                for w in words
            ]
        parts = []
        for w in words:
            r = rng.random()
            sep = " "
            if r < 0.06:
                sep = "، " if lang != "en" else ", "
            elif r < 0.08:
                sep = "\n"
            elif r < 0.10 and lang == "fa":
                sep = "\u200c"
            parts.append(w + sep)
        text = "".join(parts)
        if names and rng.random() < 0.01:  # 1 % of the messages name someone on a watch list
            text = f"{text} {rng.choice(names)} {rng.choice(vocab[lang][:60])}"
        if rng.random() < 0.2:
            text = f"#{rng.choice(vocab[lang][40:200])}_{rng.choice(vocab[lang][40:200])} | " + text
        platform = "x" if rng.random() < 0.3 else "telegram"
        out.append(
            Message(
                platform=platform,
                channel_id=str(-1001000000000 - (i % 7)) if platform == "telegram" else str(1000 + i % 7),
                message_id=str(i),
                date=t0 + timedelta(seconds=i),
                text=text,
                channel=channels[i % 7],
                lang=lang if platform == "x" else None,
            )
        )
    return out


# -- rules ----------------------------------------------------------------------------------
def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join('"' + s.replace('"', '\\"') + '"' for s in items) + "]"


RULES_PER_LIST = 10


def make_rules(rng: random.Random, vocab: dict[str, list[str]], n: int, directory: Path,
               names: list[str] | None = None) -> None:
    """``n`` rules; with ``names``, also watch lists (``lists/names-NNNN.csv``, one per 10
    rules, the names split evenly) and each rule ``... or who`` with ``who: ["@list:..."]``."""
    known = {w for v in vocab.values() for w in v}
    terms_only = {lang: [w for w in make_vocab(rng, lang, 4000)[-3000:] if w not in known] for lang in vocab}
    def term(lang: str) -> str:
        v = vocab[lang]
        # Like real watch lists: most terms are specific (rare or absent in a given stream),
        # some are words the stream uses often.
        r = rng.random()
        pool = terms_only[lang] if r < 0.7 else v[2000:] if r < 0.9 else v[len(COMMON[lang]) : 2000]
        words = [rng.choice(pool) for _ in range(rng.choice([1, 1, 1, 2]))]
        r = rng.random()
        if r < 0.08 and len(words[-1]) > 4:
            words[-1] = words[-1][:-1] + "*"
        elif r < 0.11 and len(words[0]) > 4:
            words[0] = "*" + words[0][1:]
        return " ".join(words)

    for i in range(n):
        lang = rng.choice(["ar", "ar", "fa", "en", "en"])
        lines = [f"id: bench-{i:04d}", f"title: bench rule {i}", f"level: {rng.choice(['low', 'medium', 'high'])}"]
        if i % 2 == 0:
            # half the rules: a and b, b a common word
            lines += [
                "match:",
                f"  a: {_yaml_list([term(lang) for _ in range(rng.randint(1, 3))])}",
                f"  b: {_yaml_list([rng.choice(COMMON[lang][:10])])}",
                "condition: a and b",
            ]
        else:
            shape = rng.random()
            if rng.random() < 0.15:
                lines.append(f"sources: {_yaml_list([rng.choice(['telegram', 'x', 'telegram:*news*', 'x:presstv'])])}")
            if rng.random() < 0.1:
                lines.append(f"languages: [{lang}]")
            lines.append("match:")
            lines.append(f"  claim: {_yaml_list([term(lang) for _ in range(rng.randint(3, 8))])}")
            if shape < 0.3:
                lines.append(f"  group:\n    all: {_yaml_list([term(lang) for _ in range(2)])}")
                lines.append(f"  denial: {_yaml_list([term(lang)])}")
                lines.append("condition: claim and group and not denial")
            elif shape < 0.5:
                lines.append(f"  near_it:\n    near: {{terms: {_yaml_list([term(lang), term(lang)])}, within: {rng.randint(3, 10)}}}")
                lines.append("condition: claim or near_it")
            elif shape < 0.55:
                word = rng.choice(vocab[lang][len(COMMON[lang]) : 300]).rstrip("*")
                lines.append(f"  rx:\n    regex: ['{word}\\s+\\pL+']")
                lines.append("condition: claim and rx")
            elif shape < 0.75:
                lines.append(f"  other: {_yaml_list([term(lang) for _ in range(rng.randint(2, 5))])}")
                lines.append("condition: 1 of them")
            # else: a single selection
        if names:
            cond = next(k for k, line in enumerate(lines) if line.startswith("condition:")) if any(
                line.startswith("condition:") for line in lines) else None
            who = f'  who: ["@list:names-{i // RULES_PER_LIST:04d}"]'
            if cond is None:
                sel = next(line.split(":")[0].strip() for line in lines[lines.index("match:") + 1:])
                lines += [who, f"condition: {sel} or who"]
            else:
                lines[cond] = f"condition: ({lines[cond][len('condition:'):].strip()}) or who"
                lines.insert(cond, who)
        (directory / f"bench-{i:04d}.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if names:
        lists = directory / "lists"
        lists.mkdir(exist_ok=True)
        n_lists = -(-n // RULES_PER_LIST)
        per = -(-len(names) // n_lists)
        for j in range(n_lists):
            (lists / f"names-{j:04d}.csv").write_text("\n".join(names[j * per : (j + 1) * per]) + "\n", encoding="utf-8")


# -- measuring ------------------------------------------------------------------------------
EXPLAIN = False  # --explain: read every hit's matches (as the archive and alerts do)


def run_share(matcher: Matcher, messages: list[Message]) -> tuple[int, float, float]:
    """(hits, wall seconds, CPU seconds of this process)."""
    t, c = time.perf_counter(), time.process_time()
    hits = 0
    match = matcher.match
    if EXPLAIN:
        for m in messages:
            for h in match(m):
                h.matches  # noqa: B018 - computed on first read
                hits += 1
    else:
        for m in messages:
            hits += len(match(m))
    return hits, time.perf_counter() - t, time.process_time() - c


def run_workers(matcher: Matcher, messages: list[Message], workers: int) -> tuple[float, int]:
    """Aggregate msgs/s of ``workers`` forked processes, each matching a contiguous share."""
    import gc

    gc.collect()
    gc.freeze()  # children's collections must not touch (and so copy) the shared pages
    pids = []
    r_fds = []
    size = -(-len(messages) // workers)
    start_at = time.perf_counter()
    for w in range(workers):
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(r)
            hits, _, _ = run_share(matcher, messages[w * size : (w + 1) * size])
            os.write(wfd, str(hits).encode())
            os._exit(0)
        os.close(wfd)
        pids.append(pid)
        r_fds.append(r)
    total_hits = 0
    for pid, r in zip(pids, r_fds):
        os.waitpid(pid, 0)
        total_hits += int(os.read(r, 64) or b"0")
        os.close(r)
    elapsed = time.perf_counter() - start_at
    return len(messages) / elapsed, total_hits


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux
        return float("nan")


def scale(args: argparse.Namespace, vocab: dict[str, list[str]], messages: list[Message], sizes: list[int]) -> None:
    """One line per rule count (with ``--names``, default 20 per rule: the watch lists too):
    patterns, load, compile and cached load (wall and CPU seconds), matcher RSS, msgs/s (one
    process)."""
    import gc

    print(f"{'rules':>7} {'names':>8} {'terms':>8} {'patterns':>9} {'load s':>7} {'compile s':>9} {'(CPU s)':>9} "
          f"{'cached s':>8} {'(CPU s)':>7} {'matcher MB':>10} {'est. MB':>8} {'msgs/s':>8} {'per CPU s':>9} "
          f"{'hits/msg':>8} {'load avg':>8}")
    for n in sizes:
        names = None
        if args.names:
            names = make_names(random.Random(args.seed + 2), args.names_per_rule * n)
        with tempfile.TemporaryDirectory() as tmp:
            rules_dir = Path(tmp) / "rules"
            rules_dir.mkdir()
            make_rules(random.Random(args.seed + 1), vocab, n, rules_dir, names)
            gc.collect()
            rss_before = current_rss_mb()
            t, c = time.perf_counter(), cpu_with_children()
            ruleset = load_rules([rules_dir])
            t_load, c_load = time.perf_counter() - t, cpu_with_children() - c
            t, c = time.perf_counter(), time.process_time()
            matcher = Matcher(ruleset)
            t_compile, c_compile = time.perf_counter() - t, time.process_time() - c
            t_cached, c_cached = cached_load([rules_dir])
        s = matcher.stats()
        matcher.prepare()  # the regexes (RE2), as the daemon compiles them: not counted as matching
        hits, elapsed, cpu = run_share(matcher, messages)
        gc.collect()
        matcher_mb = current_rss_mb() - rss_before  # rule set + patterns + the per-field word caches after the run
        print(f"{n:>7,} {len(names or ()):>8,} {s['terms']:>8,} {s['patterns']:>9,} {t_load:>7.2f} {t_compile:>9.2f} "
              f"{c_load + c_compile:>9.2f} {t_cached:>8.2f} {c_cached:>7.2f} {matcher_mb:>10.0f} "
              f"{s['memory_bytes'] / 2**20:>8.1f} {len(messages) / elapsed:>8,.0f} {len(messages) / cpu:>9,.0f} "
              f"{hits / len(messages):>8.2f} {load_average().split()[0]:>8}", flush=True)
        del matcher, ruleset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--naive", type=int, default=None,
                    help="messages for the naive loop (default 1,000, fewer above 1,000 rules)")
    ap.add_argument("--workers", type=int, default=2, help="also measure N forked processes (0: skip)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="profile the compiled matcher")
    ap.add_argument("--actors", default=None, help="also load this actor file (e.g. rules/actors.yml): hits get actor tags")
    ap.add_argument("--pack", default=str(ROOT / "rules"),
                    help="also measure this rule pack plus the generated rules (default: the shipped rules/; '' to skip)")
    ap.add_argument("--names", type=int, default=None,
                    help="distinct watch-list names in lists/*.csv referenced by the rules (default 20 per rule; 0: none)")
    ap.add_argument("--quiet", type=float, default=0.0,
                    help="fraction of messages made of everyday words only, no attack vocabulary "
                         "(0: the default stream, which uses the rules' words at a high rate; 0.95: a realistic channel)")
    ap.add_argument("--scale", default=None, help="comma-separated rule counts: the scaling table only")
    ap.add_argument("--explain", action="store_true",
                    help="also read every hit's matches (spans in the original text; computed on first read, "
                         "as the archive, alerts and `rules test` do); without it the rate counts hits only")
    args = ap.parse_args()
    global EXPLAIN
    EXPLAIN = args.explain
    if args.naive is None:
        args.naive = 1000 if args.rules <= 1000 else max(20, 200_000 // args.rules)

    rng = random.Random(args.seed)
    vocab = {lang: make_vocab(rng, lang, 6000) for lang in ("en", "ar", "fa")}
    t = time.perf_counter()
    args.names_per_rule = 20 if args.names is None else args.names // max(args.rules, 1)
    if args.names is None:
        args.names = 20 * args.rules
    names = make_names(random.Random(args.seed + 2), args.names) if args.names else None
    messages = make_messages(rng, vocab, args.messages, names, args.quiet)
    args.name_list = names
    print(f"generated {len(messages):,} messages in {time.perf_counter() - t:.1f}s "
          f"(avg {sum(len(m.text) for m in messages) / len(messages):.0f} chars; "
          f"{args.quiet:.0%} everyday text without attack vocabulary)")

    if args.scale:
        scale(args, vocab, messages, [int(x) for x in args.scale.split(",")])
        return

    with tempfile.TemporaryDirectory() as tmp:
        rules_dir = Path(tmp) / "rules"
        rules_dir.mkdir()
        make_rules(random.Random(args.seed + 1), vocab, args.rules, rules_dir, names)  # independent of --messages
        if args.actors:
            (rules_dir / "actors.yml").write_bytes(Path(args.actors).read_bytes())
        sets = [("generated only", [rules_dir])]
        if args.pack:
            sets.append((f"pack ({args.pack}) + generated", [Path(args.pack), rules_dir]))
        ok = True
        for label, paths in sets:
            print(f"-- {label} --")
            ok = measure(args, paths, messages) and ok
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:,.0f} MB (this process, messages included); load average {load_average()}")
    if not ok:
        sys.exit(1)


def cpu_with_children() -> float:
    """CPU seconds of this process and of its finished children (the rule loader may parse
    the watch lists in a forked child: its CPU counts too)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def cached_load(paths: list[Path]) -> tuple[float, float]:
    """Seconds (wall, CPU) to load the compiled set from a fresh on-disk cache (written
    first; the best of three loads, each with the cache key computed from the files)."""
    import gc

    from monitor.rules import cache

    with tempfile.TemporaryDirectory() as d:
        old = os.environ.get(cache.CACHE_ENV)
        os.environ[cache.CACHE_ENV] = d
        try:
            cache.load_matcher(paths)  # miss: builds and writes
            best = (float("inf"), float("inf"))
            for _ in range(3):
                statuses: list[str] = []
                gc.collect()
                t, c = time.perf_counter(), time.process_time()
                got = cache.load_matcher(paths, on_status=statuses.append)
                best = min(best, (time.perf_counter() - t, time.process_time() - c))
                assert statuses == ["hit"], statuses
                t = time.perf_counter()
                got.prepare()  # the regexes (RE2), otherwise compiled on first use
                cached_load.prepare = time.perf_counter() - t  # type: ignore[attr-defined]
                del got
        finally:
            if old is None:
                os.environ.pop(cache.CACHE_ENV, None)
            else:
                os.environ[cache.CACHE_ENV] = old
    return best


def measure(args: argparse.Namespace, paths: list[Path], messages: list[Message]) -> bool:
    """Load, compile, match all messages, compare with the naive loop; True when the hits agree."""
    import gc

    gc.collect()
    rss_before = current_rss_mb()
    t, c = time.perf_counter(), cpu_with_children()
    ruleset = load_rules(paths)
    t_load, c_load = time.perf_counter() - t, cpu_with_children() - c
    t, c = time.perf_counter(), time.process_time()
    matcher = Matcher(ruleset)
    t_compile, c_compile = time.perf_counter() - t, time.process_time() - c
    gc.collect()
    matcher_mb = current_rss_mb() - rss_before  # the rule set and its compiled matcher
    s = matcher.stats()
    if matcher.classifier is not None:
        print(f"with the learned classifier '{matcher.classifier.spec.id}' ({matcher.classifier.model.size():,} features): "
              "it scores every message")
    print(f"rules: {s['rules']:,} loaded in {t_load:.2f}s (parse + validate; {c_load:.2f} CPU s incl. a child's), compiled in "
          f"{t_compile:.2f}s ({c_compile:.2f} CPU s) -> {s['terms']:,} terms, {s['patterns']:,} patterns, "
          f"{s['regexes']} regexes, {s['unanchored_rules']} unanchored rules; "
          f"load + compile {t_load + t_compile:.2f}s ({c_load + c_compile:.2f} CPU s); "
          f"rule set + matcher {matcher_mb:.0f} MB RSS; load average {load_average()}")
    t_cached, c_cached = cached_load(paths)
    print(f"cached:   load from the on-disk cache of compiled sets {t_cached:.2f}s ({c_cached:.2f} CPU s; "
          f"restart, rules test; + {cached_load.prepare:.2f}s of regexes (RE2) compiled on first use; "  # type: ignore[attr-defined]
          f"load average {load_average()})")

    # naive loop on the first N messages
    naive = NaiveMatcher(ruleset)
    head = messages[: args.naive]
    t = time.perf_counter()
    naive_hits = [set(naive.match_ids(m)) for m in head]
    t_naive = time.perf_counter() - t
    naive_rate = len(head) / t_naive
    # the rules' hits (the pack's learned classifier, rules/classifier.yml, is not the naive loop's)
    compiled_head = [{h.rule_id for h in matcher.match(m, classifier=False)} for m in head]
    same = compiled_head == naive_hits
    n_naive_hits = sum(len(h) for h in naive_hits)

    # compiled matcher on everything; the fields' regexes (RE2) are compiled first, as the
    # daemon does (Matcher.prepare), so a one-time compilation is not counted as matching
    t = time.perf_counter()
    matcher.prepare()
    t_prepare = time.perf_counter() - t
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
    hits, elapsed, cpu = run_share(matcher, messages)
    if args.profile:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    rate = len(messages) / elapsed
    print(f"compiled{' + matches' if EXPLAIN else ''}: {len(messages):,} messages in {elapsed:.2f}s = {rate:,.0f} msgs/s (1 process; "
          f"{len(messages) / cpu:,.0f} msgs per CPU second), {hits:,} hits ({hits / len(messages):.2f}/message); "
          f"regexes compiled before: {t_prepare:.2f}s; load average {load_average()}")
    print(f"naive:    {len(head):,} messages in {t_naive:.2f}s = {naive_rate:,.0f} msgs/s, {n_naive_hits:,} hits")
    print(f"ratio:    {rate / naive_rate:,.0f}x")
    print(f"same hits on the first {len(head):,} messages: {'yes' if same else 'NO'}")
    if not same:
        for i, (a, b) in enumerate(zip(compiled_head, naive_hits)):
            if a != b:
                print(f"  message {i}: compiled-only {sorted(a - b)}, naive-only {sorted(b - a)}: {head[i].text[:120]!r}")
                break
    if args.workers > 1 and hasattr(os, "fork"):
        agg, agg_hits = run_workers(matcher, messages, args.workers)
        print(f"compiled: {agg:,.0f} msgs/s with {args.workers} processes ({os.cpu_count()} CPUs), {agg_hits:,} hits")
    return same


if __name__ == "__main__":
    main()
