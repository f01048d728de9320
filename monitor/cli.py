"""``claimwatch`` command line: thin commands over the library.

Commands are grouped by package: this module holds ``import`` and ``stats``; the rule,
alert, daemon, collector and query commands are registered from their own packages.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer import Abort
from typer.core import TyperGroup
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.markup import escape
from rich.table import Table

from . import __version__
from .archive import Archive
from .cli_common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    LogLevelOpt,
    console,
    db_path,
    err_console,
    fail,
    open_archive,
    print_error,
    print_json_lines,
    setup,
    shown,
    shown_text,
)

class _Root(TyperGroup):
    """The ``claimwatch`` command group. Usage errors of any command (an unknown option, a
    missing argument, a bad value) are the project's one line on stderr (``error: claimwatch
    rules test: No such option: --bogus (see 'claimwatch rules test --help')``) with their exit
    code (2), not click's boxed panel over several lines."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except Abort:  # end of input at a prompt
            print_error("aborted")
            sys.exit(1)
        except Exception as exc:
            if not _is_click_error(exc):
                raise
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one printed the help already
                print_error(_usage_line(exc))
            sys.exit(getattr(exc, "exit_code", 2))
        # commands return None; an int is the code of a typer.Exit (fail() raises one)
        sys.exit(code if isinstance(code, int) else 0)


def _is_click_error(exc: Exception) -> bool:
    """A click usage or parameter error: click's own class, or the copy newer typer vendors."""
    return any(c.__name__ == "ClickException" and c.__module__.endswith("exceptions") for c in type(exc).__mro__)


def _usage_line(exc: Exception) -> str:
    message = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    path = ctx.command_path
    return f"{path}: {message} (see '{path} --help')"


app = typer.Typer(
    name="claimwatch",
    help="Watch Telegram channels and X accounts for claims of responsibility and official statements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Root,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"claimwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = None,
) -> None:
    """claimwatch: monitor, match, archive, alert."""


@app.command("import")
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Telegram export JSON, X API v2 JSONL or canonical JSONL files.")],
    db: DbOpt = None,
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="auto | telegram | x | canonical")] = "auto",
    rules: Annotated[
        Optional[str], typer.Option("--rules", help="Rules file/folder to match while importing (default: config 'rules').")
    ] = None,
    no_rules: Annotated[bool, typer.Option("--no-rules", help="Import without matching.")] = False,
    alert: Annotated[bool, typer.Option("--alert", help="Queue alerts for new hits (default: store hits only).")] = False,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Count and skip malformed records instead of failing.")] = False,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Import message files into the archive (idempotent), matching rules as they go."""
    from .ingest import import_file
    from .sources.files import InputError

    if fmt not in ("auto", "telegram", "x", "canonical"):
        fail(f"--format: unknown format '{fmt}' (auto, telegram, x, canonical)")
    cfg = setup(config, log_level)
    for p in paths:
        if not p.exists():
            fail(f"{p}: no such file")
        if p.is_dir():
            fail(f"{p}: is a directory (give the files)")
    matcher = None
    if not no_rules:
        from .rules.cli import matcher_for_cli

        matcher = matcher_for_cli(rules or cfg.rules, cfg, required=rules is not None)
    target = db_path(db, cfg)
    # a new archive (no file, or an empty one) that no file made it into is removed again below
    new_archive = target != ":memory:" and (not Path(target).exists() or Path(target).stat().st_size == 0)
    archive = Archive.open(target)
    from .alerts.policy import OutboxPolicy
    from .incidents import configure as configure_incidents

    archive.policy = OutboxPolicy.from_config(cfg)  # the daemon's outbox rows, `--alert` or not
    configure_incidents(archive, cfg)
    reports = []
    failed = False
    with archive, Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=json_out or not err_console.is_terminal,
    ) as progress:
        for p in paths:
            task = progress.add_task(p.name, total=p.stat().st_size)
            try:
                report = import_file(
                    archive,
                    p,
                    fmt=fmt,
                    matcher=matcher,
                    skip_bad=skip_bad,
                    alerts=alert,
                    progress=lambda n, t=task: progress.update(t, completed=n),
                )
            except InputError as exc:
                err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
                failed = True
                continue
            except OSError as exc:  # unreadable (permissions, I/O error): one line, the next file goes on
                reason = exc.strerror or str(exc)
                err_console.print(f"[bold red]error:[/] {escape(str(p))}: cannot read: {escape(reason)}",
                                  highlight=False, soft_wrap=True)
                failed = True
                continue
            finally:
                progress.remove_task(task)
            reports.append(report)
            for example in report.bad_examples:
                err_console.print(f"[yellow]skipped:[/] {escape(example)}", highlight=False, soft_wrap=True)
    if failed and not reports and new_archive:
        for leftover in (target, f"{target}-wal", f"{target}-shm"):
            Path(leftover).unlink(missing_ok=True)
    if json_out:
        print_json_lines(r.as_dict() for r in reports)
    elif reports:  # no empty table after a failed import
        _print_import(reports)
    if failed:
        raise typer.Exit(2)


_IMPORT_COLUMNS = ("read", "new", "edited", "unchanged", "service", "bad", "hits")


def _print_import(reports: list[Any]) -> None:
    """The import table; on a console too narrow for it whole (80 columns left the path
    "samples/…"), one line per file instead: the path in full, then its counts."""
    rows = []
    for r in reports:
        d = r.as_dict()
        counts = (r.read, d["new"], d["edited"] + d["updated"], d["unchanged"], r.skipped_service, r.bad, d["hits"])
        rows.append((r.path, r.format, [str(n) for n in counts]))
    widths = [max(len(col), *(len(c[i]) for _p, _f, c in rows)) for i, col in enumerate(_IMPORT_COLUMNS)]
    whole = (3 * (len(_IMPORT_COLUMNS) + 2) + 1 + max(len(p) for p, _f, _c in rows)
             + max(6, *(len(f) for _p, f, _c in rows)) + sum(widths))
    if whole > console.width:
        from rich.text import Text

        console.print(Text("Import", style="bold"))
        for path, fmt, counts in rows:
            line = Text()
            line.append(shown(path), style="bold")
            line.append(f" ({fmt}): " + ", ".join(f"{col} {n}" for col, n in zip(_IMPORT_COLUMNS, counts)))
            console.print(line)
        return
    table = Table(title="Import")
    for col in ("file", "format", *_IMPORT_COLUMNS):
        table.add_column(col, justify="left" if col in ("file", "format") else "right", no_wrap=True)
    for path, fmt, counts in rows:
        table.add_row(shown_text(path), fmt, *counts)
    console.print(table)


@app.command("stats")
def stats_cmd(
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Counts by platform and channel, date range, hits and outbox."""
    cfg = setup(config, log_level)
    with open_archive(db_path(db, cfg)) as archive:
        s = archive.stats()
    if json_out:
        print_json_lines([s])
        return
    console.print(
        f"[bold]{s['messages']}[/] messages ({s['versions']} versions, {s['deleted']} deleted), "
        f"[bold]{s['hits']}[/] hits, {s['first_date'] or '-'} .. {s['last_date'] or '-'}"
    )
    table = Table(title="Messages by channel")
    # Channel names and ids are never cut: on 80 columns "PayamMellat_FA" and "PayamMellat_EN"
    # were both "PayamMella…". On a narrow console first and last share a column (one above
    # the other), a name keeps its width up to 18 columns, longer names and ids fold.
    longest = max((len(str(row["channel"] or "")) for row in s["by_channel"]), default=7)
    ids = max((len(str(row["channel_id"] or "")) for row in s["by_channel"]), default=10)
    stacked = console.width < 8 + max(longest, 7) + max(ids, 10) + 8 + 16 + 16 + 19
    cols = ("platform", "channel", "channel_id", "messages") + (("first / last",) if stacked else ("first", "last"))
    name_width = min(max(longest, 7), 18)
    # stacked: the id gets what is left (rich's own shrinking overshot 80 columns by one)
    id_width = min(max(console.width - (8 + name_width + 8 + 16 + 16), 6), max(ids, 10)) if stacked else None
    for col in cols:
        table.add_column(col, justify="right" if col == "messages" else "left", overflow="fold",
                         no_wrap=col in ("platform", "messages", "first / last"),
                         width=name_width if stacked and col == "channel" else id_width if col == "channel_id" else None,
                         min_width=name_width if col == "channel" else None)
    for row in s["by_channel"]:
        first, last = _short_date(row["first"]), _short_date(row["last"])
        table.add_row(
            row["platform"], shown_text(row["channel"]), shown_text(row["channel_id"]), str(row["messages"]),
            *((f"{first}\n{last}",) if stacked else (first, last)),
        )
    console.print(table)
    if s["outbox"]:
        console.print("outbox: " + ", ".join(f"{k} {v}" for k, v in sorted(s["outbox"].items())))


def _short_date(value: str | None) -> str:
    """``2024-01-04T13:49:30Z`` -> ``2024-01-04 13:49`` (tables; JSON keeps the full value)."""
    return (value or "-")[:16].replace("T", " ")


def _register_all() -> None:
    from . import daemon_cli
    from .alerts import cli as alerts_cli
    from .incidents import cli as incidents_cli
    from .query import cli as query_cli
    from .rules import cli as rules_cli
    from .sources.telegram import cli as telegram_cli

    for mod in (rules_cli, alerts_cli, daemon_cli, telegram_cli, query_cli, incidents_cli):
        mod.register(app)


_register_all()


def _number_out_of_range(args: list[str]) -> str | None:
    """The first argument that is an integer too large for SQLite, named with its option."""
    from .cli_common import cut

    for i, arg in enumerate(args):
        value = arg.partition("=")[2] if arg.startswith("--") and "=" in arg else arg
        if value.lstrip("-").isdigit() and abs(int(value)) > 2**63 - 1:
            option = arg.partition("=")[0] if value is not arg else (args[i - 1] if i and args[i - 1].startswith("-") else "")
            return f"{option} {cut(value, 30)}".strip() if option else cut(value, 30)
    return None


def main() -> None:
    """The ``claimwatch`` command. Environment problems (an archive path that is a folder, a
    folder that cannot be created or read, a file that is not a database) are one line on
    stderr and exit 2, not a traceback."""
    import sqlite3

    from rich.markup import escape

    from .cli_common import cut

    try:
        app()
    except (OverflowError, sqlite3.Error, OSError) as exc:
        text = str(exc) if not isinstance(exc, OSError) or not exc.filename else f"{exc.filename}: {exc.strerror or exc}"
        too_big = _number_out_of_range(sys.argv[1:])
        if too_big and (isinstance(exc, OverflowError) or "datatype mismatch" in text):
            # an id or limit past SQLite's 64-bit integers ("Python int too large", or a
            # mismatch in LIMIT): say which argument, not the driver's words
            text = f"{too_big}: out of range (at most {2**63 - 1})"
        elif isinstance(exc, OverflowError):
            raise
        err_console.print(f"[bold red]error:[/] {escape(cut(text))}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
