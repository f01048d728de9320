"""CLI commands of monitor.query: search, hits, show, export, verify, serve (thin wrappers)."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any, Iterable, Optional

import typer
from rich.cells import cell_len
from rich.json import JSON
from rich.markup import escape
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..archive import Archive
from ..archive.columns import score_text
from ..cli_common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    LogLevelOpt,
    console,
    db_path,
    err_console,
    fail,
    open_archive,
    print_json_lines,
    setup,
    shown,
    shown_text,
)

CsvOpt = Annotated[bool, typer.Option("--csv", help="CSV on stdout (header row first).")]
PlatformOpt = Annotated[Optional[list[str]], typer.Option("--platform", help="telegram or x (repeatable).")]
ChannelOpt = Annotated[
    Optional[list[str]], typer.Option("--channel", help="Channel id, @username or title (repeatable).")
]
SinceOpt = Annotated[Optional[str], typer.Option("--since", help="From this date: 2024-01-31, ISO datetime or an age (7d, 12h).")]
UntilOpt = Annotated[Optional[str], typer.Option("--until", help="Before this date (a bare date includes that day).")]
RuleOpt = Annotated[Optional[list[str]], typer.Option("--rule", help="Only messages with a hit of this rule id (repeatable).")]

LEVEL_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}


def _open(db: str | None, config: str | None, log_level: str) -> Archive:
    cfg = setup(config, log_level)
    return open_archive(db_path(db, cfg))


def _out_mode(json_out: bool, csv_out: bool) -> str:
    if json_out and csv_out:
        fail("--json and --csv cannot be used together")
    return "json" if json_out else "csv" if csv_out else "table"


def _write_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(list(header))
    for row in rows:
        writer.writerow([json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v for v in row])
    sys.stdout.flush()


def _one_line(text: str | None, width: int = 120) -> str:
    flat = " ".join(shown(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _warn_unknown(archive: Archive, filters: Any) -> None:
    """A --rule or --channel that names nothing in the archive (a typo) says so on stderr."""
    from .hits import unknown_names

    for warning in unknown_names(archive.conn, rules=filters.rules, channels=filters.channels):
        err_console.print(Text.assemble(("warning:", "yellow"), " ", shown(warning)), highlight=False, soft_wrap=True)


def _filters(**kw: Any):
    from .filters import FilterError, Filters

    try:
        return Filters.build(**kw)
    except FilterError as exc:
        fail(str(exc))


def search_cmd(
    query: Annotated[str, typer.Argument(help='Words, "a phrase", prefix*, AND / OR / NOT, parentheses.')],
    platform: PlatformOpt = None,
    channel: ChannelOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    rule: RuleOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Results to show.", min=1)] = 20,
    sort: Annotated[str, typer.Option("--sort", help="rank (bm25) or date (newest first).")] = "rank",
    window: Annotated[
        int, typer.Option("--window", help="Rank the newest N matches (0 = all matches; slower on common words).", min=0)
    ] = 2_000,
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
    csv_out: CsvOpt = False,
) -> None:
    """Full-text search, normalised like the rules (diacritics, Persian/Arabic letters, proclitics), ranked."""
    from .fts import QuerySyntaxError
    from .search import search

    mode = _out_mode(json_out, csv_out)
    filters = _filters(platform=platform, channel=channel, since=since, until=until, rule=rule)
    archive = _open(db, config, log_level)
    with archive:
        _warn_unknown(archive, filters)
        try:
            res = search(archive, query, filters, limit=limit, window=window, sort=sort)
        except QuerySyntaxError as exc:
            fail(str(exc))
    if mode == "json":
        print_json_lines(r.to_json() for r in res)
        return
    if mode == "csv":
        _write_csv(
            ("key", "score", "date", "platform", "channel_id", "channel", "url", "snippet", "text"),
            (
                (r.key, round(r.score, 6), r.row["date"], r.message.platform, r.message.channel_id,
                 r.message.channel or r.message.channel_title, r.message.url, r.marked_snippet(), r.message.text)
                for r in res
            ),
        )
        return
    def snippet(r: Any) -> Text:
        snip = shown_text(r.snippet, r.snippet_spans, "bold black on yellow")
        if r.row.get("deleted_at"):
            snip.append("  [deleted]", style="red")
        return snip

    def channel(r: Any) -> Text:
        return shown_text(r.message.channel or r.message.channel_title or r.message.channel_id)

    if console.width < 120:  # a table would leave the snippet a few letters wide: a heading line, then the snippet
        console.print(Text(f"{len(res)} result(s) for {query}", style="bold"), soft_wrap=True)
        for r in res:
            console.print(Text.assemble((f"{r.score:.2f}", "bold"), "  ",
                                        ((r.row["date"] or "")[:16].replace("T", " "), "dim"), "  ",
                                        channel(r), "  ", (shown(r.key), "dim")), soft_wrap=True)
            console.print(Padding(snippet(r), (0, 0, 0, 4)))
    else:
        table = Table(title=Text(f"{len(res)} result(s) for {query}"), show_lines=False)
        for col, kw in (("score", {"justify": "right"}), ("date", {}), ("channel", {}), ("key", {"no_wrap": True}),
                        ("snippet", {"ratio": 1})):
            table.add_column(col, **kw)
        for r in res:
            table.add_row(f"{r.score:.2f}", (r.row["date"] or "")[:16].replace("T", " "), channel(r), shown_text(r.key),
                          snippet(r))
        console.print(table)
    if res.window_full:
        err_console.print(
            f"[dim]more than {res.window} matches: ranked among the newest {res.window} "
            "(narrow the query or filters, or use --window 0)[/]"
        )


def hits_cmd(
    rule: RuleOpt = None,
    level: Annotated[
        Optional[list[str]], typer.Option("--level", help="Level(s): high, high,critical or medium+ (and above).")
    ] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Hits recorded since: date, ISO datetime or age (7d).")] = None,
    channel: ChannelOpt = None,
    platform: PlatformOpt = None,
    kind: Annotated[
        Optional[list[str]], typer.Option("--kind", help="Hit kind(s): claim, statement, denial, report, watch.")
    ] = None,
    actor: Annotated[Optional[list[str]], typer.Option("--actor", help="Hits tagged with this actor id (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many (0 = all).", min=0)] = 100,
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
    csv_out: CsvOpt = False,
) -> None:
    """Rule hits, newest first, with their messages."""
    from .filters import FilterError
    from .hits import HIT_COLUMNS, list_hits, parse_levels, unknown_names

    mode = _out_mode(json_out, csv_out)
    archive = _open(db, config, log_level)
    with archive:
        try:
            for warning in unknown_names(archive.conn, rules=_split(rule), channels=_split(channel),
                                         actors=_split(actor)):
                err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
            rows = list_hits(
                archive.conn,
                rules=_split(rule),
                levels=parse_levels(level),
                since=since,
                channels=_split(channel),
                platforms=_split(platform),
                limit=limit,
                kinds=_split(kind),
                actors=_split(actor),
            )
            if mode == "json":
                print_json_lines(rows)
                return
            if mode == "csv":
                _write_csv(HIT_COLUMNS, ([r[c] for c in HIT_COLUMNS] for r in rows))
                return
            rows = list(rows)
        except FilterError as exc:
            fail(str(exc))
    if console.width < 120:
        _print_hits_list(rows)
        return
    cells = [
        (
            (r["date"] or "")[:16].replace("T", " "),  # when posted (--json/--csv: created_at = detected)
            Text(r["level"] or "", style=LEVEL_STYLE.get((r["level"] or "").lower(), "")),
            Text(r["kind"] or ""),
            Text(_rule_cell(r)),
            Text(_one_line(",".join(r["actors"] or []), 24)),  # ids, cut: the rest stays whole
            shown_text(r["channel"] or r["channel_id"]),
            shown_text(r["key"]),
            Text(_one_line(r["text"])),
        )
        for r in rows
    ]
    # Identifiers stay whole; the text takes what is left of the console's width. When that is
    # too little (long X keys, long channel names), a table would squeeze every column: a list.
    widths = [max([len(col)] + [cell_len(str(c[i])) for c in cells]) for i, col in enumerate(HIT_TABLE_COLUMNS[:-1])]
    text_width = console.width - sum(widths) - 3 * len(HIT_TABLE_COLUMNS) - 1
    if text_width < 30:
        _print_hits_list(rows)
        return
    table = Table(title=f"{len(rows)} hit(s)")
    for i, col in enumerate(HIT_TABLE_COLUMNS):
        if col == "text":
            table.add_column(col, no_wrap=True, overflow="ellipsis", width=text_width)
        else:
            table.add_column(col, no_wrap=True, width=widths[i])
    for c in cells:
        table.add_row(*c)
    console.print(table)


HIT_TABLE_COLUMNS = ("posted", "level", "kind", "rule", "actors", "channel", "key", "text")


def _rule_cell(r: dict[str, Any]) -> str:
    """The rule id, and a learned classifier's probability after it (``classifier 0.83``)."""
    score = score_text(r.get("score"))
    return f"{r['rule_id']} {score}" if score else r["rule_id"]


def matched_text(h: dict[str, Any]) -> str:
    """The terms a hit matched (``selection: term``), or ``no terms (classifier)`` for a
    learned classifier's hit (``score`` set: it matches no terms)."""
    matched = ", ".join(sorted({f"{x.get('selection')}: {x.get('term')}" for x in h.get("matches") or []}))
    if not matched and h.get("score") is not None:
        return "no terms (classifier)"
    return matched


def _print_hits_list(rows: list[dict[str, Any]]) -> None:
    """Hits for a narrow console: a heading line per hit, then its text (one line, cut)."""
    console.print(f"[bold]{len(rows)} hit(s)[/]")
    for r in rows:
        level = (r["level"] or "").lower()
        head = Text.assemble(
            ((r["date"] or "")[:16].replace("T", " "), "dim"),
            "  ",
            ((r["level"] or "").upper(), LEVEL_STYLE.get(level, "")),
            "  ",
            (r["kind"] or "", "italic"),
            "  ",
            (_rule_cell(r), "bold"),
            "  ",
            (",".join(r["actors"] or []), ""),
            "  ",
            shown(r["channel"] or r["channel_id"]),
            "  ",
            (shown(r["key"]), "dim"),
        )
        console.print(head, soft_wrap=True)
        body = Text("    " + _one_line(r["text"]))
        body.truncate(max(console.width, 40) * 2, overflow="ellipsis")
        console.print(body, soft_wrap=False, overflow="ellipsis", no_wrap=True)


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


def show_cmd(
    ref: Annotated[str, typer.Argument(help="PLATFORM:CHANNEL_ID:MESSAGE_ID, or a t.me / x.com post link.")],
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """One message: fields, every version, deletion, hits, alert deliveries and the raw record."""
    from .show import RefError, message_detail

    archive = _open(db, config, log_level)
    with archive:
        try:
            d = message_detail(archive.conn, ref)
        except RefError as exc:
            fail(str(exc))
    if d is None:
        fail(f"no message {ref} in the archive", code=1)
    if json_out:
        print_json_lines([d])
        return
    m = d["message"]
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    for name in ("key", "channel", "channel_title", "date", "edit_date", "author", "lang", "url", "reply_to",
                 "grouped_id", "first_seen_at", "updated_at", "raw_sha256"):
        if m.get(name) is not None:
            fields.add_row(name, shown_text(m[name]))
    if m.get("deleted_at"):
        fields.add_row("deleted", Text(f"deleted at {m['deleted_at']} (kept in the archive)", style="bold red"))
    for name in ("forwarded_from", "media", "extra"):
        if m.get(name):
            fields.add_row(name, shown_text(json.dumps(m[name], ensure_ascii=False)))
    console.print(Panel(fields, title=shown_text(m["key"]), expand=False))
    console.print(Panel(shown_text(m["text"]), title="text", expand=False))

    versions = Table(title=f"versions ({len(d['versions'])})", show_lines=True)
    for col in ("#", "seen", "edit_date", "text", "raw_sha256", "chain"):
        versions.add_column(col, ratio=1 if col == "text" else None)
    for i, v in enumerate(d["versions"], 1):
        versions.add_row(str(i), v["seen_at"][:19], v["edit_date"] or "", shown_text(v["text"]), v["raw_sha256"][:16] + "…",
                         f"seq {v['chain_seq']}" if v["chain_seq"] else Text("not chained", style="red"))
    console.print(versions)

    if d["hits"]:
        hits = Table(title=f"hits ({len(d['hits'])})")
        scored = any(h.get("score") is not None for h in d["hits"])
        for col in ("id", "recorded", "rule", "level", "title", "matched") + (("score",) if scored else ()):
            hits.add_column(col)
        for h in d["hits"]:
            hits.add_row(str(h["id"]), h["created_at"][:19], Text(h["rule_id"]),
                         Text(h["level"], style=LEVEL_STYLE.get(h["level"].lower(), "")), shown_text(h["title"]),
                         shown_text(matched_text(h)), *((score_text(h.get("score")),) if scored else ()))
        console.print(hits)
    else:
        console.print("[dim]no hits[/]")
    if d["deliveries"]:
        out = Table(title=f"alert deliveries ({len(d['deliveries'])})")
        for col in ("hit", "destination", "kind", "status", "attempts", "sent_at", "last_error"):
            out.add_column(col)
        for o in d["deliveries"]:
            out.add_row(str(o["hit_id"]), Text(o["destination"]), o["kind"],
                        Text(o["status"], style="green" if o["status"] == "sent" else "yellow"),
                        str(o["attempts"]), o["sent_at"] or "", shown_text(o["last_error"]))
        console.print(out)
    raw = d["raw"]
    from ..bidi import neutralize_all  # JSON escapes control characters; bidi controls it keeps

    console.print(Panel(JSON.from_data(neutralize_all(raw)) if not isinstance(raw, str) else shown_text(raw),
                        title="raw record", expand=False))


def export_cmd(
    out: Annotated[str, typer.Option("--out", "-o", help="Output file ('-' for stdout).")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl (canonical, re-importable) or csv.")] = "jsonl",
    platform: PlatformOpt = None,
    channel: ChannelOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    rule: RuleOpt = None,
    manifest: Annotated[
        Optional[str], typer.Option("--manifest", help="Also write a manifest (count, file SHA-256, chain head) here.")
    ] = None,
    excel: Annotated[bool, typer.Option("--excel", help="CSV for spreadsheets: BOM, formula-like cells neutralised.")] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Export messages (streaming) as canonical JSONL or CSV, optionally with a manifest."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from .export import ExportError, export

    filters = _filters(platform=platform, channel=channel, since=since, until=until, rule=rule)
    archive = _open(db, config, log_level)
    _warn_unknown(archive, filters)
    with archive, Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err_console, transient=True,
        disable=out == "-" or not err_console.is_terminal,
    ) as progress:
        task = progress.add_task("exporting", total=None)
        try:
            res = export(
                archive, out, fmt=fmt, filters=filters, manifest=manifest, excel=excel,
                progress=lambda n: progress.update(task, description=f"exported {n:,} messages"),
            )
        except ExportError as exc:
            fail(str(exc))
    summary = {"format": res.format, "out": res.path or "-", "count": res.count, "file_sha256": res.file_sha256,
               "chain_length": res.chain_length, "chain_head": res.chain_head, "manifest": res.manifest_path}
    if json_out:
        (err_console if out == "-" else console).print_json(data=summary)
        return
    target = err_console if out == "-" else console
    target.print(f"exported [bold]{res.count}[/] messages to {res.path or 'stdout'} ({res.format})", highlight=False)
    if res.manifest_path:
        target.print(f"manifest {res.manifest_path}: chain head {res.chain_head[:16]}… at {res.chain_length} records",
                     highlight=False)


def verify_cmd(
    manifest: Annotated[
        Optional[str], typer.Option("--manifest", help="Also check a manifest written by 'claimwatch export --manifest'.")
    ] = None,
    max_problems: Annotated[int, typer.Option("--max-problems", help="Problems to list.", min=1)] = 20,
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Recompute every hash and the hash chain; exit 1 on an altered, removed or inserted row."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .verify import ManifestError, load_manifest, verify

    pinned = None
    if manifest:
        try:
            pinned = load_manifest(manifest)
        except ManifestError as exc:
            fail(str(exc))
    archive = _open(db, config, log_level)
    with archive, Progress(
        TextColumn("verifying"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"), TimeRemainingColumn(),
        console=err_console, transient=True, disable=json_out or not err_console.is_terminal,
    ) as progress:
        task = progress.add_task("verify", total=None)
        report = verify(
            archive.conn, manifest=pinned, max_problems=max_problems,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if json_out:
        print_json_lines([report.as_dict()])
    else:
        summary = (
            f"{report.messages:,} messages, {report.versions:,} versions, {report.chain:,} chain records "
            f"in {report.seconds:.2f}s; chain head {report.head[:16]}…"
        )
        for note in report.notes:
            console.print(Text(note, style="dim"))
        if report.ok:
            console.print(Text("OK ", style="bold green") + Text(summary))
        else:
            console.print(Text(f"FAILED: {report.problem_count} problem(s); first: ", style="bold red") + Text(str(report.first)))
            for p in report.problems[1:]:
                console.print(Text(f"  {p}"))
            if report.problem_count > len(report.problems):
                console.print(Text(f"  … and {report.problem_count - len(report.problems)} more"))
            console.print(Text(summary, style="dim"))
    if not report.ok:
        raise typer.Exit(1)


def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.", min=0, max=65535)] = 8001,
    allow_sql: Annotated[bool, typer.Option("--allow-sql", help="Allow arbitrary read-only SQL (?sql=, the query editor); off by default.")] = False,
    media: Annotated[Optional[str], typer.Option("--media", help="Folder of downloaded media to show inline (default: the config's telegram.download_media.dir, if it exists).")] = None,
    hash_password: Annotated[bool, typer.Option("--hash-password", help="Ask for a password, print its hash for CLAIMWATCH_WEB_PASSWORD_HASH and exit.")] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
) -> None:
    """Browse the archive in the browser (Datasette, read-only): overview, incidents, messages,
    channels, search. Set CLAIMWATCH_WEB_PASSWORD_HASH to require a password. Needs the web extra."""
    import os
    from pathlib import Path

    if hash_password:
        try:
            from datasette_auth_passwords.utils import hash_password as _hash
        except ImportError as exc:
            fail(f"datasette-auth-passwords is not installed ({exc.name}): pip install 'claimwatch[web]'")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        if not password:
            fail("empty password")
        print(_hash(password))
        return
    cfg = setup(config, log_level)
    path = db_path(db, cfg)
    try:
        from ..web.app import PASSWORD_ENV, serve
    except ImportError as exc:
        fail(f"Datasette is not installed ({exc.name}): pip install 'claimwatch[web]'")
    open_archive(path).close()  # exits 2 when there is no archive
    password_hash = os.environ.get(PASSWORD_ENV, "").strip() or None
    if password_hash and password_hash.count("$") != 3:
        fail(f"{PASSWORD_ENV}: not a password hash (make one with: claimwatch serve --hash-password)")
    tg = cfg.sources.telegram
    tg_media = tg.download_media if tg is not None else None
    if media is None and tg_media is not None and Path(tg_media.dir).is_dir():
        media = tg_media.dir
    if media is not None and not Path(media).is_dir():
        fail(f"--media: {media}: no such folder")
    titles: dict[str, str] = {}
    if cfg.rules and Path(cfg.rules).exists():
        try:
            from ..rules.loader import load_actor_titles

            titles = load_actor_titles([cfg.rules])
        except Exception:  # noqa: BLE001 - titles are a nicety; ids are shown without them
            titles = {}
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]warning:[/] serving the archive on {host}: anyone who can reach it can read it"
                          + ("" if password_hash else f" (set {PASSWORD_ENV} to require a password)"))
    err_console.print(f"serving {path} read-only on http://{host}:{port}/ (Ctrl+C to stop)", highlight=False)
    serve(path, host=host, port=port, log_level=log_level.lower(), allow_sql=allow_sql, titles=titles,
          media_dir=media, password_hash=password_hash)


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.command("search")(search_cmd)
    app.command("hits")(hits_cmd)
    app.command("show")(show_cmd)
    app.command("export")(export_cmd)
    app.command("verify")(verify_cmd)
    # the listing of `claimwatch --help` shows a short help as written, line breaks and all
    app.command("serve", short_help="Browse the archive in the browser (Datasette, read-only; the web extra).")(serve_cmd)
