"""Reading incidents: the listing, one incident's timeline, its Markdown (library behind the CLI)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterator

from ..bidi import neutralize_bidi
from ..model import make_url
from ..web.text import http_url
from ..query.filters import FilterError, parse_when
from ..timefmt import compact_duration, offset, parse_iso
from ..model import KINDS
from .corrections import resolve

_FIRST_SEEN = (
    "SELECT platform, channel_id, message_id, date, url, channel, channel_title FROM messages WHERE id=?"
)
REPOST_COLLAPSE_SECONDS = 24 * 3600  # copies later than this after the first are listed on their own


def _first_seen(conn: sqlite3.Connection, rowid: int | None) -> dict[str, Any] | None:
    if rowid is None:
        return None
    r = conn.execute(_FIRST_SEEN, (rowid,)).fetchone()
    if r is None:
        return None
    return {"platform": r[0], "channel_id": r[1], "message_id": r[2], "date": r[3],
            "url": r[4] or make_url(r[0], r[5], r[1], r[2])}


def _summary(conn: sqlite3.Connection, row: tuple) -> dict[str, Any]:
    iid, title, start, end, first, places, actors, counts_j, n, channels = row
    counts = {k: 0 for k in KINDS}
    counts.update(json.loads(counts_j))
    counts["messages"] = n
    counts["channels"] = channels
    return {
        "id": iid, "title": title, "places": _place_names(json.loads(places)), "actors": json.loads(actors),
        "start": start, "end": end, "first_seen": _first_seen(conn, first), "counts": counts,
    }


_SUMMARY_COLS = "i.id, i.title, i.start_at, i.end_at, i.first_message_rowid, i.places, i.actors, i.counts, i.messages, i.channels"


def _place_names(ids: list[str]) -> list[str]:
    from .gazetteer import load

    gp = load().places
    return [gp[i].name if i in gp else i for i in ids]


def place_ids(name: str) -> list[str]:
    """``--place`` value -> place ids: an id (``city:128234``, ``country:IR``) or a name in any
    of the gazetteer's scripts (Kerman, كرمان); several words may name several places."""
    if name.startswith(("city:", "country:")):
        return [name]
    from .gazetteer import load

    gaz = load()
    found = [p.id for p in gaz.find(name.title() if name.islower() else name)]
    if not found:
        raise FilterError(f"--place: unknown place '{name}' (a city of 15,000+ inhabitants or a country)")
    return found


def list_incidents(
    conn: sqlite3.Connection, *, since: str | None = None, until: str | None = None, place: list[str] | None = None,
    actor: list[str] | None = None, kind: list[str] | None = None, limit: int = 50,
) -> list[dict[str, Any]]:
    """Live incidents, newest (last message) first, with the fields of ``incidents --json``."""
    where, args = ["i.merged_into IS NULL", "i.messages > 0"], []
    if since:
        where.append("i.end_at >= ?")
        args.append(parse_when(since, "--since"))
    if until:
        where.append("i.start_at < ?")
        args.append(parse_when(until, "--until", end_of_day=True))
    for p in place or []:
        ids = place_ids(p)
        where.append(f"i.id IN (SELECT incident_id FROM incident_facets WHERE facet='place' AND value IN"
                     f" ({','.join('?' * len(ids))}))")
        args += ids
    if actor:
        where.append(f"i.id IN (SELECT incident_id FROM incident_facets WHERE facet='actor' AND value IN"
                     f" ({','.join('?' * len(actor))}))")
        args += actor
    if kind:
        bad = [k for k in kind if k not in KINDS]
        if bad:
            raise FilterError(f"--kind: unknown kind '{bad[0]}' ({', '.join(KINDS)})")
        where.append("(" + " OR ".join("coalesce(json_extract(i.counts, ?), 0) > 0" for _ in kind) + ")")
        args += [f"$.{k}" for k in kind]
    sql = f"SELECT {_SUMMARY_COLS} FROM incidents i WHERE {' AND '.join(where)} ORDER BY i.end_at DESC, i.id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [_summary(conn, r) for r in conn.execute(sql, args).fetchall()]


def incident_detail(conn: sqlite3.Connection, incident_id: int) -> dict[str, Any] | None:
    """One incident (merged ids lead to the incident they were merged into): the listing's
    fields plus ``messages`` (ordered by date) and, for the text views, ``timeline``."""
    live = resolve(conn, incident_id)
    if live is None:
        return None
    row = conn.execute(f"SELECT {_SUMMARY_COLS} FROM incidents i WHERE i.id=?", (live,)).fetchone()
    out = _summary(conn, row)
    messages = []
    extras = []
    for (platform, channel_id, message_id, date, kind, rules, actors, family, first_rowid, first_date, rowid, how,
         origin, url, channel, title, text) in conn.execute(
        "SELECT im.platform, im.channel_id, m.message_id, im.date, im.kind, im.rules, im.actors, im.family_id,"
        " f.first_message_rowid, f.first_date, im.message_rowid, im.how, im.origin, m.url, m.channel,"
        " m.channel_title, m.text"
        " FROM incident_messages im JOIN messages m ON m.id = im.message_rowid"
        " LEFT JOIN families f ON f.id = im.family_id WHERE im.incident_id=? ORDER BY im.date, im.message_rowid",
        (live,),
    ):
        messages.append({
            "platform": platform, "channel_id": channel_id, "message_id": message_id, "date": date, "kind": kind,
            "rules": json.loads(rules), "actors": json.loads(actors), "family": family,
            "first_in_family": first_rowid == rowid,
            # provenance: seconds after the family's first copy, and the message a Telegram/X
            # forward names as its origin (platform:channel_id:message_id)
            "lag_seconds": _lag(first_date, date), "origin": origin,
        })
        extras.append({"channel": channel or title or channel_id, "url": url or make_url(platform, channel, channel_id, message_id), "text": text or "", "how": how,
                       "origin": origin})
    out["messages"] = messages
    out["_extras"] = extras
    if live != incident_id:
        out["merged_from"] = incident_id
    return out


def _lag(first: str | None, date: str) -> int | None:
    if not first:
        return None
    return max(0, int((parse_iso(date) - parse_iso(first)).total_seconds()))


def timeline(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """Timeline entries: each message with its offset, families collapsed into their first copy
    ("first seen in X, reposted by N channels within M"); copies more than a day after the
    first are listed on their own as reposts."""
    msgs, extras = detail["messages"], detail["_extras"]
    if not msgs:
        return []
    t0 = msgs[0]["date"]
    heads: dict[int, dict[str, Any]] = {}
    entries: list[dict[str, Any]] = []
    for m, x in zip(msgs, extras):
        entry = {**m, **x, "offset": offset(t0, m["date"]), "reposts": [], "repost_of": None}
        head = heads.get(m["family"])
        if head is None:
            heads[m["family"]] = entry
            entries.append(entry)
            continue
        lag = (parse_iso(m["date"]) - parse_iso(head["date"])).total_seconds()
        entry["lag"] = compact_duration(lag)
        if lag <= REPOST_COLLAPSE_SECONDS:
            head["reposts"].append(entry)
        else:
            entry["repost_of"] = head
            entries.append(entry)
    for e in entries:
        if e["reposts"]:
            chans = {(r["platform"], r["channel_id"]) for r in e["reposts"]} - {(e["platform"], e["channel_id"])}
            last = max(parse_iso(r["date"]) for r in e["reposts"])
            within = compact_duration((last - parse_iso(e["date"])).total_seconds())
            e["family_note"] = (f"first seen in {e['channel']}, reposted by {len(chans)} channel"
                                f"{'s' if len(chans) != 1 else ''} within {within}")
        if e["repost_of"] is not None:
            h = e["repost_of"]
            e["family_note"] = f"repost of the {h['kind']} first seen in {h['channel']} at {h['offset']} ({e['lag']} later)"
    return entries


def public(detail: dict[str, Any]) -> dict[str, Any]:
    """The JSON of ``incident show --json`` (without the text views' extras)."""
    return {k: v for k, v in detail.items() if not k.startswith("_")}


def markdown(detail: dict[str, Any], actor_titles: dict[str, str] | None = None) -> str:
    """The timeline as Markdown, ready to paste into a report."""
    titles = actor_titles or {}
    lines = [f"## Incident {detail['id']}: {_md(detail['title'])}", ""]
    c = detail["counts"]
    fs = detail["first_seen"] or {}
    lines.append(f"- **Places:** {', '.join(detail['places']) or '—'}")
    lines.append(f"- **Actors:** {', '.join(titles.get(a, a) for a in detail['actors']) or '—'}")
    lines.append(f"- **Period:** {detail['start']} – {detail['end']} (UTC)")
    first_url = _md_url(fs.get("url"))
    first_channel = _md(_first_channel(detail) or f"{fs.get('platform', '')}:{fs.get('channel_id', '')}")
    lines.append(f"- **First seen (T0):** {fs.get('date', '')} in "
                 + (f"[{first_channel}]({first_url})" if first_url else first_channel)
                 + (f" ({_md(PLATFORM_NAMES.get(fs.get('platform', ''), fs.get('platform', '')))})" if fs else ""))
    kinds = ", ".join(f"{c[k]} {k}" for k in KINDS if c.get(k))
    lines.append(f"- **Messages:** {c['messages']} in {c['channels']} channel(s) ({kinds})")
    lines += ["", "| T | date (UTC) | kind | actors | channel | message |", "|---|---|---|---|---|---|"]
    for e in timeline(detail):
        text = _md(" ".join(e["text"].split()))
        if len(text) > 280:
            text = text[:279] + "…"
        if e.get("family_note"):
            text += f" _({_md(e['family_note'])})_"
        url = _md_url(e.get("url"))
        link = f"[{_md(e['channel'])}]({url})" if url else _md(e["channel"])
        actors = ", ".join(titles.get(a, a) for a in e["actors"])
        lines.append(f"| {e['offset']} | {e['date'][:16].replace('T', ' ')} | {e['kind']} | {_md(actors)} | {link} | {text} |")
    return "\n".join(lines) + "\n"


PLATFORM_NAMES = {"telegram": "Telegram", "x": "X"}


def _first_channel(detail: dict[str, Any]) -> str | None:
    """The name of the first-seen message's channel (its @name or title, as the timeline shows
    it), not ``telegram:1987600000``."""
    fs = detail.get("first_seen") or {}
    key = (fs.get("platform"), fs.get("channel_id"), fs.get("message_id"))
    for m, x in zip(detail.get("messages", []), detail.get("_extras", [])):
        if (m["platform"], m["channel_id"], m["message_id"]) == key:
            return str(x["channel"])
    return None


_MD_ACTIVE = str.maketrans({ch: "\\" + ch for ch in "\\`*_[]<>|#!~"})


def _md(s: Any) -> str:
    """Text from a post made inert in Markdown: bidi controls neutralised, the characters that
    open links, HTML, emphasis or a table cell escaped (a post is hostile input)."""
    return neutralize_bidi(str(s)).translate(_MD_ACTIVE).replace("\n", " ").replace("\r", " ")


def _md_url(value: Any) -> str:
    """A record's url for a Markdown link: http(s) only (never ``javascript:``), with the
    characters that would end the link target percent-encoded."""
    url = http_url(value)
    return url.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def iter_all(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Every incident with its messages (export)."""
    for (iid,) in conn.execute("SELECT id FROM incidents WHERE merged_into IS NULL AND messages > 0 ORDER BY id").fetchall():
        d = incident_detail(conn, iid)
        if d is not None:
            yield public(d)

