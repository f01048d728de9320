"""The search page: the CLI's ``search`` (same query syntax, normalisation, candidate window
and ranking: :mod:`monitor.query.search`) plus facets on the candidates.

Filters on platform, channel, rule and date are the CLI's (``Filters``); level, kind and actor
filters are membership tests on the hits table, planned like the rule filter. Facet counts
and the per-day chart are computed over the candidate window (the newest ``window`` matches,
2,000 by default, as the ranking itself), which keeps the page's cost bounded whatever the
archive's size; the page says when the window was full.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any
from urllib.parse import urlencode

from ..archive import Archive
from ..model import KINDS
from ..model import iso
from ..query.filters import Filters
from ..query.fts import compile_query, fts_error, is_fts_error
from ..query.search import DEFAULT_WINDOW, _load, _plan
from .chart import bars, day_series
from .text import pieces

FACETS = ("platform", "channel", "rule", "level", "kind", "actor", "date")
LIST_PARAMS = ("platform", "channel", "rule", "level", "kind", "actor")
LIMIT = 50
FACET_TOP = 12


def parse_params(args: Any) -> dict[str, Any]:
    """The page's parameters from a request's query string (MultiParams or dict of lists)."""
    def getlist(name: str) -> list[str]:
        vals = args.getlist(name) if hasattr(args, "getlist") else args.get(name, [])
        out: list[str] = []
        for v in vals:
            out += [p.strip() for p in str(v).split(",") if p.strip()]
        return out

    def get(name: str) -> str:
        vals = getlist(name)
        return vals[0] if vals else ""

    p = {name: getlist(name) for name in LIST_PARAMS}
    p.update(q=(args.get("q") or "").strip(), since=get("since"), until=get("until"),
             sort=get("sort") or "rank")
    return p


def url_for(params: dict[str, Any], **change: Any) -> str:
    """``/search?...`` for ``params`` with ``change`` applied (None drops a key)."""
    merged = {**params, **change}
    pairs: list[tuple[str, str]] = []
    if merged.get("q"):
        pairs.append(("q", merged["q"]))
    for name in LIST_PARAMS:
        for v in merged.get(name) or []:
            pairs.append((name, v))
    for name in ("since", "until"):
        if merged.get(name):
            pairs.append((name, merged[name]))
    if merged.get("sort") and merged["sort"] != "rank":
        pairs.append(("sort", merged["sort"]))
    return "/search" + ("?" + urlencode(pairs) if pairs else "")


def _toggle(params: dict[str, Any], name: str, value: str) -> str:
    current = list(params.get(name) or [])
    if value in current:
        current.remove(value)
    else:
        current.append(value)
    return url_for(params, **{name: current})


def run(conn: sqlite3.Connection, params: dict[str, Any], titles: dict[str, str],
        window: int = DEFAULT_WINDOW) -> dict[str, Any]:
    """Raises QuerySyntaxError / FilterError with a message for the page."""
    out: dict[str, Any] = {"params": params, "results": [], "facets": [], "chart": None, "candidates": 0,
                           "window": window, "window_full": False, "active": _active(params, titles)}
    if not params["q"]:
        return out
    compiled = compile_query(params["q"])
    filters = Filters.build(platform=params["platform"] or None, channel=params["channel"] or None,
                            since=params["since"] or None, until=params["until"] or None,
                            rule=params["rule"] or None)
    for name, values in (("kind", params["kind"]),):
        bad = [v for v in values if v not in KINDS]
        if bad:
            from ..query.filters import FilterError

            raise FilterError(f"kind: unknown kind '{bad[0]}' ({', '.join(KINDS)})")
    source, where, args = _plan(conn, compiled.fts, filters)
    conds: list[str] = []
    for column, values in (("level", params["level"]), ("kind", params["kind"])):
        if values:
            conds.append(f"+f.rowid IN (SELECT message_rowid FROM hits WHERE {column} IN ({','.join('?' * len(values))}))")
            args = args + values
    if params["actor"]:
        conds.append("+f.rowid IN (SELECT h.message_rowid FROM hits h, json_each(h.actors) a"
                     f" WHERE h.actors IS NOT NULL AND a.value IN ({','.join('?' * len(params['actor']))}))")
        args = args + params["actor"]
    if conds:
        where = " AND ".join([where, *conds])
    sql = f"SELECT f.rowid, f.rank FROM {source} WHERE {where} ORDER BY f.rowid DESC LIMIT {int(window) + 1}"
    try:
        cands = conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if is_fts_error(exc):
            raise fts_error(params["q"], exc) from None
        raise
    out["window_full"] = len(cands) > window
    cands = cands[:window]
    out["candidates"] = len(cands)
    if not cands:
        return out
    ids_json = json.dumps([c[0] for c in cands])
    rows = conn.execute(
        "SELECT id, platform, channel_id, coalesce(channel, channel_title, channel_id), substr(date, 1, 10)"
        " FROM messages WHERE id IN (SELECT value FROM json_each(?))", (ids_json,),
    ).fetchall()
    date_of = {r[0]: r[4] for r in rows}
    if params["sort"] == "date":
        top = sorted(cands, key=lambda c: (date_of.get(c[0], ""), c[0]), reverse=True)[:LIMIT]
    else:
        top = sorted(cands, key=lambda c: (c[1], -c[0]))[:LIMIT]
    results = _load(Archive(conn, ""), compiled, [(c[0], c[1]) for c in top], 240)
    hit_rows = conn.execute(
        "SELECT message_rowid, rule_id, level, kind, actors FROM hits"
        " WHERE message_rowid IN (SELECT value FROM json_each(?))", (ids_json,),
    ).fetchall()
    levels: dict[int, set[str]] = {}
    for mid, _rule, level, _kind, _actors in hit_rows:
        levels.setdefault(mid, set()).add(level)
    out["results"] = [{
        "key": r.key, "date": iso(r.message.date),
        "channel": r.message.channel or r.message.channel_title or r.message.channel_id,
        "platform": r.message.platform, "channel_id": r.message.channel_id,
        "snippet": pieces(r.snippet, r.snippet_spans), "score": round(r.score, 3),
        "url": r.message.url, "deleted_at": r.row.get("deleted_at"), "levels": sorted(levels.get(r.row["id"], ())),
    } for r in results]
    out["facets"] = _facets(params, rows, hit_rows, titles)
    out["chart"] = bars(day_series(_count(r[4] for r in rows)))
    return out


def _count(values: Any) -> dict[str, int]:
    c: dict[str, int] = {}
    for v in values:
        c[v] = c.get(v, 0) + 1
    return c


def _facets(params: dict[str, Any], rows: list[tuple], hit_rows: list[tuple], titles: dict[str, str]) -> list[dict]:
    per_msg: dict[str, dict[str, set[int]]] = {name: {} for name in ("rule", "level", "kind", "actor")}
    for mid, rule, level, kind, actors in hit_rows:
        per_msg["rule"].setdefault(rule, set()).add(mid)
        per_msg["level"].setdefault(level, set()).add(mid)
        per_msg["kind"].setdefault(kind, set()).add(mid)
        try:
            names = json.loads(actors) if actors else []
        except ValueError:
            names = []
        for a in names if isinstance(names, list) else []:
            per_msg["actor"].setdefault(str(a), set()).add(mid)
    names = {}
    for _id, _p, cid, name, _d in rows:
        names.setdefault(cid, name)
    counts = {
        "platform": _count(r[1] for r in rows),
        "channel": _count(r[2] for r in rows),
        "date": _count(r[4] for r in rows),
        **{k: {v: len(ids) for v, ids in d.items()} for k, d in per_msg.items()},
    }
    facets = []
    for name in FACETS:
        items = sorted(counts[name].items(), key=lambda kv: (-kv[1], kv[0]))
        if name == "date":
            items = sorted(counts[name].items(), reverse=True)
        values = []
        for value, n in items[:FACET_TOP]:
            if name == "date":
                selected = params["since"] == value and params["until"] == value
                href = url_for(params, since=None, until=None) if selected else url_for(params, since=value, until=value)
            else:
                selected = value in (params.get(name) or [])
                href = _toggle(params, name, value)
            label = {"channel": names.get(value, value), "actor": titles.get(value, value)}.get(name, value)
            values.append({"value": value, "label": label, "count": n, "href": href, "selected": selected})
        facets.append({"name": name, "values": values, "more": max(0, len(items) - FACET_TOP)})
    return facets


def _active(params: dict[str, Any], titles: dict[str, str]) -> list[dict[str, str]]:
    out = []
    for name in LIST_PARAMS:
        for v in params.get(name) or []:
            out.append({"name": name, "label": titles.get(v, v) if name == "actor" else v,
                        "href": _toggle(params, name, v)})
    for name in ("since", "until"):
        if params.get(name):
            out.append({"name": name, "label": params[name], "href": url_for(params, **{name: None})})
    return out
