"""``regex:`` selections: RE2 (linear time, no backtracking) over the normalised text.

Patterns are matched case-insensitively. Non-ASCII characters of a pattern are normalised
like the text (``أ`` -> ``ا``, harakat removed ...) so a pattern written with the letters as
published still matches; ASCII regex syntax is left as written, except that ``\\w`` and
``\\W`` (ASCII-only in RE2) are rewritten to the Unicode classes ``[\\pL\\pN_]`` and
``[^\\pL\\pN_]``, so ``ولاية\\s+\\w+`` finds the Arabic word after it. ``\\d`` needs no
rewrite: the text's Eastern Arabic and Persian digits are ASCII after normalisation. RE2's
``\\b`` / ``\\B`` stay ASCII-only (a zero-width Unicode boundary cannot be expressed
without lookaround); ``rules check`` warns when one stands next to Arabic-script letters
(:func:`ascii_boundary_next_to_arabic`).
"""

from __future__ import annotations

import re

import re2

from ..text import normalize

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


WORD_CLASS = r"\pL\pN_"


def _unicode_classes(pattern: str) -> str:
    """``\\w`` -> ``[\\pL\\pN_]`` and ``\\W`` -> ``[^\\pL\\pN_]`` (inside ``[...]``: ``\\w`` ->
    ``\\pL\\pN_``; ``\\W`` there stays ASCII); escapes, ``\\Q...\\E`` and ``[:alpha:]`` are kept."""
    if "\\w" not in pattern and "\\W" not in pattern:
        return pattern
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            if d == "Q":
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end + 2
                out.append(pattern[i:end])
                i = end
                continue
            if d == "w":
                out.append(WORD_CLASS if in_class else f"[{WORD_CLASS}]")
            elif d == "W" and not in_class:
                out.append(f"[^{WORD_CLASS}]")
            else:
                out.append(c + d)
            i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                end = n if end < 0 else end + 2
                out.append(pattern[i:end])
                i = end
                continue
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ] is a literal
                out.append("]")
                i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def prepare(pattern: str) -> str:
    """Normalise the non-ASCII characters of ``pattern`` like message text; ``\\w``/``\\W``
    to Unicode classes."""
    out: list[str] = []
    for ch in pattern:
        if ord(ch) < 128:
            out.append(ch)
            continue
        for c in normalize(ch):
            out.append(c if ord(c) >= 128 or c.isalnum() else "\\" + c)
    return _unicode_classes("".join(out))


_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_BOUNDARY = re.compile(r"(?<!\\)((?:\\\\)*)\\[bB]")
_UNICODE_ITEM = re.compile(r"^(?:\\[pPw]|\.|\[[^\]]*(?:\\[pPw]|[\u0600-\u06ff]))")
_BEFORE_UNICODE = re.compile(r"(?:\\[pP]\{[^}]*\}|\\[pP][A-Za-z]|\\w|\.|\[[^\]]*(?:\\[pPw]|[\u0600-\u06ff])[^\]]*\])$")
_SKIP_AFTER = re.compile(r"^(?:\((?:\?(?::|[a-zA-Z]+:?|P?<\w+>))?|\|)*")
_SKIP_BEFORE = re.compile(r"(?:[)*+?|]|\{\d+(?:,\d*)?\})*$")


def ascii_boundary_next_to_arabic(pattern: str) -> bool:
    """True when ``\\b`` or ``\\B`` stands next to an Arabic-script letter, or next to a class
    that matches one (``\\pL``, ``\\w``, ``.``, ``[...]`` with Arabic letters): RE2's boundary
    only knows ASCII word characters, so there it never (``\\b``) or always (``\\B``) holds."""
    for m in _BOUNDARY.finditer(pattern):
        after = pattern[m.end():]
        after = after[_SKIP_AFTER.match(after).end():]
        if (after and _ARABIC.match(after)) or _UNICODE_ITEM.match(after):
            return True
        before = pattern[: m.end() - 2]
        before = before[: _SKIP_BEFORE.search(before).start()]
        if (before and _ARABIC.match(before[-1])) or _BEFORE_UNICODE.search(before):
            return True
    return False


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


def required_literal(pattern: str) -> str | None:
    """A run of ASCII letters every match of ``pattern`` contains (lowercase), or None.

    Only the simple, common case is recognised: the pattern starts (after ``\\b``, ``^`` or
    ``(?i)``) with plain letters and has no ``|`` outside parentheses. The matcher runs the
    RE2 filter for such a regex only when the normalised text contains the letters (the text
    is lowercase after normalisation, which also folds ``ſ`` and the Kelvin sign)."""
    i, n = 0, len(pattern)
    while True:
        if pattern.startswith("\\b", i):
            i += 2
        elif pattern.startswith("(?i)", i):
            i += 4
        elif pattern.startswith("^", i):
            i += 1
        else:
            break
    j = i
    while j < n and pattern[j].isascii() and pattern[j].isalpha():
        j += 1
    if j < n and pattern[j] in "?*{":
        j -= 1  # the last letter is optional
    literal = pattern[i:j].lower()
    if len(literal) < 3:
        return None
    depth = 0
    in_class = False
    k = 0
    while k < n:
        c = pattern[k]
        if c == "\\":
            if pattern.startswith("\\Q", k):
                return None
            k += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern.startswith("[]", k) or pattern.startswith("[^]", k):
                k += 2
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return None
        k += 1
    return literal
