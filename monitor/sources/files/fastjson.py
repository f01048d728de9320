"""JSON text -> Python: orjson (~5x faster than the json module) where it gives the json
module's very result, the json module everywhere else.

orjson refuses what the json module accepts in a few cases (NaN and Infinity, lone
surrogates, a byte order mark, UTF-16/32 text, 1e400); then the json module reads the text
(and raises its own error for text neither reads). One case orjson does *not* refuse:
integers past 64 bits, which it turns into floats (``2**70 + 1`` would come back as
``1.1805916207174113e+21``). So text with a run of 19 or more digits that may be a number
(not preceded by a quote or a letter, i.e. not inside a string such as an X id) is read by
the json module: the result is the same whatever the text, only the speed differs.

:func:`loads_checked` also tells whether orjson read the text: orjson refuses every lone
surrogate, so a record it read needs no lone-surrogate scrub
(:mod:`monitor.sources.surrogates`).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_DIGITS = bytes.maketrans(b"0123456789", b"9999999999")  # digits -> "9" (for finding runs)
_RUN = b"9" * 19  # i64 has 19 digits; orjson reads up to u64 (20 digits) as ints
# A number token starts after one of these (possibly with whitespace and a minus sign).
_NUMBER_BEFORE = frozenset(b":,[ \t\r\n-")


def may_have_big_int(text: bytes) -> bool:
    """Could ``text`` hold an integer of 19 or more digits outside a string? (cheap; errs
    towards yes)"""
    marked = text.translate(_DIGITS)
    at = marked.find(_RUN)
    while at != -1:
        if at == 0 or text[at - 1] in _NUMBER_BEFORE:
            return True
        end = at + len(_RUN)
        while end < len(marked) and marked[end] == 0x39:
            end += 1
        at = marked.find(_RUN, end)
    return False


def loads_checked(text: bytes | str, *, raw: bytes | None = None) -> tuple[Any, bool]:
    """(the value, whether orjson read it); the json module's result and errors. ``raw``:
    ``text`` as UTF-8 when the caller has it (a str is encoded to be scanned otherwise)."""
    if raw is None:
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if not may_have_big_int(raw):
        try:
            return orjson.loads(text), True
        except orjson.JSONDecodeError:
            pass
    return json.loads(text), False


def loads(text: bytes | str, *, raw: bytes | None = None) -> Any:
    """The value of JSON ``text``, as ``json.loads`` gives it (see the module's doc)."""
    return loads_checked(text, raw=raw)[0]
