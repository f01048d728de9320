"""Full-text search over the archive (FTS5 on the normalised ``search_text`` column).

    results = search(archive, 'الدولة AND "claimed responsibility"', Filters.build(since="7d"))
    for r in results: print(r.key, r.score, r.snippet)

Ranking is FTS5's bm25 (``rank``). To keep latency bounded on large archives, candidates
are taken newest-first (by archive row) and at most ``window`` of them are ranked; a query
with fewer matches than ``window`` is ranked over all of them. ``window=0`` ranks every match.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..archive import Archive
from ..model import Message
from .filters import Filters, resolve_channels
from .fts import CompiledQuery, QuerySyntaxError, compile_query, fts_error, is_fts_error
from .highlight import Highlighter, Span, snippet

DEFAULT_WINDOW = 2_000
SORTS = ("rank", "date")


@dataclass
class SearchResult:
    message: Message
    row: dict[str, Any]  # the messages row (deleted_at, first_seen_at ...)
    score: float  # -bm25: higher is better
    highlights: list[Span] = field(default_factory=list)  # spans of message.text that matched
    snippet: str = ""
    snippet_spans: list[Span] = field(default_factory=list)  # spans of snippet that matched

    @property
    def key(self) -> str:
        return self.message.key

    def marked_snippet(self, open_: str = "**", close: str = "**") -> str:
        out, pos = [], 0
        for s, e in self.snippet_spans:
            out += [self.snippet[pos:s], open_, self.snippet[s:e], close]
            pos = e
        out.append(self.snippet[pos:])
        return "".join(out)

    def to_json(self) -> dict[str, Any]:
        """The canonical Message fields, plus key, score, snippet, highlights and deleted_at."""
        d = self.message.to_dict()
        d.update(
            key=self.key,
            score=round(self.score, 6),
            snippet=self.marked_snippet(),
            highlights=[list(s) for s in self.highlights],
            deleted_at=self.row.get("deleted_at"),
        )
        return d


@dataclass
class SearchResults:
    query: str
    fts: str  # the FTS5 expression actually run
    results: list[SearchResult]
    window: int
    window_full: bool  # True when more matches than ``window`` exist (ranking covered the newest)

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)


def search(
    archive: Archive,
    query: str,
    filters: Filters | None = None,
    *,
    limit: int = 20,
    window: int = DEFAULT_WINDOW,
    sort: str = "rank",
    snippet_width: int = 160,
) -> SearchResults:
    """Run ``query`` (user syntax, see :mod:`monitor.query.fts`). Raises QuerySyntaxError."""
    if sort not in SORTS:
        raise QuerySyntaxError(f"--sort: unknown order {sort!r} (rank or date)")
    if limit < 1:
        raise QuerySyntaxError("--limit must be at least 1")
    compiled = compile_query(query)
    fts = compiled.fts
    conn = archive.conn
    filters = filters or Filters()
    source, where, args = _plan(conn, fts, filters)
    inner = f"SELECT f.rowid AS id, f.rank AS rank FROM {source} WHERE {where} ORDER BY f.rowid DESC"
    if window > 0:
        # One candidate more than the window tells whether the window was full; that
        # extra (oldest) candidate is then dropped, in the same statement.
        inner = (
            "SELECT id, rank, count(*) OVER () AS n, min(id) OVER () AS oldest"
            f" FROM ({inner} LIMIT {int(window) + 1})"
        )
        keep = f" WHERE t.n <= {int(window)} OR t.id != t.oldest"
    else:
        inner = f"SELECT id, rank, 0 AS n FROM ({inner})"
        keep = ""
    if sort == "rank":
        sql = f"SELECT t.id, t.rank, t.n FROM ({inner}) t{keep} ORDER BY t.rank, t.id DESC LIMIT ?"
    else:
        sql = (
            f"SELECT t.id, t.rank, t.n FROM ({inner}) t JOIN messages d ON d.id = t.id{keep}"
            " ORDER BY d.date DESC, t.id DESC LIMIT ?"
        )
    try:
        got = conn.execute(sql, [*args, limit]).fetchall()
        window_full = window > 0 and bool(got) and got[0][2] > window
        rows = [(r[0], r[1]) for r in got]
        results = _load(archive, compiled, rows, snippet_width)
    except sqlite3.OperationalError as exc:
        if is_fts_error(exc):
            raise fts_error(query, exc) from None
        raise
    return SearchResults(query, fts, results, window, window_full)


def _plan(conn: sqlite3.Connection, fts: str, filters: Filters) -> tuple[str, str, list[Any]]:
    """FROM, WHERE and arguments for the candidate query.

    FTS5 walks its matches newest row first; each filter must be cheap per match:
    channel and rule filters become a membership test in a set built once from an index
    (``+f.rowid`` keeps SQLite from turning it into one FTS lookup per id); a date range
    also bounds the rowids FTS5 walks (the ids of messages posted in that range); only
    the date and platform tests read the message row.
    """
    conds = ["messages_fts MATCH ?"]
    args: list[Any] = [fts]
    row_conds: list[str] = []  # tests that read the message row (joined as m)
    row_args: list[Any] = []
    if filters.channels:
        keys = sorted(resolve_channels(conn, filters.channels, filters.platforms))
        if not keys:
            conds.append("0")
        else:
            union = " UNION ALL ".join(["SELECT id FROM messages WHERE platform=? AND channel_id=?"] * len(keys))
            conds.append(f"+f.rowid IN ({union})")
            for k in keys:
                args += list(k)
    elif filters.platforms:
        row_conds.append(f"m.platform IN ({','.join('?' * len(filters.platforms))})")
        row_args += filters.platforms
    if filters.rules:
        conds.append(
            f"+f.rowid IN (SELECT message_rowid FROM hits WHERE rule_id IN ({','.join('?' * len(filters.rules))}))"
        )
        args += filters.rules
    if filters.since or filters.until:
        dconds: list[str] = []
        dargs: list[Any] = []
        if filters.since:
            dconds.append("date >= ?")
            dargs.append(filters.since)
        if filters.until:
            dconds.append("date < ?")
            dargs.append(filters.until)
        lo, hi = conn.execute(f"SELECT min(id), max(id) FROM messages WHERE {' AND '.join(dconds)}", dargs).fetchone()
        if lo is None:
            conds.append("0")
        else:
            conds.append("f.rowid BETWEEN ? AND ?")
            args += [lo, hi]
            row_conds += [f"m.{c}" for c in dconds]
            row_args += dargs
    if row_conds:
        return "messages_fts f JOIN messages m ON m.id = f.rowid", " AND ".join(conds + row_conds), args + row_args
    return "messages_fts f", " AND ".join(conds), args


def _load(archive: Archive, query: CompiledQuery, rows: list[tuple[int, float]], width: int) -> list[SearchResult]:
    if not rows:
        return []
    ids = [r[0] for r in rows]
    by_id = {
        r["id"]: r
        for r in archive.query(f"SELECT * FROM messages WHERE id IN ({','.join('?' * len(ids))})", ids)
    }
    highlighter = Highlighter(query)
    out: list[SearchResult] = []
    for rid, rank in rows:
        row = by_id.get(rid)
        if row is None:
            continue
        msg = archive.message_from_row(row)
        spans = highlighter.spans(msg.text)
        snip, snip_spans = snippet(msg.text, spans, width)
        out.append(SearchResult(msg, row, -float(rank), spans, snip, snip_spans))
    return out
