"""Neutralising bidirectional controls in hostile text before it is shown to people.

A post can carry U+202E (RIGHT-TO-LEFT OVERRIDE) and friends: shown raw, they reorder the
rest of the line, so an alert can read backwards or hide what a link says. Every renderer
(console, file/webhook JSON, Slack text and blocks, email Subject, text and HTML) gets its
text through :func:`neutralize_bidi`; the archive keeps the raw text.

* Embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder whole runs and
  leak past the quoted text: each becomes U+FFFD, visible and the same length (match
  offsets into the text stay valid).
* The marks U+200E LRM, U+200F RLM and U+061C ALM are kept: they reorder nothing (they
  only give neighbouring punctuation a direction), and Arabic, Persian and Hebrew posts use
  them legitimately.
"""

from __future__ import annotations

import unicodedata
from typing import Any

REPLACEMENT = "\ufffd"
BIDI_CONTROLS = "".join(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_TABLE = str.maketrans({ch: REPLACEMENT for ch in BIDI_CONTROLS})


def neutralize_bidi(text: str) -> str:
    """``text`` with every embedding/override/isolate control replaced by U+FFFD."""
    return text.translate(_TABLE)


def neutralize_all(value: Any) -> Any:
    """:func:`neutralize_bidi` applied to every string (keys too) in JSON-like data."""
    if isinstance(value, str):
        return value.translate(_TABLE)
    if isinstance(value, dict):
        return {neutralize_all(k): neutralize_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(neutralize_all(v) for v in value)
    return value


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` moved inwards past invisible format characters (category Cf: bidi
    controls and marks, ZWNJ/ZWJ, ZWSP, BOM) at either edge of ``text[start:end]``. A
    highlight drawn around such a character (``[الدولة الإسلامية\u200f]``) has the control
    act on its own bracket; the character stays in the text, just outside the highlight."""
    while start < end and unicodedata.category(text[start]) == "Cf":
        start += 1
    while end > start and unicodedata.category(text[end - 1]) == "Cf":
        end -= 1
    return start, end
