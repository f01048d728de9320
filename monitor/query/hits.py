"""Listing rule hits with their messages, newest first."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterator

from ..model import KINDS, LEVELS
from ..archive.columns import hit_score_sql
from .filters import FilterError, Filters, parse_when


# The rules' levels (``monitor.model.LEVELS``: info, low, medium, high, critical), lowest first;
# ``high+`` means high and above. Sigma's spelling ``informational`` is read as ``info`` (this
# list said ``informational`` once, and ``--level info`` was refused while ``informational``
# matched none of the archive's ``info`` hits).
_ALIASES = {"informational": "info"}

# ``score``: a learned classifier's probability (rule ``classifier``, ``matches`` empty); null for
# a rule's hit
HIT_COLUMNS = (
    "id", "created_at", "rule_id", "rule_hash", "level", "kind", "actors", "title", "tags", "matches", "score", "key",
    "platform", "channel_id", "channel", "message_id", "date", "url", "text", "deleted_at",
)


def parse_levels(values: list[str] | str | None) -> list[str]:
    """``high``, ``high,critical`` or ``medium+`` (that level and above) -> level names."""
    if not values:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        for part in (p.strip().lower() for p in str(value).split(",")):
            if not part:
                continue
            part = _ALIASES.get(part.rstrip("+"), part.rstrip("+")) + ("+" if part.endswith("+") else "")
            if part.endswith("+"):
                base = part[:-1]
                if base not in LEVELS:
                    raise FilterError(f"--level: unknown level {base!r} for '+' (one of {', '.join(LEVELS)})")
                out += list(LEVELS[LEVELS.index(base) :])
            elif part not in LEVELS:
                shown = part if len(part) <= 40 else part[:37] + "..."
                raise FilterError(f"--level: unknown level {shown!r} (one of {', '.join(LEVELS)}, or e.g. medium+)")
            else:
                out.append(part)
    return list(dict.fromkeys(out))


def unknown_names(conn: sqlite3.Connection, *, rules: list[str] | None = None,
                  channels: list[str] | None = None, actors: list[str] | None = None) -> list[str]:
    """Warnings for ``--rule`` / ``--channel`` / ``--actor`` values that name nothing in the archive."""
    from .filters import resolve_channels

    out = []
    for rule in rules or []:
        if conn.execute("SELECT 1 FROM hits WHERE rule_id=? LIMIT 1", (rule,)).fetchone() is None:
            known = [r for (r,) in conn.execute("SELECT DISTINCT rule_id FROM hits ORDER BY rule_id LIMIT 11")]
            some = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "") if known else "none"
            out.append(f"--rule: no hits of a rule named {_short(rule)!r} in the archive (rules with hits: {some})")
    for ref in channels or []:
        if not resolve_channels(conn, [ref]):
            out.append(f"--channel: no channel {_short(ref)!r} in the archive (an id, @username or title)")
    if actors:
        # `hits --actor houthis` on an archive with no Houthi hit, or `--actor "Islamic State"`
        # (a name, not the id): "0 hit(s)" said nothing of why
        tagged = [a for (a,) in conn.execute(
            "SELECT DISTINCT value FROM hits, json_each(hits.actors) WHERE json_valid(hits.actors) ORDER BY value")]
        for actor in actors:
            if actor.strip().lower() not in tagged:
                some = ", ".join(tagged[:12]) + (", ..." if len(tagged) > 12 else "") if tagged else "none"
                out.append(f"--actor: no hits tagged with the actor id {_short(actor)!r} in the archive"
                           f" (actor ids with hits: {some}; ids are listed in rules/actors.yml)")
    return out


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit - 3] + "..."


def list_hits(
    conn: sqlite3.Connection,
    *,
    rules: list[str] | None = None,
    levels: list[str] | None = None,
    since: str | None = None,
    channels: list[str] | None = None,
    platforms: list[str] | None = None,
    limit: int | None = 100,
    kinds: list[str] | None = None,
    actors: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Hits (newest first) joined with their message. ``since`` is a date or age (``7d``) and
    applies to when the hit was recorded; ``limit`` None or 0 = all. ``kinds``: hits of these
    kinds; ``actors``: hits tagged with any of these actor ids."""
    conds: list[str] = []
    args: list[Any] = []
    if kinds:
        kinds = [k.strip().lower() for k in kinds]
        for k in kinds:
            if k not in KINDS:
                raise FilterError(f"--kind: unknown kind {k!r} (one of {', '.join(KINDS)})")
        conds.append(f"h.kind IN ({','.join('?' * len(kinds))})")
        args += kinds
    if actors:
        actors = [a.strip().lower() for a in actors]  # ids are lower-case: "Houthis" is houthis
        conds.append(f"EXISTS (SELECT 1 FROM json_each(h.actors) WHERE json_each.value IN ({','.join('?' * len(actors))}))")
        args += actors
    if rules:
        conds.append(f"h.rule_id IN ({','.join('?' * len(rules))})")
        args += rules
    if levels:
        conds.append(f"lower(h.level) IN ({','.join('?' * len(levels))})")
        args += [lv.lower() for lv in levels]
    if since:
        conds.append("h.created_at >= ?")
        args.append(parse_when(since, "--since"))
    if channels or platforms:
        fconds, fargs = Filters.build(platform=list(platforms or []), channel=list(channels or [])).where(conn, "m")
        conds += fconds
        args += fargs
    sql = (
        "SELECT h.id, h.created_at, h.rule_id, h.rule_hash, h.level, h.kind, h.actors, h.title, h.tags, h.matches,"
        f" {hit_score_sql(conn)} AS score, m.platform, m.channel_id, coalesce(m.channel, m.channel_title) AS channel, m.message_id, m.date,"
        " m.url, m.text, m.deleted_at FROM hits h JOIN messages m ON m.id = h.message_rowid"
    )
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    sql += " ORDER BY h.created_at DESC, h.id DESC"
    if limit:
        sql += " LIMIT ?"
        args.append(int(limit))
    cur = conn.execute(sql, args)
    names = [d[0] for d in cur.description]
    for values in cur:
        row = dict(zip(names, values))
        row["key"] = f"{row['platform']}:{row['channel_id']}:{row['message_id']}"
        row["tags"] = json.loads(row["tags"]) if row["tags"] else []
        row["actors"] = json.loads(row["actors"]) if row["actors"] else []
        row["matches"] = json.loads(row["matches"]) if row["matches"] else []
        yield {c: row.get(c) for c in HIT_COLUMNS}
