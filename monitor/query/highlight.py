"""Highlight the words a search looked for in the original message text, and cut snippets.

Search runs on the normalised ``search_text`` column, but analysts read the text as posted.
Each word of the original text is normalised (with offsets, so spans map back exactly) and
highlighted when it, or one of its proclitic-stripped stems, is a word the query looked for
(or starts with one of its prefixes). Words are highlighted wherever they occur, also
outside the phrase that matched. This is done in Python for the few results shown, which
is much cheaper than FTS5 ``highlight()`` on OR-expanded queries.
"""

from __future__ import annotations

import re
import unicodedata

from ..text import normalize_with_offsets, original_span, proclitic_stems
from .fts import CompiledQuery

OPEN = "\ue000"  # private-use characters: markers for the Datasette plugin
CLOSE = "\ue001"
_WORD = re.compile(r"\w+")

Span = tuple[int, int]


def _fold(word: str) -> str:
    """Drop combining marks (the FTS tokenizer's remove_diacritics does the same)."""
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


class Highlighter:
    """Finds the words of a compiled query in texts."""

    def __init__(self, query: CompiledQuery) -> None:
        self.exact = frozenset(_fold(w) for w in query.exact)
        self.prefixes = tuple(_fold(p) for p in query.prefixes)

    def _hit(self, word: str) -> bool:
        w = _fold(word)
        return w in self.exact or (bool(self.prefixes) and w.startswith(self.prefixes))

    def spans(self, text: str) -> list[Span]:
        """Merged, sorted spans of ``text`` (original characters) holding a searched word."""
        if not text:
            return []
        norm, offsets = normalize_with_offsets(text)
        out: list[Span] = []
        for m in _WORD.finditer(norm):
            word = m.group()
            if self._hit(word) or any(self._hit(stem) for stem in proclitic_stems(word)):
                s, e = original_span(offsets, m.start(), m.end())
                out.append((s, _past_marks(text, e)))
        return merge(out)


def _past_marks(text: str, end: int) -> int:
    """Extend a span end over trailing combining marks (Arabic harakat) and tatweel."""
    while end < len(text) and (unicodedata.category(text[end]).startswith("M") or text[end] == "\u0640"):
        end += 1
    return end


def merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def snippet(text: str, spans: list[Span], width: int = 160) -> tuple[str, list[Span]]:
    """A window of about ``width`` characters of ``text`` around the first span, on one line.

    Returns the window (with ``…`` where it was cut) and the spans inside it, relative to it.
    """
    flat = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if len(flat) <= width:
        start, end = 0, len(flat)
    else:
        first = spans[0][0] if spans else 0
        start = max(0, first - width // 4)
        if start > 0:  # begin at a word boundary
            space = flat.rfind(" ", max(0, start - 15), start)
            start = space + 1 if space >= 0 else start
        end = min(len(flat), start + width)
        if end < len(flat):
            space = flat.find(" ", end, end + 15)
            end = space if space >= 0 else end
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(flat) else ""
    window = prefix + flat[start:end] + suffix
    shift = len(prefix) - start
    inside = [(max(s, start) + shift, min(e, end) + shift) for s, e in spans if e > start and s < end]
    return window, inside


def mark(text: str, spans: list[Span], open_: str = OPEN, close: str = CLOSE) -> str:
    """``text`` with each span wrapped in ``open_``/``close``. OPEN/CLOSE characters found in the
    text itself are dropped, so markers only ever come from here."""

    def clean(t: str) -> str:
        return t.replace(OPEN, "").replace(CLOSE, "")

    out: list[str] = []
    pos = 0
    for s, e in spans:
        out += [clean(text[pos:s]), open_, clean(text[s:e]), close]
        pos = e
    out.append(clean(text[pos:]))
    return "".join(out)
