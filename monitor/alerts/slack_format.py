"""Slack mrkdwn for hostile text: escaping, safe links, bold match spans, Block Kit limits.

Slack treats only ``&``, ``<`` and ``>`` as control characters in message text
(https://api.slack.com/reference/surfaces/formatting#escaping). Mentions (``<!channel>``,
``<!here>``, ``<@U123>``) and links with a disguised label (``<https://evil|click>``) all
need angle brackets, so escaping those three makes any text display literally.

Lengths are counted in UTF-16 code units (an emoji counts 2), which is never less than
Slack's own count, so a clipped text is always within the limit.
"""

from __future__ import annotations

import re

from typing import Any, Iterable, Sequence
from urllib.parse import quote, urlsplit

SECTION_TEXT_LIMIT = 3000  # section block text
FIELD_TEXT_LIMIT = 2000  # each section field
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCKS = 50
MESSAGE_TEXT_LIMIT = 40000  # top-level "text" of a message
ELLIPSIS = "…"
ZWSP = "\u200b"  # lets Slack see a bold marker next to a letter as a word boundary

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_LOOKALIKE = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}  # ∗ ˍ ∼ ˋ
_EMPHASIS = re.compile(r"(?<!\w)[*_~`]|[*_~`](?!\w)")


def slen(text: str) -> int:
    """Length in UTF-16 code units (how Slack's limits are safely counted)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def escape(text: str) -> str:
    """Escape ``&``, ``<``, ``>``: the text then shows literally (no mention, no link)."""
    return text.translate(_ESCAPES)


def clip(mrkdwn: str, limit: int) -> str:
    """Shorten already-escaped mrkdwn to ``limit`` with "…", never cutting an ``&amp;``-entity."""
    if slen(mrkdwn) <= limit:
        return mrkdwn
    budget = limit - slen(ELLIPSIS)
    out: list[str] = []
    used = 0
    for ch in mrkdwn:
        n = 2 if ord(ch) > 0xFFFF else 1
        if used + n > budget:
            break
        out.append(ch)
        used += n
    s = "".join(out)
    amp = s.rfind("&")
    if amp != -1 and ";" not in s[amp:]:
        s = s[:amp]  # an entity was cut in half: drop it whole
    return s.rstrip() + ELLIPSIS


def plain(text: str, limit: int) -> str:
    """Escape hostile text and fit it into ``limit`` (with "…")."""
    return mrkdwn_text(text, (), limit)


def safe_url(url: str | None) -> str | None:
    """An http(s) URL made safe for ``<url|label>``, or None if it is not one."""
    if not url:
        return None
    url = url.strip()
    if any(ord(ch) < 0x20 or ch.isspace() for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Percent-encode what would end the link or start a label; escape & as Slack asks.
    url = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    return url.replace("&", "&amp;")


def link(url: str | None, label: str) -> str:
    """``<url|label>`` with an escaped label, or just the escaped label if the URL is unsafe."""
    text = escape(label).replace("|", "\u2223")
    target = safe_url(url)
    if target is None:
        return text
    return f"<{target}|{text}>" if text else f"<{target}>"


def _merge_spans(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    cleaned = sorted((s, e) for s, e in spans if 0 <= s < e <= len(text))  # bad offsets: not bolded
    merged: list[tuple[int, int]] = []
    for s, e in cleaned:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _segments(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    segs: list[tuple[int, int, bool]] = []
    pos = 0
    for s, e in _merge_spans(text, spans):
        if s > pos:
            segs.append((pos, s, False))
        segs.append((s, e, True))
        pos = e
    if pos < len(text):
        segs.append((pos, len(text), False))
    return segs


def segments(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[str, bool]]:
    """Split ``text`` into (piece, is_match) runs (for the HTML and text templates)."""
    return [(text[s:e], bold) for s, e, bold in _segments(text, spans)]


def _bold(text: str, start: int, end: int) -> str:
    """``*term*`` for text[start:end], one run per line, guarded with ZWSP next to letters."""
    out: list[str] = []
    pos = start
    for line in text[start:end].split("\n"):
        lstart = pos
        pos += len(line) + 1
        core = line.strip()
        if not core or "*" in core:  # nothing to bold, or a '*' inside would end the bold early
            out.append(escape(line))
            continue
        lead = line[: len(line) - len(line.lstrip())]
        trail = line[len(line.rstrip()):]
        cstart = lstart + len(lead)
        cend = cstart + len(core)
        before = text[cstart - 1] if cstart > 0 else " "
        after = text[cend] if cend < len(text) else " "
        out.append(
            escape(lead)
            + ("" if before.isspace() else ZWSP)
            + "*" + escape(core) + "*"
            + ("" if after.isspace() else ZWSP)
            + escape(trail)
        )
    return "\n".join(out)


def quote_emphasis(text: str) -> str:
    """Emphasis markers (``*bold*``, ``_italic_``, ``~strike~``, `` `code` ``) at a word
    edge in quoted text become look-alikes that Slack does not format (same length, so
    offsets stay valid); ``claims_test`` or ``2*3`` stay as written."""
    return _EMPHASIS.sub(lambda m: _LOOKALIKE[m.group()], text)


def mrkdwn_text(text: str, spans: Iterable[tuple[int, int]] = (), limit: int = SECTION_TEXT_LIMIT) -> str:
    """Escape ``text`` (``&<>`` and emphasis markers), bold the ``[start, end)`` spans
    (offsets in the *original* text) and fit the result into ``limit`` with "…".

    Escaping is done per segment, so the offsets never shift and an entity or a bold run is
    never cut in half.
    """
    text = quote_emphasis(text)
    segs = _segments(text, spans)
    parts = [_bold(text, s, e) if bold else escape(text[s:e]) for s, e, bold in segs]
    full = "".join(parts)
    if slen(full) <= limit:
        return full
    budget = limit - slen(ELLIPSIS)
    out: list[str] = []
    used = 0
    for (s, e, _bold_run), part in zip(segs, parts):
        n = slen(part)
        if used + n <= budget:
            out.append(part)
            used += n
            continue
        for ch in text[s:e]:  # the segment that does not fit: as much as fits, unbolded
            esc = escape(ch)
            n = slen(esc)
            if used + n > budget:
                break
            out.append(esc)
            used += n
        break
    return "".join(out).rstrip() + ELLIPSIS


# -- Block Kit builders (each clips to its limit) ----------------------------------
def section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, SECTION_TEXT_LIMIT) or " "}}


def fields(items: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": clip(t, FIELD_TEXT_LIMIT) or " "} for t in items[:MAX_FIELDS]],
    }


def context(items: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(t, SECTION_TEXT_LIMIT) or " "} for t in items[:MAX_CONTEXT_ELEMENTS]],
    }


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def message_text(mrkdwn: str) -> str:
    """Clip the top-level (notification/fallback) text to Slack's message limit."""
    return clip(mrkdwn, MESSAGE_TEXT_LIMIT)


def lines_within(lines: Sequence[str], limit: int, more: str = "…") -> str:
    """Join whole mrkdwn lines (links stay intact) while they fit ``limit``; then ``more``."""
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        n = slen(line) + (1 if out else 0)
        rest = len(lines) - i
        reserve = slen(more) + 1 if rest > 1 else 0
        if used + n + reserve > limit:
            out.append(more)
            break
        out.append(line)
        used += n
    return clip("\n".join(out), limit)
