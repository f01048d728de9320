"""``regex:`` selections: RE2 (linear time, no backtracking) over the normalised text.

Patterns are matched case-insensitively. Non-ASCII characters of a pattern are normalised
like the text (``أ`` -> ``ا``, harakat removed ...) so a pattern written with the letters as
published still matches; ASCII (all regex syntax) is left as written. RE2's ``\\w`` and
``\\b`` are ASCII-only: use ``\\pL`` / ``[\\pL\\pN_]`` for Arabic or Persian letters.
"""

from __future__ import annotations

import re2

from .normalize import normalize

MAX_REGEX_CHARS = 2_000
MAX_MEM = 32 << 20


class RegexError(ValueError):
    pass


def options() -> "re2.Options":
    opts = re2.Options()
    opts.case_sensitive = False
    opts.log_errors = False
    opts.max_mem = MAX_MEM
    return opts


def prepare(pattern: str) -> str:
    """Normalise the non-ASCII characters of ``pattern`` like message text."""
    out: list[str] = []
    for ch in pattern:
        if ord(ch) < 128:
            out.append(ch)
            continue
        for c in normalize(ch):
            out.append(c if ord(c) >= 128 or c.isalnum() else "\\" + c)
    return "".join(out)


def compile_regex(pattern: str):
    """Compile a rule regex; raises :class:`RegexError` with RE2's message."""
    if not pattern:
        raise RegexError("empty regex")
    if len(pattern) > MAX_REGEX_CHARS:
        raise RegexError(f"regex is {len(pattern):,} characters long (at most {MAX_REGEX_CHARS:,})")
    try:
        return re2.compile(prepare(pattern), options())
    except re2.error as exc:
        msg = exc.args[0] if exc.args else str(exc)
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        raise RegexError(str(msg)) from None
