"""``claimwatch alerts``: list deliveries, re-queue failed ones, send a test alert."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.table import Table
from rich.text import Text

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
)
from ..logs import redact

STATUS_STYLE = {"sent": "green", "failed": "bold red", "pending": "yellow", "sending": "cyan", "skipped": "dim"}


def _safe(value: Any) -> Text:
    """Hostile text (channel names, errors) as a rich Text: no markup, no terminal controls, no
    bidi overrides."""
    return Text(shown(value))


def _short_time(value: str | None) -> str:
    """``05-01 12:00`` from an archive timestamp (UTC)."""
    return (value or "")[5:16].replace("T", " ")


LIST_COLUMNS = ("id", "when (UTC)", "destination", "kind", "status", "rule", "channel")
_FLEX = {"destination": 16, "rule": 24, "channel": 24}  # cut (…) to fit; the others stay whole


def _column_widths(cells: list[tuple[Text, ...]], console_width: int) -> list[int]:
    """Widths of the ``alerts`` table: id, time, kind and status whole (ids are what ``alerts
    retry`` takes); destination, rule and channel at most their caps, cut further on a narrow
    console, the widest first."""
    natural = [max([len(name)] + [c[i].cell_len for c in cells]) for i, name in enumerate(LIST_COLUMNS)]
    widths = [min(w, _FLEX.get(name, w)) for w, name in zip(natural, LIST_COLUMNS)]
    room = console_width - 2 - 3 * (len(LIST_COLUMNS) - 1)  # outer edges, and padding + rule between columns
    flex = [i for i, name in enumerate(LIST_COLUMNS) if name in _FLEX]
    while sum(widths) > room:
        i = max(flex, key=lambda j: widths[j])
        if widths[i] <= 6:
            break
        widths[i] -= 1
    return widths


def register(app: typer.Typer) -> None:
    """Add the ``alerts`` group to the main app."""
    alerts_app = typer.Typer(
        help="Alert deliveries: list recent ones and failures, retry failed ones, send a test alert.",
        no_args_is_help=False,
    )

    @alerts_app.callback(invoke_without_command=True)
    def alerts_list(
        ctx: typer.Context,
        status: Annotated[
            Optional[str], typer.Option("--status", help="Only rows in this state: pending, sending, sent, failed, skipped.")
        ] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="How many rows (newest first).")] = 50,
        db: DbOpt = None,
        config: ConfigOpt = None,
        log_level: LogLevelOpt = "WARNING",
        json_out: JsonOpt = False,
    ) -> None:
        """List recent alert deliveries and failures (newest first)."""
        if ctx.invoked_subcommand is not None:
            return
        from .outbox import STATUSES, list_deliveries, status_counts

        if status is not None and status not in STATUSES:
            fail(f"--status: unknown status '{status}' (one of: {', '.join(STATUSES)})")
        cfg = setup(config, log_level)
        with open_archive(db_path(db, cfg)) as archive:
            rows = list_deliveries(archive, status=status, limit=limit)
            counts = status_counts(archive)
        if json_out:
            print_json_lines(rows)
            return
        summary = ", ".join(f"{k} {counts[k]}" for k in STATUSES if k in counts) or "empty"
        console.print(f"outbox: {summary}", highlight=False)
        if not rows:
            console.print("no deliveries" + (f" with status {status}" if status else ""))
            return
        errors = []
        cells = []
        for r in rows:
            channel = ("@" + r["channel"].lstrip("@")) if r["channel"] else (r["channel_title"] or r["channel_id"] or "")
            if r["status"] in ("sent", "skipped"):
                when = r["sent_at"]
            elif r["status"] in ("pending", "sending"):
                when = r["next_attempt_at"]
            else:
                when = r["created_at"]
            status = r["status"] + (f" ×{r['attempts']}" if r["attempts"] > 1 else "")  # × tries
            cells.append((
                Text(str(r["id"])),
                _safe(_short_time(when)),
                _safe(r["destination"]),
                _safe(r["kind"]),
                Text(status, style=STATUS_STYLE.get(r["status"], "")),
                _safe((r["rule_id"] or "") + (f" +{len(r['rules']) - 1}" if len(r.get("rules") or ()) > 1 else "")),
                _safe(channel),
            ))
            if r["last_error"] and r["status"] != "sent":
                errors.append(Text.assemble(f"#{r['id']} {r['status']}: ", _safe(r["last_error"])))
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        for name, width in zip(LIST_COLUMNS, _column_widths(cells, console.width)):
            table.add_column(name, justify="right" if name == "id" else "left", no_wrap=True, width=width,
                             overflow="ellipsis")
        for c in cells:
            table.add_row(*c)
        console.print(table)
        if errors:
            console.print("last errors:")
            for line in errors:
                console.print(Text("  ").append(line), soft_wrap=True)

    @alerts_app.command("retry")
    def retry_cmd(
        ids: Annotated[Optional[list[int]], typer.Argument(help="Outbox ids to retry (default: every failed row).")] = None,
        db: DbOpt = None,
        config: ConfigOpt = None,
        log_level: LogLevelOpt = "WARNING",
        json_out: JsonOpt = False,
    ) -> None:
        """Put failed deliveries back in the queue (the running daemon sends them)."""
        from .outbox import retry_failed

        cfg = setup(config, log_level)
        with open_archive(db_path(db, cfg), readonly=False) as archive:
            if ids:
                known = {
                    rid: st
                    for rid, st in archive.conn.execute(
                        f"SELECT id, status FROM outbox WHERE id IN ({','.join('?' * len(ids))})", list(ids)
                    )
                }
                for rid in ids:
                    if rid not in known:
                        err_console.print(f"[yellow]warning:[/] outbox row {rid} does not exist", highlight=False)
                    elif known[rid] != "failed":
                        err_console.print(
                            f"[yellow]warning:[/] outbox row {rid} is {known[rid]}, not failed: left as it is",
                            highlight=False,
                        )
            n = retry_failed(archive, ids or None)
        if json_out:
            print_json_lines([{"requeued": n}])
        else:
            console.print(f"re-queued {n} failed {'delivery' if n == 1 else 'deliveries'}", highlight=False)

    @alerts_app.command("test")
    def test_cmd(
        destination: Annotated[str, typer.Argument(help="Destination name from the config (console is always there).")],
        config: ConfigOpt = None,
        log_level: LogLevelOpt = "WARNING",
        json_out: JsonOpt = False,
    ) -> None:
        """Send a sample alert to DESTINATION now, to check its configuration."""
        import dataclasses

        from ..config import ConfigError
        from .destinations import DeliveryError, TemporaryDeliveryError, build_destinations
        from .render import Renderer, RenderError, sample_context

        cfg = setup(config, log_level)
        try:
            destinations = build_destinations(cfg)
        except ConfigError as exc:
            fail(str(exc))
        dest = destinations.get(destination)
        if dest is None:
            fail(f"unknown destination '{destination}' (configured: {', '.join(sorted(destinations))})")
        try:
            alert = Renderer(cfg.alerts.templates).render(sample_context(destination))
        except RenderError as exc:
            fail(str(exc))
        alert = dataclasses.replace(alert, destination=destination)

        async def send() -> None:
            try:
                await dest.send(alert)
            finally:
                await dest.aclose()

        error: DeliveryError | None = None
        try:
            asyncio.run(send())
        except DeliveryError as exc:
            error = exc
        result = {
            "destination": destination,
            "type": dest.type,
            "ok": error is None,
            "error": redact(error.reason) if error else None,
            "temporary": isinstance(error, TemporaryDeliveryError) if error else None,
        }
        if json_out:
            print_json_lines([result])
        elif error is None:
            err_console.print(f"[green]ok:[/] test alert sent to {destination} ({dest.type})", highlight=False)
        else:
            kind = "temporary failure (would be retried)" if result["temporary"] else "failed"
            err_console.print(f"[bold red]{kind}:[/] {destination} ({dest.type}):", _safe(result["error"]), highlight=False)
        if error is not None:
            raise typer.Exit(1)

    app.add_typer(alerts_app, name="alerts")
