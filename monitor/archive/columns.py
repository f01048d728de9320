"""Reading archive rows back: rows as dicts and the JSON columns (tags, matches, actors, raw …)
decoded, with a fallback for a value that is not JSON (an archive written by hand)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

_KEEP = object()


def dict_rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    """The cursor's remaining rows as dicts keyed by column name."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def json_column(value: str | None, default: Any = None, *, bad: Any = _KEEP) -> Any:
    """``value`` decoded; ``default`` when it is NULL or empty; when it is not JSON: ``bad``,
    or ``default`` when ``bad`` is not given."""
    if not value:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return default if bad is _KEEP else bad
