"""Datasette plugin: claimwatch's pages, SQL functions for the canned search, read-only connections.

Pages (``register_routes``; templates in ``monitor/web/templates``):

* ``/`` home: latest hits by level and kind, recent incidents with their timelines, channel
  health, a search box (Datasette's own index of databases stays at ``/<database>``);
* ``/incident/<id>`` (``.md`` / ``.json`` exports), ``/message/<platform:channel:id>``,
  ``/channel/<platform>/<channel_id>``, ``/search``;
* ``/-/healthz``: 200 when the archive answers a query (for container health checks; needs
  no login).

SQL functions:

* ``cw_fts(q)``: a user query translated to FTS5 with the rules' normalisation
  (:func:`monitor.query.fts.translate`); an empty query matches nothing.
* ``cw_snippet(text, q)``: a window of the original text around the words ``q`` looks for,
  marked with private-use characters that :func:`render_cell` turns into ``<mark>`` after
  HTML-escaping everything else.
"""

from __future__ import annotations

import asyncio
import mimetypes
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from datasette import hookimpl
from datasette.utils.asgi import Forbidden, NotFound, Response
from markupsafe import Markup, escape

from ..query.filters import FilterError
from ..query.fts import QuerySyntaxError, compile_query, translate
from ..query.highlight import CLOSE, OPEN, Highlighter, mark, snippet
from . import data, search_page
from .text import http_url, neutralize_bidi, text_dir


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
        html = str(escape(neutralize_bidi(value))).replace(OPEN, "<mark>").replace(CLOSE, "</mark>")
        return Markup(f'<span dir="auto">{html}</span>')
    if isinstance(value, str) and column in ("text", "channel", "title", "channel_title", "author"):
        cls = ' class="cw-cell"' if column == "text" else ""
        return Markup(f'<span dir="{text_dir(value)}"{cls}>{escape(neutralize_bidi(value))}</span>')
    return None


@hookimpl
def prepare_jinja2_environment(env: Any) -> None:
    env.filters["cwq"] = lambda s: quote(str(s), safe=":@-_.~")
    env.filters["nobidi"] = neutralize_bidi
    env.filters["textdir"] = text_dir
    env.filters["httpurl"] = http_url  # links from records: http(s) only


@hookimpl
def forbidden(datasette: Any, request: Any, message: str) -> Any:
    """With a password set, a visitor who is not logged in is sent to the login page."""
    cfg = _cfg(datasette)
    if cfg.get("password") and not request.actor:
        return Response.redirect(datasette.urls.path("/-/login"))
    return None


@hookimpl
def menu_links(datasette: Any, actor: Any) -> list[dict[str, str]]:
    db = _db_name(datasette)
    return [{"href": datasette.urls.path("/"), "label": "Overview"},
            {"href": datasette.urls.path("/search"), "label": "Search"},
            {"href": datasette.urls.database(db), "label": "Tables and canned queries"}]


def _cfg(datasette: Any) -> dict[str, Any]:
    return getattr(datasette, "claimwatch", None) or {}


def _db_name(datasette: Any) -> str:
    names = [n for n in datasette.databases if not n.startswith("_")]
    return names[0] if names else "_memory"


async def _guard(datasette: Any, request: Any) -> Any:
    db = _db_name(datasette)
    await datasette.ensure_permissions(request.actor, [("view-database", db), "view-instance"])
    return datasette.get_database(db)


async def _page(datasette: Any, request: Any, template: str, context: dict[str, Any], status: int = 200) -> Response:
    context = {**context, "cw_db": _db_name(datasette), "cw_allow_sql": _cfg(datasette).get("allow_sql", False)}
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, status=status)


def _titles(datasette: Any) -> dict[str, str]:
    return _cfg(datasette).get("titles") or {}


async def home_view(datasette: Any, request: Any) -> Response:
    db = await _guard(datasette, request)
    titles = _titles(datasette)
    ctx = await db.execute_fn(lambda conn: data.home(conn, titles))
    return await _page(datasette, request, "cw_home.html", {"home": ctx})


async def incident_view(datasette: Any, request: Any) -> Response:
    db = await _guard(datasette, request)
    titles = _titles(datasette)
    iid = int(request.url_vars["id"])
    fmt = request.url_vars.get("fmt") or ""
    inc = await db.execute_fn(lambda conn: data.incident(conn, iid, titles))
    if inc is None:
        raise NotFound(f"no incident {iid}")
    if fmt == ".json":
        return Response.json(data.incident_json(inc["_detail"]), headers={"content-disposition":
                             f'inline; filename="incident-{inc["id"]}.json"'})
    if fmt == ".md":
        from ..incidents.query import markdown

        return Response(markdown(inc["_detail"], titles), content_type="text/markdown; charset=utf-8",
                        headers={"content-disposition": f'inline; filename="incident-{inc["id"]}.md"'})
    if inc["id"] != iid:
        return Response.redirect(datasette.urls.path(f"/incident/{inc['id']}"))
    return await _page(datasette, request, "cw_incident.html", {"inc": inc})


async def message_view(datasette: Any, request: Any) -> Response:
    db = await _guard(datasette, request)
    titles = _titles(datasette)
    key = unquote(request.url_vars["key"])
    from ..query.show import RefError, parse_ref

    try:
        parse_ref(key)
    except RefError as exc:
        raise NotFound(str(exc)) from None
    msg = await db.execute_fn(lambda conn: data.message(conn, key, titles))
    if msg is None:
        raise NotFound(f"no message {key}")
    msg["media_dir"] = bool(_cfg(datasette).get("media_dir"))
    return await _page(datasette, request, "cw_message.html", {"m": msg})


async def channel_view(datasette: Any, request: Any) -> Response:
    db = await _guard(datasette, request)
    titles = _titles(datasette)
    platform = request.url_vars["platform"]
    channel_id = unquote(request.url_vars["channel_id"])
    if not data.valid_platform(platform):
        raise NotFound(f"unknown platform {platform}")
    ch = await db.execute_fn(lambda conn: data.channel(conn, platform, channel_id, titles))
    if ch is None:
        raise NotFound(f"no channel {platform}:{channel_id}")
    return await _page(datasette, request, "cw_channel.html", {"ch": ch})


async def search_view(datasette: Any, request: Any) -> Response:
    db = await _guard(datasette, request)
    titles = _titles(datasette)
    params = search_page.parse_params(request.args)
    error = None
    try:
        res = await db.execute_fn(lambda conn: search_page.run(conn, params, titles))
    except (QuerySyntaxError, FilterError) as exc:
        error = str(exc)
        res = {"params": params, "results": [], "facets": [], "chart": None, "candidates": 0,
               "window_full": False, "active": []}
    return await _page(datasette, request, "cw_search.html", {"s": res, "error": error},
                       status=400 if error else 200)


async def media_view(datasette: Any, request: Any) -> Response:
    """A downloaded media file of a message, only from inside the configured media folder."""
    db = await _guard(datasette, request)
    root = _cfg(datasette).get("media_dir")
    if not root:
        raise NotFound("no media folder configured (serve --media DIR)")
    key = unquote(request.url_vars["key"])
    n = int(request.url_vars["n"])
    msg = await db.execute_fn(lambda conn: data.message(conn, key, {}))
    if msg is None or n >= len(msg["media"]):
        raise NotFound("no such media")
    path = msg["media"][n].get("path")
    base = Path(root).resolve()
    if not path:
        raise NotFound("media not downloaded")
    p = Path(path)
    candidates = [p] if p.is_absolute() else [base / p]
    candidates.append(base / p.name)
    for c in candidates:
        try:
            real = c.resolve()
        except OSError:
            continue
        if real.is_relative_to(base) and real.is_file():
            body = await asyncio.to_thread(real.read_bytes)
            ctype = mimetypes.guess_type(real.name)[0] or "application/octet-stream"
            if ctype not in ("image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "audio/mpeg", "audio/ogg"):
                ctype = "application/octet-stream"
            return Response(body, content_type=ctype, headers={
                "x-content-type-options": "nosniff", "content-security-policy": "default-src 'none'"})
    raise NotFound("media file not found in the media folder")


TABLE_CSS = """
/* claimwatch: message texts in Datasette's own table/row/query pages */
.cw-cell { display: block; min-width: 22em; max-width: 48em; unicode-bidi: isolate; text-align: start; }
td [dir], td[dir] { text-align: start; }
"""


async def css_view(datasette: Any, request: Any) -> Response:
    return Response(TABLE_CSS, content_type="text/css; charset=utf-8",
                    headers={"cache-control": "max-age=3600"})


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.path("/-/claimwatch.css")]


async def healthz_view(datasette: Any, request: Any) -> Response:
    db = datasette.get_database(_db_name(datasette))
    try:
        await db.execute("select 1 from messages limit 1")
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return Response.text(f"archive not readable: {type(exc).__name__}", status=503)
    return Response.text("ok")


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (r"^/$", home_view),
        (r"^/search$", search_view),
        (r"^/incident/(?P<id>\d+)(?P<fmt>\.md|\.json)?$", incident_view),
        (r"^/message/(?P<key>[^/]+)$", message_view),
        (r"^/channel/(?P<platform>[a-z]+)/(?P<channel_id>[^/]+)$", channel_view),
        (r"^/media/(?P<key>[^/]+)/(?P<n>\d+)$", media_view),
        (r"^/-/healthz$", healthz_view),
        (r"^/-/claimwatch\.css$", css_view),
    ]


__all__ = ["Forbidden"]
