"""``claimwatch login telegram`` and ``claimwatch doctor``.

Telethon is imported inside the commands, so other commands start fast. Tests replace
:func:`make_gateway` (doctor) and :func:`make_login_client` (login) at the network edge.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ...cli_common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    LogLevelOpt,
    console,
    db_path,
    err_console,
    fail,
    print_json_lines,
    setup,
)
from ...config import TelegramConfig
from . import make_gateway  # noqa: F401 - looked up at call time (tests replace it)


def make_login_client(session: Any, api_id: int, api_hash: str) -> Any:
    """The Telethon client used by ``login telegram``."""
    from telethon import TelegramClient

    return TelegramClient(session, api_id, api_hash)


def register(app: typer.Typer) -> None:
    """Add ``login telegram`` and ``doctor`` to the main app."""
    login_app = typer.Typer(help="Log in to a platform (writes the session claimwatch uses).", no_args_is_help=True)
    login_app.command("telegram")(login_telegram)
    app.add_typer(login_app, name="login")
    # the listing of `claimwatch --help` shows a short help as written, line breaks and all
    app.command("doctor", short_help="Check Telegram credentials, session and every configured channel.")(doctor)


def login_telegram(
    config: ConfigOpt = None,
    string: Annotated[
        bool,
        typer.Option("--string", help="Print a StringSession (for TG_SESSION in containers); write no file."),
    ] = False,
    session: Annotated[
        Optional[str], typer.Option("--session", help="Session file (default: config sources.telegram.session).")
    ] = None,
    phone: Annotated[
        Optional[str], typer.Option("--phone", help="Phone number, international format (prompted if omitted).")
    ] = None,
    api_id: Annotated[
        Optional[int], typer.Option("--api-id", envvar="TG_API_ID", help="From https://my.telegram.org.", show_default=False)
    ] = None,
    api_hash: Annotated[
        Optional[str],
        typer.Option("--api-hash", envvar="TG_API_HASH", help="From https://my.telegram.org.", show_default=False),
    ] = None,
    account: Annotated[
        Optional[str], typer.Option("--account", help="Which of sources.telegram.accounts (by name) to log in.")
    ] = None,
    log_level: LogLevelOpt = "WARNING",
) -> None:
    """Log in to Telegram interactively (phone, code, 2FA password) and save the session.

    The session file is written with mode 0600. With --string nothing is written: the
    StringSession is printed on stdout for the container's TG_SESSION variable.
    """
    from .errors import TelegramSetupError
    from .session import open_private_session, session_file, string_session

    from .accounts import account_config

    cfg = setup(config, log_level)
    tg = cfg.sources.telegram or TelegramConfig()
    if tg.accounts or account is not None:
        try:
            tg = account_config(tg, account)
        except TelegramSetupError as exc:
            fail(str(exc))
    the_id = api_id or tg.api_id
    the_hash = api_hash or (tg.api_hash.get_secret_value() if tg.api_hash is not None else None)
    if not the_id or not the_hash:
        fail(
            "api_id and api_hash are required: create an application at https://my.telegram.org, then pass"
            " --api-id/--api-hash, set TG_API_ID/TG_API_HASH, or set sources.telegram in the config"
        )
    path = None
    try:
        if string:
            sess = string_session()
        else:
            path = session_file(session or tg.session)
            sess = open_private_session(path)
    except (TelegramSetupError, OSError) as exc:
        fail(str(exc))
    client = make_login_client(sess, int(the_id), str(the_hash))
    try:
        me = asyncio.run(_login(client, phone))
    except typer.Exit:
        raise
    except Exception as exc:  # wrong code, wrong password, invalid phone...
        from .errors import describe

        fail(f"login failed: {describe(exc)}", code=1)
    who = f"@{me.username}" if getattr(me, "username", None) else (getattr(me, "first_name", None) or "?")
    if string:
        err_console.print(
            f"Logged in as {escape(who)}. The StringSession follows on stdout: keep it secret (it grants full access"
            " to the account); use it as TG_SESSION with session_string: \"${TG_SESSION}\".",
            highlight=False,
        )
        typer.echo(sess.save())
    else:
        assert path is not None
        os.chmod(path, 0o600)
        console.print(f"Logged in as {escape(who)}; session saved to {escape(str(path))} (mode 0600).", highlight=False)


def _not_configured(cfg: Any, json_out: bool) -> None:
    """A config without ``sources.telegram`` (files or X only) is not a problem: doctor says
    Telegram is not configured and exits 0 (it exited 1, failing a deployment gate on a config
    that reads no Telegram)."""
    from .doctor import Check

    if cfg.source_path:
        detail = f"not configured: {cfg.source_path} has no sources.telegram; nothing to check"
    else:
        detail = "not configured: no config file given (--config or CLAIMWATCH_CONFIG); nothing to check"
    check = Check("telegram", True, detail)
    if json_out:
        print_json_lines([{**check.as_dict(), "configured": False}])
        return
    table = Table(title="Telegram")
    for col in ("check", "status", "detail"):
        table.add_column(col, overflow="fold")
    table.add_row(Text("telegram"), Text("not configured", style="yellow"), Text(check.detail))
    console.print(table)


async def _login(client: Any, phone: str | None) -> Any:
    try:
        await client.start(
            phone=lambda: phone or typer.prompt("Phone number (international format, e.g. +441234567890)"),
            code_callback=lambda: typer.prompt("Login code (sent by Telegram)"),
            password=lambda: typer.prompt("Two-step verification password", hide_input=True),
            max_attempts=3,
        )
        return await client.get_me()
    finally:
        await client.disconnect()


def doctor(
    db: DbOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = "WARNING",
    json_out: JsonOpt = False,
    account: Annotated[
        Optional[str], typer.Option("--account", help="Check only this one of sources.telegram.accounts.")
    ] = None,
) -> None:
    """Check Telegram credentials and session, resolve and read every configured channel,
    and report each one OK or why it cannot be read (per account when there are several).
    Exit 1 if anything is wrong; a config without sources.telegram is reported as not
    configured (exit 0)."""
    from ...archive import Archive
    from . import cli as this
    from .doctor import run_doctor

    cfg = setup(config, log_level)
    tg = cfg.sources.telegram
    if tg is None:
        _not_configured(cfg, json_out)
        return
    path = db_path(db, cfg)
    # The channel cache lives in the archive; a check creates no archive: without one, the
    # resolved channels are cached in memory for this run only.
    from .accounts import account_config, account_configs
    from .errors import TelegramSetupError

    try:
        accounts = {account: account_config(tg, account)} if account is not None else account_configs(tg)
    except TelegramSetupError as exc:
        fail(str(exc))
    archive = Archive.open(path if Path(path).exists() else ":memory:")
    checks = []
    with archive:
        for name, acc in accounts.items():  # one account after the other, each with its own client
            for c in asyncio.run(run_doctor(acc, archive, this.make_gateway)):
                checks.append((name, acc, c))
    if json_out:
        print_json_lines({**c.as_dict(), **({"account": name} if name is not None else {})} for name, _acc, c in checks)
    else:
        for name in accounts:
            table = Table(title="Telegram" + (f" account {name}" if name is not None else ""))
            for col in ("check", "status", "id", "title", "detail"):
                table.add_column(col, overflow="fold")
            for cname, acc, c in checks:
                if cname != name:
                    continue
                if c.ok:
                    status = Text("OK", style="green")
                else:
                    status = Text("cannot read" if c.name in acc.channels else "FAIL", style="red")
                # Titles and reasons come from Telegram: plain Text, never console markup.
                table.add_row(Text(c.name), status, Text(c.channel_id or ""), Text(c.title or ""), Text(c.detail))
            console.print(table)
    checks = [c for _name, _acc, c in checks]
    problems = [c for c in checks if not c.ok]
    if problems:
        if not json_out:
            err_console.print(f"[bold red]{len(problems)} problem(s)[/]", highlight=False)
        raise typer.Exit(1)
