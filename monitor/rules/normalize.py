"""One text normalisation for the matcher, the archive's search column and search queries.

Per character: NFKC, casefold, then Arabic/Persian unification:

* remove Arabic diacritics (harakat, tanween, shadda, sukun, superscript alef, Quranic marks) and tatweel
* alef forms أ إ آ ٱ -> ا ; ى ی -> ي ; ک -> ك ; ۀ ة -> ه ; ؤ -> و ; ئ -> ي
* zero-width characters removed (ZWNJ -> space, so Persian compound halves become words)
* Eastern Arabic and Persian digits -> ASCII

Because the mapping is applied character by character, ``normalize`` is a single
``str.translate`` over a lazily filled table (fast), and :func:`normalize_with_offsets`
can map every output character back to its position in the original text (for hit spans).
"""

from __future__ import annotations

import unicodedata

_ARABIC_MARKS = set(range(0x0610, 0x061B)) | set(range(0x064B, 0x0660)) | {0x0670} | set(range(0x06D6, 0x06DD)) | set(
    range(0x06DF, 0x06E5)
) | {0x06E7, 0x06E8} | set(range(0x06EA, 0x06EE)) | set(range(0x08D3, 0x0900))
_TATWEEL = 0x0640
_ZERO_WIDTH_DROP = {0x200B, 0x200D, 0x2060, 0xFEFF, 0x200E, 0x200F, 0x061C, 0x00AD}
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
    "ۀ": "ه",
    "ة": "ه",
    "ۃ": "ه",
    "ؤ": "و",
    "ئ": "ي",
}
_DIGITS = {chr(0x0660 + i): str(i) for i in range(10)} | {chr(0x06F0 + i): str(i) for i in range(10)}


def _map_char(ch: str) -> str:
    cp = ord(ch)
    if cp == _ZWNJ:
        return " "
    if cp in _ZERO_WIDTH_DROP or cp in _ARABIC_MARKS or cp == _TATWEEL:
        return ""
    out = unicodedata.normalize("NFKC", ch).casefold()
    if out == ch and ch not in _LETTER_MAP and ch not in _DIGITS:
        return ch
    res = []
    for c in out:
        c2 = ord(c)
        if c2 == _ZWNJ:
            res.append(" ")
        elif c2 in _ZERO_WIDTH_DROP or c2 in _ARABIC_MARKS or c2 == _TATWEEL:
            continue
        else:
            res.append(_DIGITS.get(c, _LETTER_MAP.get(c, c)))
    return "".join(res)


class _Table(dict):
    """str.translate table that computes (and caches) the mapping of unseen characters."""

    def __missing__(self, cp: int) -> str | int:
        ch = chr(cp)
        out = _map_char(ch)
        value: str | int = cp if out == ch else out
        self[cp] = value
        return value


_TABLE = _Table()
# Pre-fill ASCII quickly (casefold of A-Z).
for _cp in range(128):
    _TABLE[_cp]  # noqa: B018 - fills the cache


def normalize(text: str) -> str:
    """Normalise ``text`` for matching and search (see module docstring)."""
    if not text:
        return ""
    return text.translate(_TABLE)


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """Normalise and return, for each output character, the index of its source character.

    The returned list has one extra final entry (``len(text)``) so an exclusive end offset
    ``e`` in the normalised text maps to ``offsets[e]`` in the original.
    """
    out: list[str] = []
    offsets: list[int] = []
    table = _TABLE
    for i, ch in enumerate(text):
        m = table[ord(ch)]
        if isinstance(m, int):
            out.append(ch)
            offsets.append(i)
        elif m:
            out.append(m)
            offsets.extend([i] * len(m))
    offsets.append(len(text))
    return "".join(out), offsets


def original_span(offsets: list[int], start: int, end: int) -> tuple[int, int]:
    """Map a [start, end) span of normalised text back to the original text."""
    if end <= start:
        return offsets[start], offsets[start]
    return offsets[start], offsets[end - 1] + 1


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


def search_text(text: str) -> str:
    """The archive's FTS column: normalised text, then proclitic-stripped forms of Arabic words."""
    norm = normalize(text)
    extra: list[str] = []
    if any("\u0600" <= ch <= "\u06ff" for ch in norm):
        import re

        for word in re.findall(r"\w+", norm):
            extra.extend(proclitic_stems(word))
    if extra:
        return norm + "\n" + " ".join(extra)
    return norm
