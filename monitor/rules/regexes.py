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

import functools
import re
from typing import Sequence

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


# A bound on the size of the RE2 program of a pattern, read from its text: every escape,
# class or ``.`` at most _CLASS_INSTS instructions (``\\pL`` compiles to ~1,200, the largest
# class seen ~1,400) plus _CHAR_INSTS per character of it, every other character (literals,
# operators, groups) at most _CHAR_INSTS, and a counted repetition ``{n,m}`` multiplies the item
# before it by m + 1. RE2 refuses a program only far above _PARSE_ONLY_BOUND (``\\pL{1000}``,
# 1.2 million instructions, compiles). Whatever this reader does not follow gives no bound.
_CLASS_INSTS = 2_000
_CHAR_INSTS = 10
_PARSE_ONLY_BOUND = 300_000
_NO_BOUND = 1 << 62
_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")


def _program_bound(p: str) -> int:
    stack: list[list[int]] = [[]]  # per open group: the bounds of its items so far
    opened: list[int] = []  # where each open group starts
    i, n = 0, len(p)
    try:
        while i < n:
            c = p[i]
            items = stack[-1]
            if c == "\\":
                if i + 1 >= n or p[i + 1] in "QE":
                    return _NO_BOUND
                j = i + 2
                if p[i + 1] in "pPx" and j < n and p[j] == "{":
                    j = p.index("}", j) + 1
                elif p[i + 1] in "pP":
                    j += 1
                items.append(_CLASS_INSTS + _CHAR_INSTS * (j - i))
                i = j
            elif c == "[":
                j = _skip_class(p, i)
                items.append(_CLASS_INSTS + _CHAR_INSTS * (j - i))
                i = j
            elif c == ".":
                items.append(_CLASS_INSTS)
                i += 1
            elif c == "(":
                stack.append([])
                opened.append(i)
                i += 1
            elif c == ")":
                if len(stack) < 2:
                    return _NO_BOUND
                inner = stack.pop()
                if not _FLAGS.fullmatch(p, opened.pop() + 1, i):  # (?i) sets flags: no item
                    stack[-1].append(sum(inner) + 2 * _CHAR_INSTS)
                i += 1
            elif c == "{" and (m := _REPEAT.match(p, i)) is not None:
                if not items:
                    return _NO_BOUND
                items[-1] *= max(int(m.group(1)), int(m.group(2) or 0)) + 1
                if items[-1] > _PARSE_ONLY_BOUND:
                    return _NO_BOUND
                i = m.end()
            elif c in "*+?" and items:  # a quantifier belongs to the item before it
                items[-1] += 2 * _CHAR_INSTS
                i += 1
            else:
                items.append(_CHAR_INSTS)
                i += 1
    except (_Unparsed, ValueError):
        return _NO_BOUND
    if len(stack) != 1:
        return _NO_BOUND
    return sum(stack[0]) + 100  # + the unanchored start and the match


def check_regex(pattern: str) -> None:
    """Raise :class:`RegexError` exactly when :func:`compile_regex` would, without building
    the program when it cannot be too large (see :func:`_program_bound`): RE2 then fails only
    on syntax, which parsing finds (``re2.Set.Add`` parses with the same flags; ~5x cheaper
    than compiling a pattern with ``\\pL`` or ``\\w``). The matcher compiles each regex on
    first use (or :meth:`~monitor.rules.matcher.Matcher.prepare`)."""
    if not pattern or len(pattern) > MAX_REGEX_CHARS:
        compile_regex(pattern)  # raises with the message
        return
    prepared = prepare(pattern)
    if _program_bound(prepared) <= _PARSE_ONLY_BOUND:
        try:
            re2.Set.SearchSet(options()).Add(prepared)
            return
        except re2.error:
            pass  # RE2's own message from compiling it, below
    compile_regex(pattern)


def required_literal(pattern: str) -> str | None:
    """A run of ASCII letters every match of ``pattern`` contains (lowercase), or None.

    Only the simple, common case is recognised: the pattern starts (after ``\\b``, ``^`` or
    ``(?i)``) with plain letters and has no ``|`` outside parentheses. The matcher's gates
    let a rule needing such a regex through only when the normalised text contains the letters (the text
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



MIN_LITERAL = 3  # shorter required letters are found in too many texts to be worth a gate
MAX_LITERAL_SETS = 3


def required_literal_sets(pattern: str, limit: int = MAX_LITERAL_SETS) -> list[tuple[str, ...]]:
    """Sets of letter runs (normalised like the text: lowercase, ``أ`` -> ``ا`` ...) such that
    every match of ``pattern`` contains, for EACH set, at least one run of it; best first, at
    most ``limit``; empty when none is found.

    Reads the pattern as :func:`prepare` makes it. In a sequence every required item is
    needed: a run of plain letters (a letter with ``?``, ``*`` or ``{0,n}`` ends it, ``+``
    ends it after the letter), or a required group all of whose alternatives give letters (its
    set: the best set of each alternative, together); optional items, classes, escapes and
    ``.`` are stepped over. Top-level ``|`` alternatives: one set, the best of each. A set is
    better when its shortest run is longer (at least :data:`MIN_LITERAL` letters), then when
    it is smaller. The matcher runs a regex only when each set has a run in the text's words
    (a run of letters occurs in one word: non-letters separate words)."""
    try:
        prepared = prepare(pattern)
        if "\\Q" in prepared:
            return []
        alternatives = _split_alternatives(prepared, 0, len(prepared))
        if len(alternatives) == 1:
            return _sequence_literals(prepared, 0, len(prepared))[:limit]
        one = _alternation_literals(prepared, 0, len(prepared))
    except _Unparsed:
        return []
    except Exception:  # noqa: BLE001 - an invalid pattern has no gate (it is refused elsewhere)
        return []
    return [one] if one else []


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """The best set of :func:`required_literal_sets`, or None."""
    sets = required_literal_sets(pattern, 1)
    return sets[0] if sets else None


class _Unparsed(Exception):
    pass


def _skip_class(p: str, i: int) -> int:
    """Index after the ``[...]`` class starting at ``p[i]``."""
    n = len(p)
    i += 1
    if i < n and p[i] == "^":
        i += 1
    if i < n and p[i] == "]":
        i += 1
    while i < n:
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if p.startswith("[:", i):
            end = p.find(":]", i + 2)
            if end < 0:
                raise _Unparsed
            i = end + 2
            continue
        if c == "]":
            return i + 1
        i += 1
    raise _Unparsed


def _structure(p: str, start: int, end: int):
    """The group and alternation characters of ``p[start:end]`` outside escapes and classes:
    ``(index, char, depth)`` for each ``(``, ``)`` and ``|`` (depth after a ``(``, before a ``)``)."""
    depth = 0
    i = start
    while i < end:
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _skip_class(p, i)
            continue
        if c == "(":
            depth += 1
            yield i, c, depth
        elif c == ")":
            yield i, c, depth
            depth -= 1
        elif c == "|":
            yield i, c, depth
        i += 1


def _close_paren(p: str, i: int) -> int:
    """Index of the ``)`` closing the group opened at ``p[i]``."""
    for k, c, depth in _structure(p, i, len(p)):
        if c == ")" and depth == 1:
            return k
    raise _Unparsed


def _split_alternatives(p: str, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    a = start
    final = 0  # the depth after the last character
    for k, c, depth in _structure(p, start, end):
        if c == ")":
            if depth <= 0:
                raise _Unparsed
            final = depth - 1
        else:
            final = depth
        if c == "|" and depth == 0:
            out.append((a, k))
            a = k + 1
    if final:
        raise _Unparsed
    out.append((a, end))
    return out


def _alternation_literals(p: str, start: int, end: int, left: bool = False, right: bool = False) -> tuple[str, ...] | None:
    """One set for a ``|`` list: the best set of each alternative, together (None when an
    alternative has none). ``left`` / ``right``: whether every match of the list is preceded /
    followed by a non-word character or the text's start / end (see :func:`_sequence_literals`)."""
    got: list[str] = []
    for a, b in _split_alternatives(p, start, end):
        sets = _sequence_literals(p, a, b, left, right)
        if not sets:
            return None
        got.extend(sets[0])
    return tuple(dict.fromkeys(got))


_QUANTIFIER = re.compile(r"(?:[?*+]|\{(\d*)(?:,\d*)?\})\??")
_FLAGS = re.compile(r"\?[a-zA-Z-]*")


class _Item:
    """One item of a sequence as :func:`_sequence_literals` reads it."""

    __slots__ = ("char", "group", "optional", "repeated", "nonword", "zero", "start_anchor", "end_anchor",
                 "ends_nonword", "starts_nonword")

    def __init__(self) -> None:
        self.char: str | None = None  # a letter or digit matched as itself
        self.group: tuple[int, int] | None = None
        self.optional = self.repeated = False
        self.nonword = False  # matches only characters that are not letters or digits
        self.zero = False  # matches no character (an assertion, a flags group)
        self.start_anchor = self.end_anchor = False  # ^ \A / $ \z
        # for a group: whether every non-empty match of it ends / starts with a non-word
        # character (True), may end / start with a word character (False), or only matches
        # empty or leaves it to what is before / after it (None)
        self.ends_nonword: bool | None = None
        self.starts_nonword: bool | None = None


def _class_nonword(p: str, i: int, j: int) -> bool:
    r"""Whether the class ``p[i:j]`` matches only characters that are not letters or digits
    (:meth:`str.isalnum`, which equals RE2's ``[\pL\pN]`` on every code point): a negated
    class holding ``\pL`` and ``\pN``, or a class of non-word characters listed one by one."""
    body = p[i + 1 : j - 1]
    if body.startswith("^"):
        return "\\pL" in body and "\\pN" in body
    k, n = 0, len(body)
    while k < n:
        c = body[k]
        if c == "\\":
            if k + 1 >= n:
                return False
            d = body[k + 1]
            if not (d in "sntrfv" or not d.isalnum()):
                return False
            k += 2
            continue
        if c.isalnum() or c == "[" or (c == "-" and 0 < k < n - 1):
            return False
        k += 1
    return n > 0


@functools.lru_cache(maxsize=4096)
def _parse_items(p: str, start: int, end: int) -> tuple[_Item, ...]:
    """The items of ``p[start:end]`` (memoised: a group's alternatives are read again by every
    enclosing level; the items are not changed once made)."""
    items: list[_Item] = []
    i = start
    while i < end:
        c = p[i]
        it = _Item()
        if c == "\\":
            if i + 1 >= end:
                raise _Unparsed
            d = p[i + 1]
            if d.isdigit() or d in "QCE":  # octal codes, \Q...\E, \C: not read here
                raise _Unparsed
            if d in "pPx" and p.startswith("{", i + 2):
                j = p.find("}", i + 2)
                if j < 0:
                    raise _Unparsed
                nxt = j + 1
            elif d == "x":
                nxt = i + 4
            elif d in "pP":
                nxt = i + 3
            else:
                nxt = i + 2
                if d in "bB":
                    it.zero = True
                elif d == "A":
                    it.zero = it.start_anchor = True
                elif d == "z":
                    it.zero = it.end_anchor = True
                elif d in "sntrfv" or not d.isalnum():
                    it.nonword = True
        elif c == "[":
            nxt = _skip_class(p, i)
            it.nonword = _class_nonword(p, i, nxt)
        elif c == "(":
            j = _close_paren(p, i)
            nxt = j + 1
            inner = i + 1
            if p.startswith("?", inner):
                colon = p.find(":", inner, j)
                if p.startswith("?P<", inner) or p.startswith("?<", inner):
                    inner = p.index(">", inner) + 1
                elif colon >= 0 and _FLAGS.fullmatch(p, inner, colon):
                    inner = colon + 1
                elif _FLAGS.fullmatch(p, inner, j):  # (?i): flags only, matches nothing
                    inner = j
                else:
                    raise _Unparsed
            it.group = (inner, j)
            if inner >= j:
                it.zero = True
            else:
                ends, starts = [], []
                for a, b in _split_alternatives(p, inner, j):
                    sub = _parse_items(p, a, b)
                    ends.append(_left_of(sub, len(sub), None))
                    starts.append(_right_of(sub, -1, None))
                it.ends_nonword = False if False in ends else True if all(ends) else None
                it.starts_nonword = False if False in starts else True if all(starts) else None
        elif c in ".^$":
            nxt = i + 1
            if c == "^":
                it.zero = it.start_anchor = True
            elif c == "$":
                it.zero = it.end_anchor = True
        elif c in ")|?*+{":
            raise _Unparsed  # not where an item starts
        else:
            nxt = i + 1
            if c.isalnum():
                it.char = c
            else:
                it.nonword = True
        q = _QUANTIFIER.match(p, nxt, end)
        if q is not None:
            nxt = q.end()
            quant = q.group(0)[0]
            if quant == "{":
                it.optional = q.group(1) in ("", "0")
                it.repeated = q.group(0).rstrip("?") != "{1}"
            else:
                it.optional = quant in "?*"
                it.repeated = quant == "+" or quant == "*"
        items.append(it)
        i = nxt
    return tuple(items)


def _nonword_beside(items: "Sequence[_Item]", k: int, context: bool | None, *, before: bool) -> bool | None:
    """Whether the character before (``before``) or after ``items[k]`` is always a non-word
    character (or there is none: the text's start or end): True, False, or ``context`` when the
    items on that side may all match empty (``context``: what is known of the character beyond
    the sequence on that side)."""
    for it in (reversed(items[:k]) if before else items[k + 1 :]):
        if it.start_anchor if before else it.end_anchor:
            return True
        if it.zero:
            continue
        if it.group is not None:
            edge = it.ends_nonword if before else it.starts_nonword
        else:
            edge = it.nonword
        if edge is False:
            return False
        if edge is None or it.optional:
            continue
        return True
    return context


def _left_of(items: "Sequence[_Item]", k: int, context: bool | None) -> bool | None:
    """:func:`_nonword_beside` for the character before ``items[k]``."""
    return _nonword_beside(items, k, context, before=True)


def _right_of(items: "Sequence[_Item]", k: int, context: bool | None) -> bool | None:
    """:func:`_nonword_beside` for the character after ``items[k]``."""
    return _nonword_beside(items, k, context, before=False)


MAX_VARIANTS_OPTIONAL = 4  # optional separators of a phrase read as all their variants (2 ** 4)


def _whole(word: str) -> str | None:
    """``word`` as a whole-word atom: framed by spaces (normalised), or None."""
    w = normalize(word)
    return f" {w} " if w.isalnum() else None


def _good_atom(atom: str) -> bool:
    return (atom.isalnum() and len(atom) >= MIN_LITERAL) or (
        len(atom) > 2 and atom[0] == " " and atom[-1] == " " and atom[1:-1].isalnum()
    )


def _phrase_variants(items: "Sequence[_Item]", left: bool, right: bool) -> tuple[str, ...] | None:
    """For a sequence of letters and separators (non-word items, some optional: at most
    :data:`MAX_VARIANTS_OPTIONAL`), one atom per variant (each optional separator present or
    absent): its longest word of at least :data:`MIN_LITERAL` letters, else its longest word
    bounded on both sides (a separator, or ``left`` / ``right`` for the first / last word) as a
    whole word. None when a variant has neither or the sequence is not of that form."""
    optional = []
    for k, it in enumerate(items):
        if it.zero:
            continue
        if it.char is not None:
            if it.optional or it.repeated:
                return None
        elif not it.nonword:
            return None
        elif it.optional:
            optional.append(k)
    if len(optional) > MAX_VARIANTS_OPTIONAL or not any(it.char is not None for it in items):
        return None
    atoms: list[str] = []
    for mask in range(1 << len(optional)):
        absent = {k for b, k in enumerate(optional) if not mask >> b & 1}
        words: list[list] = []  # [letters, bounded before]
        current: list[str] = []
        before = left  # a separator (present) before the current word, or the context
        for k, it in enumerate(items):
            if it.zero or k in absent:
                continue
            if it.char is not None:
                current.append(it.char)
            else:  # a separator present
                if current:
                    words.append(["".join(current), before, True])
                    current = []
                before = True
        if current:
            words.append(["".join(current), before, right])
        best = None
        runs = [w for w, _, _ in words if len(w) >= MIN_LITERAL]
        if runs:
            best = normalize(max(runs, key=len))
            if not best.isalnum():
                return None
        else:
            bounded = [w for w, a, b in words if a and b]
            if bounded:
                best = _whole(max(bounded, key=len))
        if best is None:
            return None
        atoms.append(best)
    return tuple(dict.fromkeys(atoms))


def _sequence_literals(p: str, start: int, end: int, left: bool = False, right: bool = False) -> list[tuple[str, ...]]:
    """The sets of the items of a sequence (no top-level ``|``), best first.

    A set holds letter runs (found inside a word) and whole words framed by spaces
    (``" تي "``: a word of the text, all of it). A run shorter than :data:`MIN_LITERAL`
    letters is a whole word when a non-word character (or the text's start / end) is always
    before and after it; ``left`` / ``right`` say so of the characters around the sequence.
    A phrase of letters with optional separators (``تی ?تی ?پی``) gives one atom per variant."""
    candidates: list[tuple[str, ...]] = []
    items = _parse_items(p, start, end)
    run: list[str] = []
    first = 0  # the index of the run's first letter

    def close(k: int, whole: bool) -> None:
        """The run ends before ``items[k]`` (``whole``: it may be a whole word)."""
        if run:
            text = "".join(run)
            if len(text) >= MIN_LITERAL:
                candidates.append((normalize(text),))
            elif whole and _left_of(items, first, left) is True and _right_of(items, k - 1, right) is True:
                atom = _whole(text)
                if atom is not None:
                    candidates.append((atom,))
            run.clear()

    for k, it in enumerate(items):
        if it.char is not None and not it.optional:
            if not run:
                first = k
            run.append(it.char)
            if it.repeated:
                close(k + 1, False)
        else:
            close(k, True)
            group = it.group
            if group is not None and not it.optional and group[0] < group[1]:
                inner_left = inner_right = False
                if not it.repeated:
                    inner_left = _left_of(items, k, left) is True
                    inner_right = _right_of(items, k, right) is True
                got = _alternation_literals(p, group[0], group[1], inner_left, inner_right)
                if got:
                    candidates.append(got)
    close(len(items), True)
    good = [c for c in candidates if all(map(_good_atom, c))]
    if not good:
        phrase = _phrase_variants(items, left, right)
        if phrase and all(map(_good_atom, phrase)):
            good = [phrase]
    good = list(dict.fromkeys(good))
    good.sort(key=lambda c: (-min(map(_atom_score, c)), len(c)))
    return good


def _atom_score(atom: str) -> float:
    """A run scores its length; a whole word (shorter than :data:`MIN_LITERAL`) less than any
    run: its letters minus a half (``" تي "``: 1.5)."""
    return len(atom) - 2.5 if atom[0] == " " else len(atom)
