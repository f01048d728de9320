"""Bounding JSON nesting depth in hostile input, before anything builds deep objects.

``DepthGuard`` watches a byte stream as it is read (ijson's C builder would otherwise
assemble 100,000 nested arrays, and recursive code later hits RecursionError).
``too_deep`` checks an object already parsed (a JSONL line), iteratively.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 100  # real exports nest under 10 levels

_DELTA = [0] * 256
_DELTA[0x5B] = _DELTA[0x7B] = 1
_DELTA[0x5D] = _DELTA[0x7D] = -1
_NOT_KEPT = bytes(b for b in range(256) if b not in b'[]{}"')


class DepthGuard:
    """Feed the bytes of a JSON document in order; ``feed`` returns the file offset where
    nesting first exceeds ``limit`` (or None). Escaped backslashes and quotes are dropped,
    the rest reduced to quotes and brackets (C-speed bytes methods), and the brackets
    outside strings are counted."""

    def __init__(self, limit: int = MAX_JSON_DEPTH, offset: int = 0) -> None:
        self.limit = limit
        self.offset = offset  # file offset of the next byte fed
        self._carry = b""  # trailing backslashes, completed by the next chunk
        self._in_string = False  # does the next byte start inside a string?
        self._depth = 0  # brackets open

    def feed(self, chunk: bytes) -> int | None:
        data = self._carry + chunk
        start = self.offset - len(self._carry)
        self.offset += len(chunk)
        kept = len(data.rstrip(b"\\"))
        data, self._carry = data[:kept], data[kept:]
        parts = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_KEPT).split(b'"')
        in_string = self._in_string
        brackets = b"".join(parts[1::2] if in_string else parts[0::2])
        if len(parts) % 2 == 0:
            self._in_string = not in_string
        base = self._depth
        if brackets:
            depths = list(accumulate(map(_DELTA.__getitem__, brackets), initial=base))  # C-speed
            if max(depths) > self.limit:
                return start + _first_too_deep(data, base, self.limit, in_string)
            depth = depths[-1]
        else:
            depth = base
        self._depth = depth
        return None


def _first_too_deep(data: bytes, depth: int, limit: int, in_string: bool) -> int:
    """Offset in ``data`` of the bracket that goes too deep."""
    escaped = False
    for i, b in enumerate(data):
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:
                escaped = True
            elif b == 0x22:
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return i
        elif b in (0x5D, 0x7D):
            depth -= 1
    return len(data)


def too_deep(obj: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Does this parsed JSON value nest deeper than ``limit`` levels? (no recursion)"""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return True
        stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False


def line_too_deep(line: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Does this JSON text nest deeper than ``limit``? (checked before decoding it)"""
    if line.count(b"[") + line.count(b"{") <= limit:
        return False
    return DepthGuard(limit).feed(line) is not None


def depth_message(limit: int = MAX_JSON_DEPTH) -> str:
    return f"JSON nested deeper than {limit} levels"
