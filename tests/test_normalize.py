"""Normalisation: one table of (input, expected) pairs per rule of docs/rules.md."""

from __future__ import annotations

import random
import re

import pytest

from monitor.rules.morphology import (
    ENCLITICS_N, PERSIAN_AFTER_HEH_N, PERSIAN_PERFECT, PERSIAN_SUFFIXES_N, STRIP_PROCLITICS, fast_word_forms, merged_pairs,
    word_forms,
)
from monitor.text import (
    PROCLITICS,
    WORD_RE,
    normalize,
    OffsetMap,
    normalize_with_offsets,
    normalized_offsets,
    original_span,
    proclitic_forms,
    proclitic_stems,
    scan_text,
    search_text,
    text_span,
    word_text,
)

CASES = [
    # casefold, NFKC
    ("ISIS Claims", "isis claims"),
    ("Straße", "strasse"),
    ("ﬁnal", "final"),  # ligature (NFKC)
    ("ＡＢＣ１２", "abc12"),  # fullwidth (NFKC)
    ("½", "1⁄2"),
    # Latin diacritics folded
    ("Kermān", "kerman"),
    ("Ḥamās", "hamas"),
    ("café", "cafe"),
    ("cafe\u0301", "cafe"),  # decomposed accent
    ("İstanbul", "istanbul"),
    # Arabic diacritics: harakat, tanween, shadda, sukun, superscript alef
    ("الدَّوْلَةُ", "الدوله"),
    ("تبنّى", "تبني"),
    ("هجوماً", "هجوما"),
    ("رحمٰن", "رحمن"),
    # tatweel
    ("الدولـــة", "الدوله"),
    # alef forms
    ("أعلن", "اعلن"),
    ("إعلان", "اعلان"),
    ("آمر", "امر"),
    ("ٱلله", "الله"),
    # yeh / alef maqsura, kaf, heh, hamza carriers
    ("مصطفى", "مصطفي"),
    ("ایران", "ايران"),
    ("کرمان", "كرمان"),
    ("خانۀ", "خانه"),
    ("حزبی دیموکراتی کوردستان ە", "حزبي ديموكراتي كوردستان ه"),  # Kurdish ae (U+06D5) folds like ۀ
    ("دولة", "دوله"),
    ("مؤتمر", "موتمر"),
    ("رئيس", "رييس"),
    # Arabic presentation forms (NFKC)
    ("ﻻ", "لا"),
    ("ﷲ", "الله"),
    # zero-width: ZWNJ -> space, others removed; bidi controls removed
    ("می\u200cخواهند", "مي خواهند"),
    ("دا\u200bعش", "داعش"),
    ("is\u200dis", "isis"),
    ("\u202bداعش\u202c", "داعش"),
    ("\ufeffword", "word"),
    # Eastern Arabic and Persian digits
    ("٢٠٢٤", "2024"),
    ("۱۴۰۲", "1402"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_normalize_table(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(("text", "_expected"), CASES)
def test_offsets_map_every_output_char_to_its_source(text: str, _expected: str) -> None:
    norm, offsets = normalize_with_offsets(text)
    assert norm == normalize(text)
    assert len(offsets) == len(norm) + 1 and offsets[-1] == len(text)
    assert offsets == sorted(offsets)
    for i, ch in enumerate(norm):
        assert ch in normalize(text[offsets[i]]) or ch == " "


@pytest.mark.parametrize(("text", "_expected"), CASES + [("al-Naba, #عاجل: claim!", "")])
def test_word_text_has_the_same_words_and_length(text: str, _expected: str) -> None:
    wt = word_text(text)
    norm = normalize(text)
    assert len(wt) == len(norm)
    assert wt.split() == WORD_RE.findall(norm)
    assert [m.span() for m in re.finditer(r"\S+", wt)] == [m.span() for m in WORD_RE.finditer(norm)]


def test_span_maps_back_to_original_text_with_diacritics() -> None:
    text = "أعلنَ تنظيمُ الدَّوْلَةِ مسؤوليتَه"
    norm, offsets = normalize_with_offsets(text)
    start = norm.index("الدوله")
    s, e = original_span(offsets, start, start + len("الدوله"))
    assert text[s:e] == "الدَّوْلَة"
    s, e = text_span(text, offsets, start, start + len("الدوله"))
    assert text[s:e] == "الدَّوْلَةِ"  # trailing kasra included


@pytest.mark.parametrize(
    ("word", "must_have", "must_not_have"),
    [
        ("الدوله", {"والدوله", "بالدوله", "للدوله", "وللدوله", "فبالدوله", "كالدوله"}, {"الدوله", "والالدوله", "لالدوله"}),
        ("دوله", {"ودوله", "الدوله", "والدوله", "بدوله", "لدوله", "للدوله", "فبالدوله"}, {"دوله", "لالدوله"}),
        ("الله", {"والله", "بالله", "لله", "ولله"}, set()),
        ("isis", set(), {"visis"}),
        ("و", set(), {"وو"}),
    ],
)
def test_proclitic_forms(word: str, must_have: set[str], must_not_have: set[str]) -> None:
    forms = set(proclitic_forms(word))
    assert must_have <= forms
    assert not (must_not_have & forms)
    if not must_have:
        assert forms == set()


def test_proclitic_stems_and_search_text_unchanged_api() -> None:
    assert "الدوله" in proclitic_stems("والدوله")
    assert "و" in PROCLITICS and "لل" in PROCLITICS
    st = search_text("وأعلنت والدولة")
    assert st.startswith("واعلنت والدوله\n") and "الدوله" in st.split()


@pytest.mark.parametrize(("text", "_expected"), CASES + [("الدَّوْلَةُ ﷲ Straße e\u0301\u200c", "")])
def test_offset_map_equals_the_offsets_list(text: str, _expected: str) -> None:
    _norm, offsets = normalize_with_offsets(text)
    m = OffsetMap(text)
    assert len(m) == len(offsets)
    assert [m[i] for i in range(len(offsets))] == offsets
    assert normalized_offsets(text) == offsets
    # identity: the matcher's hit spans skip the map when no character changes length
    assert m.identity == (offsets == list(range(len(text) + 1))), text


@pytest.mark.parametrize(("text", "_expected"), CASES + [("الدَّوْلَةُ ﷲ Straße e\u0301\u200c", "")])
def test_offset_map_text_span_equals_text_span(text: str, _expected: str) -> None:
    """The map's one-call span of a normalised range (the matcher's hit spans) is
    :func:`text_span` of it, for every non-empty range, harakat, ligatures and ZWNJ included."""
    from monitor.text import text_span

    m = OffsetMap(text)
    n = len(m) - 1
    for start in range(n):
        for end in range(start + 1, n + 1):
            assert m.text_span(text, start, end) == text_span(text, m, start, end), (text, start, end)


def test_offset_map_of_ascii_text_is_the_identity() -> None:
    """ASCII text (any of the 128 code points, controls included) takes the map's shortcut:
    the identity, which is what the offsets list says for it."""
    rng = random.Random(11)
    texts = ["", "a", "\x00\x7f", "".join(map(chr, range(128)))]
    texts += ["".join(chr(rng.randrange(128)) for _ in range(rng.randint(1, 60))) for _ in range(2000)]
    for text in texts:
        _norm, offsets = normalize_with_offsets(text)
        m = OffsetMap(text)
        assert m.identity and offsets == list(range(len(text) + 1)), repr(text)
        assert len(m) == len(offsets) and [m[i] for i in range(len(offsets))] == offsets


# -- the matcher's word analysis (monitor.rules.morphology) ----------------------------------


def forms(word: str) -> set[str]:
    return set(word_forms(scan_text(word)))


@pytest.mark.parametrize(
    ("word", "must_have", "must_not_have"),
    [
        ("مسؤوليته", {"مسووليته", "مسووليه"}, set()),
        ("مسؤوليتها", {"مسووليه"}, set()),
        ("ومسؤوليتهم", {"مسووليه", "مسووليتهم"}, set()),
        ("فبالدولة", {"الدوله", "دوله", "بالدوله"}, {"دول"}),
        ("للدولة", {"الدوله", "دوله"}, set()),
        ("لله", {"الله"}, {"له", "اله"}),
        ("دولة", {"دوله"}, {"دول"}),  # ة is not the pronoun ه
        ("تبنى", {"تبني"}, {"تبن"}),  # nor is ى the pronoun ي
        ("تبناه", {"تبني"}, set()),
        ("كتابهم", {"كتاب"}, set()),
        ("ولي", {"ولي"}, {"لي"}),  # never stripped below 3 letters
        ("هنا", {"هنا"}, {"ه"}),
        ("بیانیهای", {"بيانيه"}, set()),
        ("کشورهای", {"كشور"}, set()),
        ("کشورهایی", {"كشور"}, set()),
        # the perfect's copula after a past participle, written joined (the pages lost their ZWNJs)
        ("کشتهاند", {"كشته"}, set()),
        ("شدهاست", {"شده"}, set()),
        ("کشورهاست", set(), {"كشوره", "كشورها"}),  # no participle before it
        ("سپاهاست", set(), {"سپاه"}),
        ("بزرگترین", {"بزرگ"}, set()),
        ("بزرگتر", {"بزرگ"}, set()),
        ("میشود", {"ميشود"}, {"شود"}),
        ("ISIS", {"isis"}, set()),
    ],
)
def test_word_forms(word: str, must_have: set[str], must_not_have: set[str]) -> None:
    got = forms(word)
    assert must_have <= got, got
    assert not (must_not_have & got), got
    assert word_forms(scan_text(word))[0] == normalize(word)  # the word itself comes first


@pytest.mark.parametrize(
    ("word", "must_have", "must_not_have"),
    [
        # Persian attaches none of Arabic's proclitics: بامداد (dawn) is not ب + امداد (relief),
        # بزنید keeps its verb prefix, و and the prepositions are written apart
        ("بامداد", {"بامداد"}, {"امداد"}),
        ("بزنید", {"بزنيد"}, {"زنيد"}),
        ("وزارت", {"وزارت"}, {"زارت"}),
        ("والقسام", {"والقسام"}, {"القسام", "قسام"}),
        ("لبنان", {"لبنان"}, {"بنان"}),
        # ... but the Arabic article stays in the Arabic names Persian borrows
        ("القسام", {"القسام", "قسام"}, set()),
        ("البغدادی", {"البغدادي", "بغدادي"}, set()),
        # the suffixes are stripped as in any message
        ("بیانیهای", {"بيانيه"}, set()),
        ("کشورهای", {"كشور"}, set()),
        ("مسؤولیتها", {"مسووليت"}, set()),
    ],
)
def test_word_forms_of_a_persian_message(word: str, must_have: set[str], must_not_have: set[str]) -> None:
    got = set(word_forms(scan_text(word), persian=True))
    assert must_have <= got, got
    assert not (must_not_have & got), got
    assert got == set(fast_word_forms(scan_text(word), persian=True))
    # the same word in an Arabic message loses its proclitics
    if word in ("بامداد", "والقسام"):
        assert must_not_have <= set(word_forms(scan_text(word)))


def test_fast_word_forms_are_word_forms() -> None:
    """The matcher's fast_word_forms gives exactly word_forms's forms (folded token first) on
    every proclitic x core x suffix combination of short cores, the words of the parametrised
    cases above and random words; a form it drops or adds fails here."""
    import random

    rng = random.Random(8)
    letters = "ابتثجحخدذرزسشصضطظعغفقكلمنهويةىپچژگ"
    prefixes = sorted(STRIP_PROCLITICS) + ["", "ه", "ال", "ل", "لل"]
    suffixes = [*ENCLITICS_N, *PERSIAN_SUFFIXES_N, *PERSIAN_AFTER_HEH_N, *PERSIAN_PERFECT, ""]
    cores = ["", "ه", "ت", "ا", "ل", "لل", "ها", "الل", "تا", "دوله", "دولة", "كتاب", "مسووليت", "تبنا", "بيانيه",
             "ده", "ته", "كشته", "شده", "سپاه", "كشورها"]
    cores += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 6))) for _ in range(60)]
    words = {p + c + s for p in prefixes for c in cores for s in suffixes}
    words |= {scan_text(w) for w in ("مسؤوليتها", "فبالدولة", "للدولة", "لله", "تبناه", "بیانیهای", "ISIS", "1402")}
    words |= {"".join(rng.choice(letters) for _ in range(rng.randint(1, 12))) for _ in range(20_000)}
    words.discard("")
    for w in words:
        slow, fast = word_forms(w), fast_word_forms(w)
        assert fast[0] == slow[0] and len(fast) == len(set(fast)) and set(fast) == set(slow), w
        slow, fast = word_forms(w, persian=True), fast_word_forms(w, persian=True)
        assert fast[0] == slow[0] and len(fast) == len(set(fast)) and set(fast) == set(slow), w


def test_scan_text_keeps_teh_marbuta_and_alef_maqsura_with_word_text_offsets() -> None:
    text = "الدَّولةُ تبنّى ﺓ، كتابه‌ها"
    st = scan_text(text)
    assert st.split() == ["الدولة", "تبنى", "ة", "كتابه", "ها"]
    assert len(st) == len(word_text(text))
    assert st.replace("ة", "ه").replace("ى", "ي") == word_text(text)


def test_pieces_of_persian_words_are_joined() -> None:
    tokens = scan_text("بیانیه‌ای سپاه می‌شود، می شود ها").split()
    assert merged_pairs(tokens) == [(0, "بيانيهاي"), (3, "ميشود"), (5, "ميشود"), (6, "شودها")]
    # the perfect's copula joins a past participle only ("کشته‌اند", "شده است"; not "سپاه است")
    tokens = scan_text("کشته‌اند سپاه است شده است").split()
    assert merged_pairs(tokens) == [(0, "كشتهاند"), (4, "شدهاست")]
    assert merged_pairs(["ها", "ای"]) == []  # a piece never joins a piece
    assert merged_pairs("isis ها".split()) == []  # only Arabic-script words take them


# -- the codec fast path of normalize / word_text / scan_text --------------------------------
def _slow(kind: str, text: str) -> str:
    from monitor import text as T

    table = {"normalize": T._TABLE, "word_text": T._WORD_TABLE, "scan_text": T._SCAN_TABLE}[kind]
    return text.translate(table)


_FAST = {"normalize": normalize, "word_text": word_text, "scan_text": scan_text}


@pytest.mark.parametrize("kind", sorted(_FAST))
def test_fast_path_equals_the_table_on_every_bmp_code_point(kind: str) -> None:
    fast = _FAST[kind]
    for cp in list(range(0x10000)) + [0x1D400, 0x1F600, 0x1F1EE, 0xE0041, 0xE0100, 0x10FFFF]:
        ch = chr(cp)
        assert fast(ch) == _slow(kind, ch), hex(cp)
        pair = "a" + ch + "\u0628"  # next to characters of the fast alphabet
        assert fast(pair) == _slow(kind, pair), hex(cp)


@pytest.mark.parametrize("kind", sorted(_FAST))
def test_fast_path_equals_the_table_on_random_texts(kind: str) -> None:
    import random

    from monitor.text import FAST_ALPHABET

    rng = random.Random(7)
    fast = _FAST[kind]
    others = "😀🇮🇷ﷲﻻﬁＡ…İßΣКاً\u06d6\u200c\u202b\ufffe" + "".join(chr(rng.randrange(0x80, 0x3000)) for _ in range(200))
    taken = 0
    for n in range(4_000):
        k = rng.randrange(0, 60)
        if n % 2:  # only characters of the fast alphabet: the codec path
            text = "".join(rng.choice(FAST_ALPHABET) for _ in range(k))
        else:
            text = "".join(rng.choice(FAST_ALPHABET if rng.random() < 0.9 else others) for _ in range(k))
        assert fast(text) == _slow(kind, text), repr(text)
        taken += n % 2
    assert taken == 2_000


@pytest.mark.parametrize("kind", sorted(_FAST))
def test_fast_path_equals_the_table_on_ascii_texts(kind: str) -> None:
    """ASCII text takes its own path (ASCII bytes, no charmap): the same result as the table."""
    import random

    rng = random.Random(11)
    fast = _FAST[kind]
    for _ in range(3_000):
        text = "".join(chr(rng.randrange(0x80)) for _ in range(rng.randrange(0, 80)))
        assert fast(text) == _slow(kind, text), repr(text)


def test_fast_alphabet_covers_arabic_persian_and_ascii_text() -> None:
    from monitor.text import FAST_ALPHABET

    assert len(FAST_ALPHABET) <= 256
    for text in ("ISIS Claims, \"responsibility\"! #tag_1", "الدَّوْلَةُ الإسلامية تبنّت؛ «هجوماً» ٣٤",
                 "بیانیه\u200cای سپاه پاسداران: می\u200cشود ۱۴۰۲؟", "ـ\u200f\u200e\u00a0—–“”‘’•"):
        assert set(text) <= set(FAST_ALPHABET), set(text) - set(FAST_ALPHABET)
