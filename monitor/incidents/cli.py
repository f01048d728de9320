"""CLI of monitor.incidents: ``incidents`` (listing) and ``incident show|merge|detach|rebuild``."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..model import KINDS
from ..cli_common import (
    ConfigOpt, DbOpt, JsonOpt, LogLevelOpt, console, db_path, fail, open_archive, print_json_lines, setup, shown,
)

KIND_STYLE = {"claim": "bold red", "statement": "bold yellow", "denial": "cyan", "report": "green", "watch": "dim"}


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


def _actor_titles(cfg: Any) -> dict[str, str]:
    try:
        from ..rules.loader import load_actor_titles

        return load_actor_titles([cfg.rules]) if cfg.rules else {}
    except Exception:  # noqa: BLE001 - titles are a nicety; ids are shown without them
        return {}


def incidents_cmd(
    since: Annotated[Optional[str], typer.Option("--since", help="Incidents active since: date, ISO datetime or age (7d).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Incidents that began before this date.")] = None,
    place: Annotated[Optional[list[str]], typer.Option("--place", help="City or country (any script: Kerman, كرمان) or a place id.")] = None,
    actor: Annotated[Optional[list[str]], typer.Option("--actor", help="Actor id (rules/actors.yml), repeatable or a,b.")] = None,
    kind: Annotated[Optional[list[str]], typer.Option("--kind", help="Only incidents with a message of this kind.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many (0 = all).", min=0)] = 50,
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Incidents, newest first: one per real-world event, with places, actors and counts."""
    from ..query.filters import FilterError
    from .query import list_incidents

    cfg = setup(config, log_level)
    with open_archive(db_path(db, cfg)) as archive:
        try:
            rows = list_incidents(archive.conn, since=since, until=until, place=_split(place), actor=_split(actor),
                                  kind=_split(kind), limit=limit)
        except FilterError as exc:
            fail(str(exc))
    if json_out:
        print_json_lines(rows)
        return
    table = Table(title=f"{len(rows)} incident(s)")
    # under 100 columns the message and channel counts go over the kinds, in one column: two
    # columns fewer leave room for "12 statement" whole (on 80 columns it was cut to "stateme…")
    narrow = console.width < 100
    cols = ("id", "start", "end", "title", "actors") + (("counts",) if narrow else ("msgs", "chans", "kinds"))
    for col in cols:
        # dates as "YYYY-MM-DD" over "HH:MM", never cut: on 80 columns the day is what must show;
        # nor the counts, one a line ("12 statement")
        table.add_column(col, justify="right" if col in ("id", "msgs", "chans") else "left",
                         no_wrap=col in ("id", "start", "end", "kinds", "counts"))
    for r in rows:
        c = r["counts"]
        kinds = Text(f"{c['messages']} msg{'s' * (c['messages'] != 1)}\n{c['channels']} chan{'s' * (c['channels'] != 1)}",
                     style="dim") if narrow else Text()
        for k in KINDS:
            if c.get(k):
                if kinds:
                    kinds.append("\n")
                kinds.append(f"{c[k]} {k}", style=KIND_STYLE[k])
        title = r["title"]  # "Kerman, Iran · 2024-01-03": the start column shows the day
        if title.endswith(" · " + r["start"][:10]):
            title = title[: -len(" · " + r["start"][:10])]
        counts = (kinds,) if narrow else (str(c["messages"]), str(c["channels"]), kinds)
        table.add_row(str(r["id"]), _two_lines(r["start"]), _two_lines(r["end"]), Text(title),
                      Text(", ".join(r["actors"][:4])), *counts)
    console.print(table)


def _two_lines(iso: str) -> str:
    """``2024-01-03T11:58:00+00:00`` -> ``2024-01-03`` over ``11:58`` (a narrow column keeps the day)."""
    return f"{iso[:10]}\n{iso[11:16]}"


def show_cmd(
    incident_id: Annotated[int, typer.Argument(help="Incident id (from 'claimwatch incidents').")],
    markdown_out: Annotated[bool, typer.Option("--markdown", help="Markdown, ready to paste into a report.")] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """One incident's timeline: T0 and every statement, claim, denial and report with its offset."""
    from .query import incident_detail, markdown, public, timeline

    if json_out and markdown_out:
        fail("--json and --markdown cannot be used together")
    cfg = setup(config, log_level)
    with open_archive(db_path(db, cfg)) as archive:
        d = incident_detail(archive.conn, incident_id)
    if d is None:
        fail(f"no incident {incident_id} in the archive", code=1)
    if json_out:
        print_json_lines([public(d)])
        return
    titles = _actor_titles(cfg)
    if markdown_out:
        typer.echo(markdown(d, titles), nl=False)
        return
    c = d["counts"]
    if d.get("merged_from"):
        console.print(f"[dim]incident {d['merged_from']} was merged into {d['id']}[/]")
    console.print(Text.assemble((f"Incident {d['id']}: ", "bold"), (shown(d["title"]), "bold")))
    console.print(Text(f"places: {shown(', '.join(d['places'])) or '-'}   actors: "
                       f"{', '.join(titles.get(a, a) for a in d['actors']) or '-'}"))
    console.print(Text(f"{d['start']} - {d['end']}   {c['messages']} message(s) in {c['channels']} channel(s)"))
    table = Table(show_lines=False)
    wide = console.width >= 120
    # under 120 columns two: the offset over the kind, and the message (its channel whole over
    # the text, the link on a line of its own: a channel column left the text 32 columns and
    # cut both the names, "خبرگزاری پیام م…", and the links)
    cols = ("T", "date", "kind", "actors", "channel", "text") if wide else ("T", "message")
    for col in cols:
        # on a wide console the actors column is cut (ellipsis), never the text: a long actor
        # list took the whole width and the offsets, kinds and text vanished; channel names
        # wrap, never cut
        table.add_column(col, ratio=1 if col in ("text", "message") else None,
                         no_wrap=col not in ("text", "message", "channel"),
                         min_width=9 if col == "T" else None,
                         overflow="ellipsis" if col == "actors" else "fold" if col == "channel" else None,
                         max_width={"channel": 20, "actors": 28}.get(col))
    for e in timeline(d):
        body = Text()
        if not wide:
            body.append(shown(e["channel"]) + "\n", style="bold")
        body.append(shown(" ".join(e["text"].split())[:300]))
        if not wide and e["actors"]:  # (no actors column: the speaker/actor under the text)
            body.append("\n" + ", ".join(_short_title(titles.get(a, a)) for a in e["actors"]), style="magenta")
        if e.get("family_note"):
            body.append(f"\n{e['family_note']}", style="italic dim")
        if e.get("url"):
            body.append(f"\n{shown(e['url'])}", style="blue")
        kind = Text(e["kind"], style=KIND_STYLE.get(e["kind"], ""))
        if wide:
            table.add_row(e["offset"], e["date"][:16].replace("T", " "), kind,
                          Text(", ".join(titles.get(a, a) for a in e["actors"])), Text(shown(e["channel"])), body)
        else:
            table.add_row(Text(e["offset"] + "\n").append_text(kind), body)
    console.print(table)


def _short_title(title: str) -> str:
    """``Iran (Leader, President, government)`` -> ``Iran``: the bracketed gloss left out where
    the width is short."""
    return title.split(" (", 1)[0].strip() or title


def _write(db: str | None, config: str | None, log_level: str, fn: Any) -> Any:
    from ..timefmt import now_iso
    from . import configure
    from .corrections import CorrectionError

    cfg = setup(config, log_level)
    with open_archive(db_path(db, cfg), readonly=False) as archive:
        tracker = configure(archive, cfg) or archive.incidents
        from .assign import IncidentTracker

        tracker = tracker or IncidentTracker()
        try:
            with archive.lock, archive.transaction():
                return fn(archive, tracker, now_iso())
        except CorrectionError as exc:
            fail(str(exc))


def merge_cmd(
    a: Annotated[int, typer.Argument(help="Incident that stays.", metavar="A")],
    b: Annotated[int, typer.Argument(help="Incident merged into A.", metavar="B")],
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
) -> None:
    """Merge incident B into A (recorded: holds across later hits, re-imports and rebuilds)."""
    from .corrections import merge

    live = _write(db, config, log_level, lambda ar, tr, now: merge(ar.conn, tr, a, b, now))
    console.print(f"merged incident {b} into {live}")


def detach_cmd(
    incident_id: Annotated[int, typer.Argument(help="Incident the message is in.")],
    message_key: Annotated[str, typer.Argument(help="PLATFORM:CHANNEL_ID:MESSAGE_ID of the message to take out.")],
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
) -> None:
    """Take a message out of an incident into a new incident of its own (recorded)."""
    from .corrections import detach

    new = _write(db, config, log_level, lambda ar, tr, now: detach(ar.conn, tr, incident_id, message_key, now))
    console.print(f"detached {message_key} from incident {incident_id} into new incident {new}")


def rebuild_cmd(
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Reassign every message with hits from scratch, then apply the recorded corrections again.

    For a changed incidents.window or gazetteer: the recorded merges and detaches are applied
    again after the reassignment."""
    from . import configure
    from .corrections import rebuild

    cfg = setup(config, log_level)
    with open_archive(db_path(db, cfg), readonly=False) as archive:
        configure(archive, cfg)
        res = rebuild(archive)
    if json_out:
        print_json_lines([res])
    else:
        console.print(f"{res['messages']} message(s) in {res['incidents']} incident(s); "
                      f"{res['corrections']} correction(s) applied again")


def register(app: typer.Typer) -> None:
    app.command("incidents")(incidents_cmd)
    incident_app = typer.Typer(help="One incident: show its timeline, merge, detach; rebuild all.", no_args_is_help=True)
    incident_app.command("show")(show_cmd)
    incident_app.command("merge")(merge_cmd)
    incident_app.command("detach")(detach_cmd)
    incident_app.command("rebuild")(rebuild_cmd)
    app.add_typer(incident_app, name="incident")
