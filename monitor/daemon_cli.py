"""``claimwatch run`` and ``claimwatch status``: thin commands over :mod:`monitor.daemon`."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .alerts.queue import status_counts
from .timefmt import age, ago, approx_duration
from .cli_common import (
    ConfigOpt, DbOpt, JsonOpt, LogLevelOpt, console, db_path, err_console, fail, print_error, print_json_lines, setup,
    shown_text,
)


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("status")(status_cmd)


def run_cmd(
    config: ConfigOpt = None,
    db: DbOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Process what the sources have now, deliver alerts, exit.")] = False,
    drain_timeout: Annotated[
        float, typer.Option("--drain-timeout", min=0,
                            help="With --once: seconds to keep retrying failing destinations.")
    ] = 30.0,
    log_level: Annotated[
        Optional[str],
        typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR (default: the config's log_level, INFO).",
                     show_default=False),
    ] = None,
    log_format: Annotated[
        Optional[str], typer.Option("--log-format", help="console | json (default: the config's log_format).")
    ] = None,
    role: Annotated[
        str,
        typer.Option("--role", help="all (one process) | collector (sources -> Redis) | archiver (Redis -> archive, alerts)."),
    ] = "all",
) -> None:
    """Run the monitor: sources -> rules -> archive -> alerts (until SIGTERM, or --once)."""
    from .alerts.render import RenderError
    from .config import ConfigError
    from .daemon import Daemon
    from .rules import RuleSetError
    from .rules.loader import format_problems

    from .bus import ROLES

    if role not in ROLES:
        fail(f"--role: must be one of {', '.join(ROLES)}, not {role!r}")
    cfg = setup(config, log_level, log_format)
    if role == "collector":
        _run_collector(cfg, once)
    daemon = Daemon(cfg, db=db_path(db, cfg), drain_timeout=drain_timeout, role=role)
    try:
        daemon.prepare()
    except RuleSetError as exc:
        fail("rules have errors; not starting\n" + format_problems(exc.problems))
    except ConfigError as exc:  # a destination's settings: name the file and line
        from .config import locate

        fail(f"cannot start: {locate(cfg, str(exc))}")
    except (ValueError, OSError, RenderError) as exc:
        fail(f"cannot start: {_located(cfg, exc)}")
    code = asyncio.run(daemon.run(once=once))
    if once:
        note = pending_note(daemon.db)
        if note:
            err_console.print(escape(note), highlight=False, soft_wrap=True)
        for problem in daemon.problems:  # a missing configured file, a source that failed
            print_error(problem)
    raise typer.Exit(code)


def _run_collector(cfg: Any, once: bool) -> None:
    from .bus.roles import Collector
    from .config import ConfigError

    collector = Collector(cfg) if cfg.bus is not None else None
    if collector is None:
        fail(f"{cfg.source_path or 'the config'}: --role collector needs a 'bus:' section (bus: {{url: redis://...}})")
    try:
        collector.prepare()
    except (ValueError, OSError, ConfigError) as exc:
        fail(f"cannot start: {_located(cfg, exc)}")
    code = asyncio.run(collector.run(once=once))
    for problem in collector.problems:
        print_error(problem)
    raise typer.Exit(code)


def _located(cfg: Any, exc: BaseException) -> str:
    """A start-up error about a setting (``sources.telegram: api_id and api_hash are required``,
    ``alerts.templates: …``) with the config file and line of that setting; others as they are
    (an archive path, another daemon running)."""
    from .config import Config, locate

    message = str(exc)
    where = message.partition(":")[0]
    if " " not in where and where.replace("[", ".").split(".")[0] in Config.model_fields:
        return locate(cfg, message)
    return message


def pending_note(path: str) -> str | None:
    """One line on what ``run --once`` left pending in the outbox, and why."""
    from .archive import Archive

    try:
        with Archive.open(path, readonly=True) as archive:
            rows = archive.conn.execute(
                "SELECT kind, count(*), min(next_attempt_at), sum(attempts > 0) FROM outbox"
                " WHERE status='pending' GROUP BY kind ORDER BY kind"
            ).fetchall()
    except (OSError, sqlite3.Error):
        return None
    if not rows:
        return None
    total = sum(n for _k, n, _due, _tried in rows)
    parts = []
    for kind, n, due, tried in rows:
        when = (due or "")[:16].replace("T", " ")
        if kind == "followup":
            parts.append(f"{n} throttled follow-up(s) summing up later hits of an alerted rule and channel, due from {when} UTC")
        elif tried:
            parts.append(f"{n} {kind}(s) whose destination failed, retried from {when} UTC")
        else:
            parts.append(f"{n} {kind}(s) due from {when} UTC")
    return (f"{total} alert(s) left pending: " + "; ".join(parts)
            + ". 'run --once' sends only what is due now; the daemon ('claimwatch run') or a later 'run --once' sends the rest when due.")


def daemon_running(path: str) -> bool:
    """Is a daemon holding this archive's lock (``<db>.lock``) right now?"""
    import fcntl

    try:
        fh = open(path + ".lock", "rb")  # noqa: SIM115
    except OSError:
        return False
    try:
        fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        fh.close()
    return False


def _daemon_line(d: dict[str, Any], running: bool) -> str:
    if running:
        return f"daemon: running, pid {d.get('pid', '?')}, heartbeat {age(d.get('heartbeat_at'))} ago"
    if not d:
        return "daemon: not running (never started on this archive)"
    ended = d.get("stopped_at") or d.get("heartbeat_at")
    return f"daemon: not running (last run ended {age(ended)} ago)"


def status_report(path: str) -> dict[str, Any]:
    """Per-source status, outbox counts and loaded rules, read from the archive."""
    from .archive import Archive

    with Archive.open(path, readonly=True) as archive:
        conn = archive.conn
        sources = []
        daemon_info: dict[str, Any] = {}
        for source, last_msg, last_poll, errors, last_error, info, updated in conn.execute(
            "SELECT source, last_message_at, last_poll_at, errors, last_error, info, updated_at FROM source_status"
            " ORDER BY source"
        ):
            parsed = json.loads(info) if info else {}
            if source == "daemon":
                daemon_info = {**parsed, "heartbeat_at": last_poll}
                continue
            sources.append(
                {
                    "source": source,
                    "last_message_at": last_msg,
                    "last_message_date": parsed.get("last_message_date"),
                    "last_poll_at": last_poll,
                    "errors": errors,
                    "last_error": last_error,
                    "info": parsed,
                }
            )
        outbox = status_counts(conn)
        checkpoints = [
            {"source": s, "channel": c, "value": v, "updated_at": u}
            for s, c, v, u in conn.execute("SELECT source, channel, value, updated_at FROM checkpoints ORDER BY source, channel")
        ]
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        hits = conn.execute("SELECT count(*) FROM hits").fetchone()[0]
    from .daemon.service import read_status_file

    side = read_status_file(path)  # written when the archive itself could not be
    if side and str(side.get("heartbeat_at") or "") > str(daemon_info.get("heartbeat_at") or ""):
        daemon_info = side
    running = daemon_running(path)
    daemon_info = {**daemon_info, "running": running} if daemon_info or running else {}
    return {
        "database": path,
        "messages": messages,
        "hits": hits,
        "daemon": daemon_info,
        "sources": sources,
        "outbox": outbox,
        "checkpoints": checkpoints,
    }


def status_cmd(
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
) -> None:
    """Sources (last message, lag, errors), outbox pending/failed, loaded rules."""
    cfg = setup(config, log_level)
    path = db_path(db, cfg)
    bus = None
    if cfg.bus is not None:  # collectors and archivers on Redis (docs/operations.md)
        from .bus.status import bus_report, print_bus

        bus = bus_report(cfg.bus)
    try:
        report = status_report(path)
    except FileNotFoundError:
        if bus is None:
            fail(f"{path}: archive not found (has 'claimwatch run' been started?)")
        report = None  # a collector's host: no archive here
    if json_out:
        print_json_lines([{**(report or {}), **({"bus": bus} if bus is not None else {})}])
        return
    if bus is not None:
        print_bus(console, bus, age)
    if report is None:
        return
    d = report["daemon"]
    rules = d.get("rules") or {}
    running = bool(d.get("running"))
    console.print(
        f"[bold]{report['messages']}[/] messages, [bold]{report['hits']}[/] hits in {escape(path)}\n"
        + _daemon_line(d, running)
        + (f", rules loaded: {rules['rules']}" if running and rules.get("rules") is not None else "")
        + (f" [red](reload failed: {escape(str(rules['last_error']))})[/]" if running and rules.get("last_error") else "")
    )
    if running and d.get("write_error"):
        console.print(
            f"[bold red]archive writes failing[/] since {age(d.get('write_failing_since'))} ago "
            f"(retrying; nothing is dropped): {escape(str(d['write_error'])[:200])}"
        )
    unstored = (d.get("stats") or {}).get("unstored")
    if not running and unstored:
        console.print(f"[red]last run could not store {unstored} event(s)[/]: {escape(str(d.get('write_error') or ''))}")
    table = Table(title="Sources")
    for col in ("source", "last message", "lag", "last poll", "errors", "last error"):
        table.add_column(col)
    for s in report["sources"]:
        lag = "-"
        if s["last_message_date"]:
            lag = age(s["last_message_date"])
        table.add_row(
            s["source"], ago(s["last_message_at"]), lag, ago(s["last_poll_at"]),
            str(s["errors"]), shown_text((s["last_error"] or "")[:80]),  # may quote a post, a title, X's reply
        )
    console.print(table)
    for s in report["sources"]:  # sources with a read budget (x)
        info = s["info"]
        if "reads_used" in info:
            cap = info.get("monthly_read_cap")
            every = info.get("effective_interval")
            console.print(
                f"{s['source']}: {info['reads_used']} posts read this month"
                + (f" of {cap}, {info.get('reads_remaining')} left" if cap else "")
                + (f"; polling every {approx_duration(every)}" if isinstance(every, (int, float)) else "")
                + (f"; stopped: {', '.join(info['stopped'])}" if info.get("stopped") else "")
            )
    ob = report["outbox"]
    console.print(
        f"outbox: pending {ob.get('pending', 0)}, failed {ob.get('failed', 0)}, sent {ob.get('sent', 0)}"
        + "".join(f", {k} {v}" for k, v in ob.items() if k not in ("pending", "failed", "sent"))
    )
    if report["checkpoints"]:
        console.print(f"checkpoints: {len(report['checkpoints'])}")
