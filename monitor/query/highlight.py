"""Map FTS5 highlights on the normalised search column back to the original message text.

FTS5 ``highlight()`` marks matches in ``messages.search_text`` (normalised text, then the
proclitic-stripped stems of Arabic-script words). Analysts need to see the text as posted,
so each marked span is mapped back: spans in the normalised part through
:func:`~monitor.rules.normalize.normalize_with_offsets`, spans in the stems part to the
whole word the stem came from.
"""

from __future__ import annotations

import re
import unicodedata

from ..rules.normalize import normalize_with_offsets, original_span, proclitic_stems

OPEN = "\ue000"  # private-use characters: never produced by normalisation of real text
CLOSE = "\ue001"
_WORD = re.compile(r"\w+")

Span = tuple[int, int]


def marked_spans(search_text: str, marked: str) -> list[Span]:
    """Spans of ``search_text`` that ``marked`` (its highlight() with OPEN/CLOSE) wraps.

    Returns [] when the markers cannot be told apart from the text (it contains them).
    """
    if OPEN in search_text or CLOSE in search_text:
        return []
    spans: list[Span] = []
    pos = 0
    start = -1
    for ch in marked:
        if ch == OPEN:
            start = pos
        elif ch == CLOSE:
            if start >= 0:
                spans.append((start, pos))
            start = -1
        else:
            pos += 1
    return spans


def _stem_sources(norm: str) -> tuple[str, list[tuple[int, int, int, int]]]:
    """Rebuild the stems part of the search column: (text, [(start, end, word_start, word_end)])."""
    parts: list[str] = []
    sources: list[tuple[int, int, int, int]] = []
    pos = len(norm) + 1
    for m in _WORD.finditer(norm):
        for stem in proclitic_stems(m.group()):
            parts.append(stem)
            sources.append((pos, pos + len(stem), m.start(), m.end()))
            pos += len(stem) + 1
    return " ".join(parts), sources


def to_original(text: str, search_text: str, spans: list[Span]) -> list[Span]:
    """Map spans of ``search_text`` to merged, sorted spans of the original ``text``."""
    if not spans:
        return []
    norm, offsets = normalize_with_offsets(text)
    stems, sources = _stem_sources(norm)
    stems_ok = search_text == (norm + "\n" + stems if stems else norm)
    out: list[Span] = []
    for s, e in spans:
        if e <= len(norm):
            out.append(original_span(offsets, s, e))
        elif stems_ok and s > len(norm):
            for a, b, ws, we in sources:
                if a <= s < b:
                    out.append(original_span(offsets, ws, we))
                    break
    return merge([(s, _past_marks(text, e)) for s, e in out])


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


def marked_snippet(text: str, search_text: str, highlighted: str | None, width: int = 160) -> str:
    """Snippet of the original text with OPEN/CLOSE around matches (used by the Datasette plugin)."""
    spans = to_original(text or "", search_text or "", marked_spans(search_text or "", highlighted or ""))
    window, inside = snippet(text or "", spans, width)
    return mark(window, inside)
