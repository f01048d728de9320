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


def hit_score_sql(conn: sqlite3.Connection, alias: str = "h") -> str:
    """``<alias>.score`` (a learned classifier's probability, migration 9: ``hits.score``), or
    ``NULL`` in an archive from before that migration opened read-only (queries, the web view,
    ``verify`` do not migrate), so one SELECT serves both."""
    has = any(row[1] == "score" for row in conn.execute("PRAGMA table_info(hits)"))
    return f"{alias}.score" if has else "NULL"


def score_text(score: Any) -> str:
    """A probability as shown everywhere (alerts, ``hits``, ``show``, the web view): ``0.83``;
    "" when there is none (a rule's hit)."""
    if score is None:
        return ""
    try:
        return f"{float(score):.2f}"
    except (TypeError, ValueError):
        return ""


CLASSIFIER_WHY = "learned classifier: {kind}, probability {score}"


def classifier_why(kind: Any, score: Any) -> str:
    """Why a hit without terms matched: ``learned classifier: claim, probability 0.83``; "" for
    a hit without a score (a rule's hit: its terms say why)."""
    shown = score_text(score)
    return CLASSIFIER_WHY.format(kind=kind or "watch", score=shown) if shown else ""
