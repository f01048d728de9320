"""A message's scan text, its words and their look-ups in one pass (the C extension
``monitor.rules._scan``, built by ``pip install``; without it, or for a text it cannot take,
the same three steps in Python).

:func:`scan_words` ``(text, lookup, ...)`` -> ``(st, tokens, values, ...)``:

* ``st = scan_text(text)`` (:func:`monitor.text.scan_text`: every character mapped alone);
* ``tokens = st.split()`` (``st`` holds no whitespace but the space);
* ``values = [lookup[t] for t in tokens]`` (``lookup``: a dict whose ``__missing__`` analyses a
  word seen for the first time, :class:`monitor.rules.matcher._Lookup`).

(and, from the values and three sets of words, the non-empty values, which sets hold a token
and the values of the "gated" tokens: see :func:`scan_words`).

The C pass maps the characters through a table of the images (one character or none) of the
code points of the BMP and plane 1, filled from :mod:`monitor.text`'s scan table: first the characters its charmap fast path
covers (ASCII, Arabic and Persian letters and punctuation), then, each time a text brings
characters the table does not know (emoji, other scripts), those whose image is at most one
character (the text itself takes the Python path that time). A character whose image is longer
(ligatures such as ﷺ) stays unknown: a text holding one always takes the Python path. Equal
results on every code point and on random texts: ``tests/test_scan.py``.
"""

from __future__ import annotations

from array import array
from itertools import compress, count, repeat
from operator import add, contains

from ..text import FAST_ALPHABET, _SCAN_TABLE, scan_text

try:
    from ._scan import WordCache, scan as _c_scan, token_starts as c_token_starts, word_spans as _c_word_spans
except ImportError:  # not built (no C compiler at install): the Python path
    _c_scan = _c_word_spans = c_token_starts = WordCache = None

UNKNOWN = 0xFFFF
DELETED = 0xFFFE
TABLE_SIZE = 0x20000  # the BMP and plane 1 (emoji, mathematical letters); beyond: the Python path

_table = bytearray(array("H", [UNKNOWN]) * TABLE_SIZE)  # native uint16 per code point
_table_view = memoryview(_table).cast("H")
_seen: set[str] = set()  # characters classified (known to the table or not)


def _image(c: str) -> int | None:
    """The scan table's image of ``c`` as the C pass reads it: a code point, -1 for nothing,
    None when it is more than one character or does not fit the table's entries."""
    img = c.translate(_SCAN_TABLE)
    if not img:
        return -1
    if len(img) != 1:
        return None
    cp = ord(img)
    return None if cp >= DELETED else cp


def learn(chars: "set[str] | str") -> None:
    """Classify the characters of ``chars`` not seen yet (their images into the table)."""
    new = set(chars).difference(_seen)
    if not new:
        return
    _seen.update(new)
    for c in new:
        cp = ord(c)
        if cp < TABLE_SIZE:
            img = _image(c)
            if img is not None:
                _table_view[cp] = DELETED if img < 0 else img


learn(FAST_ALPHABET)


_EMPTY: frozenset = frozenset()


def new_word_cache(max_entries: int, max_chars: int) -> "WordCache | None":
    """The C pass's own word cache (None without the extension): see :func:`scan_words`."""
    return None if WordCache is None else WordCache(max_entries, max_chars)


def scan_words(
    text: str, lookup: dict, pieces: "frozenset[str]" = _EMPTY, hot: "set[str] | frozenset[str]" = _EMPTY,
    gated: "set[str] | frozenset[str]" = _EMPTY, cache: "WordCache | None" = None,
) -> "tuple[str, list[str], list, list, int, list]":
    """``(st, tokens, values, nonempty, flags, gvals)`` (see the module docstring): ``nonempty``
    the values that are not empty, in order; ``flags``: 1 when a token is in ``pieces``, 2 when
    one is in ``hot``, 4 when one is in ``gated``; ``gvals``: the values of the tokens in
    ``gated``, in order. Only tokens with a non-empty value are asked
    about: a token of one of these sets must have one (the matcher's Persian pieces, hot and
    gated words, see :class:`monitor.rules.matcher._Lookup`). A look-up may add to the sets but
    must not take from them.

    ``cache`` (:func:`new_word_cache`, for the C pass): the tokens seen before, keyed by their
    characters, with their ``str``, value and marks (piece, hot, gated) as they were right after
    their look-up: such a token costs no new ``str`` and no dict look-up. The owner clears it
    whenever ``lookup`` or the sets start over (a cached value or mark must stay true)."""
    if _c_scan is not None:
        got = _c_scan(text, _table, lookup, pieces, hot, gated, cache)
        if got is not None:
            return got
        learn(text)
    return python_scan_words(text, lookup, pieces, hot, gated)


def python_scan_words(
    text: str, lookup: dict, pieces: "frozenset[str]" = _EMPTY, hot: "set[str] | frozenset[str]" = _EMPTY,
    gated: "set[str] | frozenset[str]" = _EMPTY,
) -> "tuple[str, list[str], list, list, int, list]":
    """:func:`scan_words` without the C pass."""
    st = scan_text(text)
    # the only whitespace scan_text leaves is " " (every other non-word character becomes
    # one; checked on every code point in the tests): a non-ASCII text is split on it with
    # a plain character compare, not str.split()'s Unicode whitespace test per character
    tokens = st.split() if st.isascii() else list(filter(None, st.split(" ")))
    values = list(map(lookup.__getitem__, tokens))
    asked = list(compress(tokens, values))  # the tokens with a non-empty value
    flags = (not pieces.isdisjoint(asked)) | (not hot.isdisjoint(asked)) << 1 | (not gated.isdisjoint(asked)) << 2
    nonempty = list(filter(None, values))
    gvals = list(compress(nonempty, map(gated.__contains__, asked))) if flags & 4 else []
    return st, tokens, values, nonempty, flags, gvals


def python_word_spans(values: list, wid: int) -> "list[tuple[int, int]]":
    """``[(i, i + 1) for each i where wid in values[i]]`` (at C level)."""
    at = list(compress(count(), map(contains, values, repeat(wid))))
    return list(zip(at, map(add, at, repeat(1))))


word_spans = _c_word_spans if _c_word_spans is not None else python_word_spans
