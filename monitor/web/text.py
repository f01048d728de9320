"""Text helpers for the web pages: bidi neutralising, word-level diffs, highlighted spans.

Everything here returns plain strings or lists of (kind, text) pieces; the templates escape
them (Datasette's Jinja environment autoescapes), so hostile text always stays text.
"""

from __future__ import annotations

import difflib
import unicodedata
import re
from typing import Any, Iterable

from ..bidi import trim_span

# Embedding, override and isolate controls (LRE RLE PDF LRO RLO, LRI RLI FSI PDI): a hostile
# text could use them to reorder what follows it on the page. Replaced by U+FFFD (same length,
# so match offsets stay valid). LRM/RLM/ALM are harmless marks and kept.
# (The `robust` branch adds monitor/bidi.py neutralize_bidi for the alert renderers; this is the
# page side, kept local so the web view does not depend on that branch.)
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def neutralize_bidi(text: str | None) -> str:
    if not text:
        return ""
    return _BIDI_CONTROLS.sub("\ufffd", text)


Span = tuple[int, int]


def pieces(text: str | None, spans: Iterable[Span]) -> list[tuple[bool, str]]:
    """``text`` cut into (highlighted?, piece) at the merged, clipped ``spans``; a mark or ZWNJ
    at a span's edge (a rule's match can end on the RLM after a phrase) stays outside it."""
    text = neutralize_bidi(text)
    out: list[tuple[bool, str]] = []
    pos = 0
    for s, e in _merge(spans, len(text)):
        s, e = trim_span(text, s, e)
        if e <= s or s < pos:
            continue
        if s > pos:
            out.append((False, text[pos:s]))
        out.append((True, text[s:e]))
        pos = e
    if pos < len(text) or not out:
        out.append((False, text[pos:]))
    return out


def _merge(spans: Iterable[Span], n: int) -> list[Span]:
    merged: list[Span] = []
    for s, e in sorted((max(0, int(s)), min(n, int(e))) for s, e in spans):
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(old: str | None, new: str | None) -> list[tuple[str, str]]:
    """Word-level diff of two texts: [(op, text)] with op ``same``, ``del`` or ``ins``.
    Whitespace runs are tokens too, so joining the ``same``+``ins`` pieces gives ``new``
    and ``same``+``del`` gives ``old``."""
    a = _TOKENS.findall(neutralize_bidi(old))
    b = _TOKENS.findall(neutralize_bidi(new))
    out: list[tuple[str, str]] = []

    def add(op: str, toks: list[str]) -> None:
        if not toks:
            return
        text = "".join(toks)
        if out and out[-1][0] == op:
            out[-1] = (op, out[-1][1] + text)
        else:
            out.append((op, text))

    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            add("same", a[i1:i2])
        else:
            add("del", a[i1:i2])
            add("ins", b[j1:j2])
    return out


def short(text: str | None, n: int = 280) -> str:
    """One line, at most ``n`` characters (with …)."""
    flat = " ".join(neutralize_bidi(text).split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def text_dir(text: Any) -> str:
    """``rtl`` when most letters of ``text`` are right-to-left (Arabic, Persian, Hebrew ...),
    else ``auto``. Plain ``dir="auto"`` goes by the first strong character, which puts a
    Persian post that starts with an @handle or a Latin name left-to-right."""
    if isinstance(text, (list, tuple)):  # (highlighted?, piece) pieces or diff ops
        text = "".join(p[1] for p in text)
    rtl = ltr = 0
    for ch in str(text or "")[:2000]:
        t = unicodedata.bidirectional(ch)
        if t in ("R", "AL"):
            rtl += 1
        elif t == "L":
            ltr += 1
    return "rtl" if rtl > ltr else "auto"


def http_url(value: Any) -> str:
    """``value`` if it is an http(s) URL with a host and no spaces or controls, else "": a
    record's ``url`` is hostile input (``javascript:…`` in an href runs in the archive's origin)."""
    from urllib.parse import urlsplit

    if not isinstance(value, str):
        return ""
    url = value.strip()
    if not url or any(ord(ch) < 0x20 or ch.isspace() or ord(ch) == 0x7F for ch in url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else ""
