"""The matcher's scan in one C pass (monitor/rules/_scan.c, monitor/rules/scan.py) against the
Python steps it replaces: scan_text, the split, one look-up per word."""

from __future__ import annotations

import os
import random

import pytest

from monitor.rules import scan as scan_mod
from monitor.rules.scan import python_scan_words, scan_words
from monitor.text import scan_text

# outside CI a machine without a C compiler skips the C-only tests; in CI (CI=true) they run, and
# fail, when `make install` did not build the extension
needs_c = pytest.mark.skipif(scan_mod._c_scan is None and os.environ.get("CI") != "true",
                             reason="the C extension is not built (no compiler at install)")


def test_the_c_extension_is_built_in_ci() -> None:
    if os.environ.get("CI") != "true":
        pytest.skip("only CI requires the C extension (CI=true)")
    assert scan_mod._c_scan is not None, "make install did not build monitor/rules/_scan.c"


class _Missing(dict):
    """A look-up like the matcher's: a word not in it is analysed (here: its length) and kept."""

    def __init__(self) -> None:
        super().__init__()
        self.missed: list[str] = []

    def __missing__(self, token: str) -> int:
        self.missed.append(token)
        self[token] = value = len(token)
        return value


_PIECES = frozenset({"ها", "می", "ای"})


def _same(text: str) -> None:
    a, b = _Missing(), _Missing()
    # the sets hold some of the text's words (each word's value here is its length: never empty)
    words = scan_text(text).split()
    hot = set(words[1::3])
    gated = set(words[2::5])
    pieces = _PIECES | set(words[:1])
    want = python_scan_words(text, a, pieces, hot, gated)
    got = scan_words(text, b, pieces, hot, gated)
    assert got == want, repr(text)
    st, tokens, values, nonempty, flags, gvals = got
    assert st == scan_text(text)
    assert tokens == words
    assert values == [len(t) for t in tokens] and nonempty == values
    assert flags == bool(words) | bool(hot) << 1 | bool(gated) << 2
    assert gvals == [len(t) for t in tokens if t in gated]
    assert b.missed == a.missed  # each new word analysed once, in the text's order
    for tok in tokens:
        assert type(tok) is str


def test_flags_and_empty_values() -> None:
    class Lookup(dict):
        def __missing__(self, token: str) -> frozenset:
            return frozenset() if token.startswith("x") else frozenset({len(token)})

    text = "xa bb xc dd ها"
    for fn in (scan_words, python_scan_words):
        st, tokens, values, nonempty, flags, gvals = fn(text, Lookup(), _PIECES, {"bb"}, {"zz"})
        assert tokens == ["xa", "bb", "xc", "dd", "ها"]
        assert nonempty == [frozenset({2})] * 3 and flags == 1 | 2 and gvals == []
        got = fn(text, Lookup(), frozenset(), {"xa"}, {"dd", "xc"})  # "xa", "xc": empty values, not asked
        assert got[4] == 4 and got[5] == [frozenset({2})]


def test_every_code_point_alone_and_between_letters() -> None:
    # every code point the C pass's table covers (the BMP and plane 1), a sample beyond;
    # twice: the first text with a character the table does not know takes the Python path
    # and teaches the table, the second goes through C
    covered = [cp for cp in range(scan_mod.TABLE_SIZE) if not 0xD800 <= cp < 0xE000]
    beyond = list(range(scan_mod.TABLE_SIZE, 0x110000, 0x101))
    for _ in range(2):
        for cps in (covered, beyond):
            for lo in range(0, len(cps), 0x1000):
                chars = [chr(cp) for cp in cps[lo:lo + 0x1000]]
                for c in chars[::97]:
                    _same(c)
                _same("a" + "b".join(chars) + "z")
                _same("ب" + " ".join(chars) + "ت")


@needs_c
def test_known_characters_go_through_c() -> None:
    text = "قال المتحدث 😀 باسم الحرس: «لقد أطلقنا» the IRGC‌ها said ٣ ۴ ـ"
    scan_words(text, _Missing())  # teaches the table the emoji
    got = scan_mod._c_scan(text, scan_mod._table, _Missing(), _PIECES, set(), set())
    assert got is not None and got == python_scan_words(text, _Missing(), _PIECES)
    # a character whose image is several characters is never taken by the C pass
    lig = "صلى الله عليه ﷺ"
    assert len(lig[-1].translate(scan_mod._SCAN_TABLE)) > 1
    scan_words(lig, _Missing())
    assert scan_mod._c_scan(lig, scan_mod._table, _Missing(), _PIECES, set(), set()) is None
    _same(lig)


def test_random_texts() -> None:
    rng = random.Random(7)
    pool = (
        "ابتثجحخدذرزسشصضطظعغفقكلمنهويءآأإؤئةى" + "پچژکگیۀ" + "ًٌٍَُِّْٰ" + "ـ" + "٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹"
        + "\u200c\u200d\u200b\u200e\u200f\ufeff" + "abcXYZ019_-.,;:!?#@/'\"()[]«»\t\n\r  \xa0"
        + "ﷺﻻﺑ" + "ÉéçİıßœÆ" + "Ωπж" + "😀🇮🇷👍🏽" + "\U0001d400\U0001d7ce" + "中文" + "\u2028\u3000\x1c\x85"
    )
    for _ in range(3000):
        n = rng.randrange(0, 80)
        _same("".join(rng.choice(pool) for _ in range(n)))
    long_text = "".join(rng.choice(pool) for _ in range(5000))  # more than the C pass's stack buffer
    _same(long_text)
    _same("")
    _same("   ")


@needs_c
def test_errors_and_the_lookups_own_errors() -> None:
    with pytest.raises(TypeError):
        scan_mod._c_scan("x", bytes(scan_mod._table), {}, _PIECES, set(), set())
    with pytest.raises(TypeError):
        scan_mod._c_scan("x", scan_mod._table, {}, _PIECES, set())

    class Boom(dict):
        def __missing__(self, token: str) -> None:
            raise KeyError(token)

    with pytest.raises(KeyError):
        scan_words("word", Boom())


def test_matcher_same_hits_without_the_c_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timezone
    from pathlib import Path

    from monitor.model import Message
    from monitor.rules import Matcher, load_rules

    root = Path(__file__).resolve().parent.parent
    texts = [
        "أعلنت الدولة الإسلامية مسؤوليتها عن الهجوم 😀 على القوات",
        "سپاه پاسداران مسئولیت این حمله را بر عهده گرفت‌ و گفت",
        "The Islamic State claimed responsibility for the attack ﷺ in Kerman",
        "قال المتحدث العسكري يحيى سريع إن القوات المسلحة اليمنية نفذت عملية",
        "IDF spokesperson said the strike targeted a Hezbollah commander 👍🏽",
    ]

    date = datetime(2026, 12, 1, tzinfo=timezone.utc)

    def hits(m: Matcher) -> list[str]:
        out = []
        for i, t in enumerate(texts * 2):
            msg = Message(platform="telegram", channel_id="c", message_id=str(i), date=date, text=t)
            out.extend(repr((h, h.matches)) for h in m.match(msg))
        return out

    matcher = Matcher(load_rules([root / "rules"]))
    with_c = hits(matcher)
    monkeypatch.setattr(scan_mod, "_c_scan", None)
    without = hits(matcher)
    assert with_c == without
    assert with_c  # the texts do hit the shipped pack


def test_script_counts_agree_with_the_regexes(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.rules import language

    rng = random.Random(3)
    pool = "abzAZ éÀɏḀỿ" + "ابتةۃيىكپچژگکی" + "ݐݿࢠࣿﭐ﷿ﹰ﻿" + "؀ۿ" + "0 ,.😀中Ωж\u200c"
    texts = ["".join(rng.choice(pool) for _ in range(rng.randrange(1, 40))) for _ in range(4000)]
    texts += [chr(cp) for cp in range(0x2000)] + [chr(cp) for cp in range(0xFB00, 0x10000)]
    if language._script_counts is not None:
        for t in texts[:4000]:
            a, l, f = language._script_counts(t)
            assert a == sum(map(len, language._ARABIC_RUNS.findall(t)))
            assert l == sum(map(len, language._LATIN_RUNS.findall(t)))
            assert f == (bool(language._PERSIAN_STRONG.search(t)) | bool(language._PERSIAN_WEAK.search(t)) << 1
                         | bool(language._TEH_MARBUTA.search(t)) << 2)
    with_c = [(language.script_language(t), language._letters(t)) for t in texts if not t.isascii()]
    monkeypatch.setattr(language, "_script_counts", None)
    assert with_c == [(language.script_language(t), language._letters(t)) for t in texts if not t.isascii()]


def test_word_spans() -> None:
    rng = random.Random(5)
    for _ in range(500):
        values = [frozenset(rng.sample(range(8), rng.randrange(0, 4))) for _ in range(rng.randrange(0, 30))]
        wid = rng.randrange(9)
        want = [(i, i + 1) for i, v in enumerate(values) if wid in v]
        assert scan_mod.word_spans(values, wid) == want
        assert scan_mod.python_word_spans(values, wid) == want


@needs_c
def test_token_starts() -> None:
    from itertools import accumulate, compress, repeat
    from operator import add

    rng = random.Random(9)
    pool = "ab ي  پ1\u200c😀ـ.,"
    for _ in range(2000):
        st = scan_text("".join(rng.choice(pool) for _ in range(rng.randrange(0, 40))))
        lengths = list(map(len, st.split(" ")))
        want = list(compress(accumulate(map(add, lengths, repeat(1)), initial=0), lengths))
        assert scan_mod.c_token_starts(st) == want
        assert [st[i:].split(" ")[0] for i in want] == st.split()


@pytest.mark.parametrize("c_pass", [True, False])
def test_word_cache_starting_over_mid_message_keeps_its_hot_and_gated_words(
    tmp_path, monkeypatch: pytest.MonkeyPatch, c_pass: bool,
) -> None:
    """The word cache starts over when it is full (``MAX_CACHED_WORDS``, here 4). A word known
    from an earlier message (cached, hot or gated) must still count when new words after it fill
    the cache within the same message: the message is not cold, its hits are the naive
    matcher's."""
    from monitor.rules import Matcher, load_rules
    from monitor.rules import matcher as matcher_mod
    from monitor.rules.reference import NaiveMatcher
    from rules_helpers import msg, write

    d = tmp_path / "r"
    write(d / "w.yml", "id: w\nmatch:\n  a: [kerman]\n")
    write(d / "rx.yml", "id: rx\nmatch:\n  c:\n    regex: ['\\bclaim(?:ed|s)\\W+attack']\n")
    monkeypatch.setattr(matcher_mod, "MAX_CACHED_WORDS", 4)
    if not c_pass:
        monkeypatch.setattr(scan_mod, "_c_scan", None)
    rs = load_rules([d])
    compiled, naive = Matcher(rs), NaiveMatcher(rs)
    texts = ["kerman", "kerman a1 a2 a3 a4 a5 a6", "claimed attack", "claimed attack b1 b2 b3 b4 b5 b6",
             "c1 kerman c2 c3 c4 c5 c6 c7 claimed c8 attack c9"]
    for text in texts * 3:
        m = msg(text)
        assert [h.rule_id for h in compiled.match(m)] == naive.match_ids(m), text
    assert len(compiled.fields["text"].lookup) <= 4 + 13  # the limit, at most one message over it


@needs_c
def test_word_cache_gives_the_same_scans() -> None:
    """The C pass's own word cache (keyed by a token's characters): the same tokens, values,
    non-empty values and flags as the Python path, each new word analysed once; an entry holds
    the token's value and marks (1 piece, 2 hot, 4 gated, 8 non-empty value); tokens longer than
    its max_chars are not kept; a full cache adds no more; clear() empties it."""
    rng = random.Random(11)
    pool = "ابتثجحخدذرزسشصپچژکگی" + "abcxyz019" + "😀中ÉΩ"
    words = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(300)] + ["ها", "می"]
    hot, gated = set(words[1::7]), set(words[2::11])

    class Lookup(_Missing):
        def __missing__(self, token: str) -> frozenset:  # type: ignore[override]
            self.missed.append(token)
            value = frozenset() if token.startswith("x") else frozenset({len(token)})
            if token.startswith("z"):
                hot.add(token)  # a look-up may add to the sets (as the matcher's does)
            if len(token) <= 10:
                self[token] = value
            return value

    a, b = Lookup(), Lookup()
    cache = scan_mod.new_word_cache(100_000, 10)
    for _ in range(800):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        want = python_scan_words(text, a, _PIECES, hot, gated)
        got = scan_words(text, b, _PIECES, hot, gated, cache)
        assert got == want, text
        assert all(type(t) is str for t in got[1])
    assert b.missed == a.missed
    kept = [w for w in set(b.missed) if len(w) <= 10]
    assert len(cache) == len(kept) > 100
    for w in kept:
        value, marks = cache.get(w)
        assert value == b[w]
        want_marks = (8 | (w in _PIECES) | (w in hot) << 1 | (w in gated) << 2) if value else 0
        assert marks == want_marks, w
    assert cache.get("x" * 11) is None
    cache.clear()
    assert len(cache) == 0 and cache.get(kept[0]) is None
    small = scan_mod.new_word_cache(3, 64)
    text = "aa bb cc dd ee aa dd"
    assert scan_words(text, _Missing(), _PIECES, set(), set(), small) == python_scan_words(text, _Missing(), _PIECES)
    assert scan_words(text, _Missing(), _PIECES, set(), set(), small)[2] == [2] * 7
    assert len(small) == 3
    with pytest.raises(TypeError):
        scan_mod._c_scan("x", scan_mod._table, {}, _PIECES, set(), set(), {})
