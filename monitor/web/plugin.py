"""Datasette plugin: SQL functions for the canned search, highlighted snippets, read-only connections.

* ``cw_fts(q)``: a user query translated to FTS5 with the rules' normalisation
  (:func:`monitor.query.fts.translate`); an empty query matches nothing.
* ``cw_snippet(text, q)``: a window of the original text around the words ``q`` looks for,
  marked with private-use characters that :func:`render_cell` turns into ``<mark>`` after
  HTML-escaping everything else.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl
from markupsafe import Markup, escape

from functools import lru_cache

from ..query.fts import QuerySyntaxError, compile_query, translate
from ..query.highlight import CLOSE, OPEN, Highlighter, mark, snippet


def cw_fts(query: str | None) -> str:
    if query is None or not str(query).strip():
        return '""'  # the empty phrase: matches nothing
    try:
        return translate(str(query))
    except QuerySyntaxError:
        # Hand FTS5 the raw text: it rejects it with its own syntax error, which Datasette shows.
        return str(query)


@lru_cache(maxsize=64)
def _highlighter(query: str) -> Highlighter | None:
    try:
        return Highlighter(compile_query(query))
    except QuerySyntaxError:
        return None


def cw_snippet(text: str | None, query: str | None) -> str:
    text = text or ""
    hl = _highlighter(str(query or ""))
    spans = hl.spans(text) if hl is not None else []
    window, inside = snippet(text, spans, 200)
    return mark(window, inside)


@hookimpl
def prepare_connection(conn: Any, database: str) -> None:
    conn.create_function("cw_fts", 1, cw_fts, deterministic=True)
    conn.create_function("cw_snippet", 2, cw_snippet, deterministic=True)
    if database not in ("_internal", "_memory"):
        conn.execute("PRAGMA query_only = 1")


@hookimpl
def render_cell(value: Any, column: str) -> Any:
    if column == "snippet" and isinstance(value, str) and OPEN in value:
        html = str(escape(value)).replace(OPEN, "<mark>").replace(CLOSE, "</mark>")
        return Markup(html)
    return None
