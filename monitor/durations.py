"""Parsing of human durations (``10m``, ``3d``, ``90s``) and sizes (``20MB``)."""

from __future__ import annotations

import re
from typing import Any

_DUR_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_DUR_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3, None: 1}


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"2h"``, ``"3d"``, ``"1w"``. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value!r}")
        return float(value)
    m = _DUR_RE.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 10m, 2h, 3d)")
    unit = m.group(2).lower() if m.group(2) else None
    return float(m.group(1)) * _DUR_UNITS[unit]


def parse_size(value: Any) -> int:
    """Bytes from ``1024``, ``"20MB"``, ``"5MiB"``. Raises ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (use e.g. 20MB)")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _SIZE_UNITS[unit])
