r"""One text normalisation for the matcher, the archive's search column and search queries.

Per character:

* NFKC (compatibility forms such as Arabic presentation forms and ligatures are unfolded), casefold
* Latin/Greek/Cyrillic combining diacritics removed ("Kermān" -> "kerman", "İ" -> "i")
* Arabic diacritics (harakat, tanween, shadda, sukun, superscript alef, Quranic marks) and tatweel removed
* alef forms أ إ آ ٱ -> ا ; ى ی -> ي ; ک -> ك ; ۀ ة -> ه ; ؤ -> و ; ئ -> ي
* zero-width and bidi control characters removed (ZWNJ -> space, so Persian compound halves become words)
* Eastern Arabic and Persian digits -> ASCII

Because the mapping is applied character by character, ``normalize`` is a single
``str.translate`` over a lazily filled table (or, for text of ASCII, Arabic and Persian
characters, the same mapping through a charmap codec and ``bytes.translate``: see the fast
path below), and :func:`normalize_with_offsets`
can map every output character back to its position in the original text (for hit spans).

Words are runs of letters and digits of the normalised text (:data:`WORD_RE`); ``_`` separates
words, so the hashtag ``#ولاية_خراسان`` holds the words ``ولايه`` and ``خراسان``.
:func:`word_text` is the normalised text with every other character turned into a space:
same length, same offsets, the form the rule matcher scans.
"""

from __future__ import annotations

import bisect
import codecs
import re
import unicodedata


def _ranges(*spans: tuple[int, int]) -> set[int]:
    out: set[int] = set()
    for a, b in spans:
        out.update(range(a, b + 1))
    return out


_ARABIC_MARKS = _ranges(
    (0x0610, 0x061A), (0x064B, 0x065F), (0x0670, 0x0670), (0x06D6, 0x06DC), (0x06DF, 0x06E4),
    (0x06E7, 0x06E8), (0x06EA, 0x06ED), (0x08D3, 0x08FF),
)
_TATWEEL = 0x0640
# Zero-width and bidirectional controls (Telegram texts are full of them): removed.
_ZERO_WIDTH_DROP = {0x200B, 0x200D, 0x2060, 0xFEFF, 0x200E, 0x200F, 0x061C, 0x00AD, 0x180E} | _ranges(
    (0x202A, 0x202E), (0x2066, 0x2069)
)
# Combining diacritics of Latin/Greek/Cyrillic (after decomposition) and variation selectors:
# removed, so "Kermān" and "Kerman", "İstanbul" and "istanbul" normalise alike.
_LATIN_MARKS = _ranges((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F), (0xFE00, 0xFE0F))
_DROP = frozenset(_ARABIC_MARKS | _ZERO_WIDTH_DROP | _LATIN_MARKS | {_TATWEEL})
_ZWNJ = 0x200C

_LETTER_MAP = {
    "أ": "ا",
    "إ": "ا",
    "آ": "ا",
    "ٱ": "ا",
    "ى": "ي",
    "ی": "ي",
    "ې": "ي",
    "ک": "ك",
    "ڪ": "ك",
    "ۀ": "ه",
    "ة": "ه",
    "ۃ": "ه",
    "ە": "ه",
    "ھ": "ه",
    "ہ": "ه",
    "ؤ": "و",
    "ئ": "ي",
}
_DIGITS = {chr(0x0660 + i): str(i) for i in range(10)} | {chr(0x06F0 + i): str(i) for i in range(10)}


# The matcher's scan keeps teh marbuta and alef maqsura apart from heh and yeh (see
# :func:`scan_text`): only there, so that ``دولة`` does not lose a "pronoun" ``ه``.
_SCAN_LETTER_MAP = {**_LETTER_MAP, "ة": "ة", "ۃ": "ة", "ى": "ى"}


def _unify(chars: str, letters: dict[str, str] = _LETTER_MAP) -> str:
    out = []
    for c in chars:
        cp = ord(c)
        if cp == _ZWNJ:
            out.append(" ")
        elif cp not in _DROP:
            out.append(_DIGITS.get(c) or letters.get(c) or c)
    return "".join(out)


def _map_char(ch: str, letters: dict[str, str] = _LETTER_MAP) -> str:
    cp = ord(ch)
    if cp == _ZWNJ:
        return " "
    if cp in _DROP:
        return ""
    direct = _DIGITS.get(ch) or letters.get(ch)
    if direct:
        return direct
    if cp < 128:
        return ch.lower()
    # Compatibility decomposition, drop the marks, recompose (= NFKC without the marks), casefold.
    decomposed = _unify(unicodedata.normalize("NFKD", ch), letters)
    return _unify(unicodedata.normalize("NFC", decomposed).casefold(), letters)


class _Table(dict):
    """str.translate table that computes (and caches) the mapping of unseen characters."""

    def __init__(self, letters: dict[str, str] = _LETTER_MAP) -> None:
        super().__init__()
        self.letters = letters

    def __missing__(self, cp: int) -> str | int:
        ch = chr(cp)
        out = _map_char(ch, self.letters)
        value: str | int = cp if out == ch else out
        self[cp] = value
        return value


_TABLE = _Table()
# Pre-fill ASCII quickly (casefold of A-Z).
for _cp in range(128):
    _TABLE[_cp]  # noqa: B018 - fills the cache


WORD_RE = re.compile(r"[^\W_]+")
WORD_CHAR = r"[^\W_]"  # as a regex class: a letter or digit (str.isalnum)
NON_WORD_CHAR = r"[\W_]"


def _is_word_char(c: str) -> bool:
    return c.isalnum()  # exactly what ``re``'s [^\W_] matches in a str pattern


class _WordTable(dict):
    """Like _Table, but every non-word character of the output becomes a space."""

    def __init__(self, base: _Table) -> None:
        super().__init__()
        self.base = base

    def __missing__(self, cp: int) -> str | int:
        m = self.base[cp]
        out = chr(m) if isinstance(m, int) else m
        words = "".join(c if _is_word_char(c) else " " for c in out)
        value: str | int = cp if words == chr(cp) else words
        self[cp] = value
        return value


_WORD_TABLE = _WordTable(_TABLE)
_SCAN_TABLE = _WordTable(_Table(_SCAN_LETTER_MAP))
for _cp in range(128):
    _WORD_TABLE[_cp]  # noqa: B018
    _SCAN_TABLE[_cp]  # noqa: B018


# -- fast path ------------------------------------------------------------------------------
# ``str.translate`` with a dict looks every character up at Python level (a new int object and
# a dict lookup each: ~8 us for a 170-character Arabic message). Text made only of the
# characters of ASCII, Arabic and Persian writing and their usual punctuation (the alphabet
# below, at most 256 characters) goes through C instead: encoded to one byte per character with
# a charmap codec, mapped with ``bytes.translate`` (the same per-character mapping, computed
# from the tables above: each character of the alphabet maps to nothing or to one character of
# the alphabet) and decoded. Any other character (emoji, other scripts, ligatures) makes the
# encoding fail, and the text takes ``str.translate``. Equal results for every code point:
# tests/test_normalize.py.
_FAST_CANDIDATES = (
    list(range(0x80))
    + list(range(0x0621, 0x0660))  # letters, tatweel, harakat
    + list(range(0x0660, 0x066E))  # Arabic-Indic digits, percent, separators
    + [0x0670, 0x0671, 0x067E, 0x0686, 0x0698, 0x06A9, 0x06AF, 0x06C0, 0x06CC, 0x06D4]  # Persian letters
    + list(range(0x06F0, 0x06FA))  # Persian digits
    + [0x060C, 0x061B, 0x061C, 0x061F]  # Arabic comma, semicolon, letter mark, question mark
    + list(range(0x200B, 0x2010))  # zero-width space, ZWNJ, ZWJ, LRM, RLM
    + [0x00A0, 0x00AB, 0x00AD, 0x00BB, 0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0xFEFF]
)
_FILLER = "\ufffe"  # unused byte values of the codec decode to this (a noncharacter)


def _fast_alphabet(tables: "tuple[dict, ...]") -> str:
    """The candidates whose image under every table is empty or one character of the alphabet."""
    alphabet = {chr(cp) for cp in _FAST_CANDIDATES}
    while True:
        keep = {c for c in alphabet
                if all(len(img := c.translate(t)) <= 1 and (not img or img in alphabet) for t in tables)}
        if keep == alphabet:
            break
        alphabet = keep
    return "".join(sorted(alphabet, key=ord))


def _fast_translator(table: dict, alphabet: str, encoding_map):  # noqa: ANN001, ANN202
    """``text.translate(table)`` through the codec (see above); ``str.translate`` otherwise."""
    assert alphabet[:128] == "".join(map(chr, range(128)))  # ASCII text encodes to itself
    decoding = alphabet + _FILLER * (256 - len(alphabet))
    position = {c: i for i, c in enumerate(decoding)}
    mapping = bytearray(range(256))
    delete = bytearray()
    for i, c in enumerate(decoding):
        img = c.translate(table)
        if not img:
            delete.append(i)
        else:
            mapping[i] = position[img]
    byte_table, deleted = bytes(mapping), bytes(delete)
    encode, decode = codecs.charmap_encode, codecs.charmap_decode
    # ASCII maps into ASCII (every table): an ASCII text needs no charmap, its bytes are the
    # codec's (the alphabet starts with ASCII) and the result decodes as ASCII
    ascii_closed = all(b < 0x80 for b in byte_table[:0x80])

    def translate(text: str) -> str:
        if ascii_closed and text.isascii():
            return text.encode("ascii").translate(byte_table, deleted).decode("ascii")
        try:
            raw = encode(text, "strict", encoding_map)[0]
        except UnicodeEncodeError:
            return text.translate(table)
        return decode(raw.translate(byte_table, deleted), "strict", decoding)[0]

    return translate


def _build_fast() -> tuple:
    tables = (_TABLE, _WORD_TABLE, _SCAN_TABLE)
    alphabet = _fast_alphabet(tables)
    assert len(alphabet) <= 256 and _FILLER.translate(_TABLE) == _FILLER
    encoding_map = codecs.charmap_build(alphabet + _FILLER * (256 - len(alphabet)))
    return tuple(_fast_translator(t, alphabet, encoding_map) for t in tables) + (alphabet,)


_fast_normalize, _fast_word_text, _fast_scan_text, FAST_ALPHABET = _build_fast()


def normalize(text: str) -> str:
    """Normalise ``text`` for matching and search (see module docstring)."""
    if not text:
        return ""
    return _fast_normalize(text)


def word_text(text: str) -> str:
    """``normalize(text)`` with every non-word character replaced by a space (same length).

    ``word_text(t).split()`` equals ``WORD_RE.findall(normalize(t))``.
    """
    if not text:
        return ""
    return _fast_word_text(text)


def scan_text(text: str) -> str:
    """:func:`word_text`, except that ة and ى stay as they are (the matcher's morphology needs
    them to tell ``دولة`` from ``كتابه``; :data:`FOLD` turns them into ه and ي afterwards).
    Same length and offsets as :func:`word_text`."""
    if not text:
        return ""
    return _fast_scan_text(text)


FOLD = str.maketrans({"ة": "ه", "ى": "ي"})


class _LengthTable(dict):
    """str.translate table: each character -> chr(length of its normalised form)."""

    def __missing__(self, cp: int) -> str:
        m = _TABLE[cp]
        value = chr(1 if isinstance(m, int) else len(m))
        self[cp] = value
        return value


_LENGTHS = _LengthTable()
for _cp in range(128):
    _LENGTHS[_cp]  # noqa: B018
_NOT_ONE = re.compile("[^\x01]")


def _one_to_one_class() -> str:
    """A regex class of the characters of the common blocks (Latin, Arabic, general
    punctuation) that normalise to exactly one character (computed from the table)."""
    singles = [cp for lo, hi in ((0, 0x250), (0x600, 0x700), (0x2000, 0x2070)) for cp in range(lo, hi)
               if _LENGTHS[cp] == "\x01"]
    runs: list[tuple[int, int]] = []
    for cp in singles:
        if runs and runs[-1][1] == cp - 1:
            runs[-1] = (runs[-1][0], cp)
        else:
            runs.append((cp, cp))
    esc = lambda cp: "\\U%08x" % cp  # noqa: E731
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in runs)


# characters that may be removed or expanded by normalisation: every other one maps to one
# character, so the offset maps below only look at these (usually none or a few harakat)
_MAYBE_NOT_ONE = re.compile(f"[^{_one_to_one_class()}]")


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """Normalise and return, for each output character, the index of its source character.

    The returned list has one extra final entry (``len(text)``) so an exclusive end offset
    ``e`` in the normalised text maps to ``offsets[e]`` in the original.
    """
    return normalize(text), normalized_offsets(text)


def normalized_offsets(text: str) -> list[int]:
    """The offsets part of :func:`normalize_with_offsets` (valid for :func:`word_text` too)."""
    lengths = text.translate(_LENGTHS)
    offsets: list[int] = []
    prev = 0
    for m in _NOT_ONE.finditer(lengths):  # only characters removed or expanded
        i = m.start()
        offsets.extend(range(prev, i))
        offsets.extend([i] * ord(lengths[i]))
        prev = i + 1
    offsets.extend(range(prev, len(text) + 1))
    return offsets


class OffsetMap:
    """Maps positions of the normalised text to the original text, like the list of
    :func:`normalize_with_offsets` (``m[i]``), but built from the characters normalisation
    removes or expands only: cheap when a hit needs a few spans of a long text."""

    __slots__ = ("_orig", "_norm_start", "_length", "_norm_len")

    def __init__(self, text: str) -> None:
        if text.isascii():  # every ASCII character normalises to one character: the identity
            self._orig = self._norm_start = self._length = ()
            self._norm_len = len(text)
            return
        orig: list[int] = []
        norm_start: list[int] = []
        length: list[int] = []
        delta = 0
        lengths = _LENGTHS
        for m in _MAYBE_NOT_ONE.finditer(text):
            i = m.start()
            n = ord(lengths[ord(text[i])])
            if n == 1:
                continue
            orig.append(i)
            norm_start.append(i + delta)
            length.append(n)
            delta += n - 1
        self._orig, self._norm_start, self._length = orig, norm_start, length
        self._norm_len = len(text) + delta

    def __len__(self) -> int:
        return self._norm_len + 1

    @property
    def identity(self) -> bool:
        """True when every character normalises to exactly one (``m[i] == i``, nothing removed)."""
        return not self._orig

    def text_span(self, text: str, start: int, end: int) -> tuple[int, int]:
        """:func:`text_span` ``(text, self, start, end)`` for ``0 <= start < end <= len(self) - 1``
        (a token's span), in one call: both ends mapped without ``__getitem__``'s checks."""
        ns = self._norm_start
        k = bisect.bisect_right(ns, start) - 1
        if k >= 0:
            at = ns[k]
            n = self._length[k]
            start = self._orig[k] if start < at + n else self._orig[k] + 1 + (start - at - n)
        q = end - 1
        k = bisect.bisect_right(ns, q) - 1
        if k >= 0:
            at = ns[k]
            n = self._length[k]
            q = self._orig[k] if q < at + n else self._orig[k] + 1 + (q - at - n)
        e = q + 1
        size = len(text)
        while e < size and _TABLE[ord(text[e])] == "":
            e += 1
        return start, e

    def __getitem__(self, q: int) -> int:
        if q < 0:
            q += self._norm_len + 1
        if not 0 <= q <= self._norm_len:
            raise IndexError(q)
        k = bisect.bisect_right(self._norm_start, q) - 1
        if k < 0:
            return q
        start = self._norm_start[k]
        if q < start + self._length[k]:
            return self._orig[k]
        return self._orig[k] + 1 + (q - start - self._length[k])


def original_span(offsets: list[int], start: int, end: int) -> tuple[int, int]:
    """Map a [start, end) span of normalised text back to the original text."""
    if end <= start:
        return offsets[start], offsets[start]
    return offsets[start], offsets[end - 1] + 1


def text_span(text: str, offsets: list[int], start: int, end: int) -> tuple[int, int]:
    """Like :func:`original_span`, but the end also covers characters normalisation removed
    right after the span (harakat, tatweel, zero-width marks), so a word's span is whole."""
    s, e = original_span(offsets, start, end)
    n = len(text)
    while e < n and _TABLE[ord(text[e])] == "":
        e += 1
    return s, e


# Arabic-script proclitics (after normalisation): conjunctions و ف, prepositions ب ك ل, article ال,
# and their combinations. Used by the matcher (term `الدولة` matches `والدولة`) and by the
# archive's search column (so search finds the same forms).
_PROCLITIC_PARTS = ("", "و", "ف")
_PREPS = ("", "ب", "ك", "ل")
_ARTICLE = ("", "ال")
PROCLITICS: frozenset[str] = frozenset(
    c + p + a for c in _PROCLITIC_PARTS for p in _PREPS for a in _ARTICLE if c + p + a
) | frozenset({"لل", "ولل", "فلل"})
_MAX_PROCLITIC = max(len(p) for p in PROCLITICS)


def is_arabic_script(word: str) -> bool:
    return bool(word) and "\u0600" <= word[0] <= "\u06ff"


def proclitic_stems(word: str, min_stem: int = 2) -> list[str]:
    """Stems of a normalised Arabic-script word with a leading proclitic removed (longest first)."""
    if not is_arabic_script(word):
        return []
    out = []
    for n in range(min(_MAX_PROCLITIC, len(word) - min_stem), 0, -1):
        if word[:n] in PROCLITICS:
            out.append(word[n:])
    return out


_ARTICLE_FORMS = tuple(c + p for c in _PROCLITIC_PARTS for p in ("", "ب", "ك") if c + p)
_LAM_FORMS = ("لل", "ولل", "فلل")


def proclitic_forms(word: str) -> tuple[str, ...]:
    """The forms of a normalised Arabic-script word with attached proclitics (the word itself excluded).

    ``الدوله`` -> ``والدوله``, ``بالدوله``, ``فبالدوله``, ``للدوله`` ...; ``دوله`` -> ``ودوله``,
    ``الدوله``, ``والدوله``, ``لدوله``, ``للدوله`` ... Words shorter than two letters get none.
    """
    if len(word) < 2 or not is_arabic_script(word):
        return ()
    if word.startswith("ال") and len(word) > 3:
        stem = word[2:]
        # ل + الدوله -> للدوله; ل + اللجنه -> للجنه (the lams merge: لله, not للله)
        lam_forms = ("ل", "ول", "فل") if stem.startswith("ل") else _LAM_FORMS
        forms = {p + word for p in _ARTICLE_FORMS} | {p + stem for p in lam_forms}
    else:
        forms = {p + word for p in PROCLITICS if "لال" not in p}
    forms.discard(word)
    return tuple(sorted(forms))


_ARABIC_CHAR = re.compile("[\u0600-\u06ff]")
_SEARCH_WORD = re.compile(r"\w+")
_STEMS_CACHE: dict[str, tuple[str, ...]] = {}  # word -> proclitic_stems(word); bounded, for imports
_STEMS_CACHE_MAX = 100_000


def search_text(text: str) -> str:
    """The archive's FTS column: normalised text, then proclitic-stripped forms of Arabic words."""
    norm = normalize(text)
    if _ARABIC_CHAR.search(norm) is None:
        return norm
    extra: list[str] = []
    cache = _STEMS_CACHE
    for word in _SEARCH_WORD.findall(norm):
        stems = cache.get(word)
        if stems is None:
            stems = tuple(proclitic_stems(word))
            if len(cache) < _STEMS_CACHE_MAX:
                cache[word] = stems
        if stems:
            extra.extend(stems)
    if extra:
        return norm + "\n" + " ".join(extra)
    return norm
