"""Shared pieces of the CLI: the common options, errors, output helpers.

Every command takes ``--db``, ``--config`` and ``--log-level`` after its name (also from
``CLAIMWATCH_DB`` / ``CLAIMWATCH_CONFIG``); listings take ``--json``. Usage and input
errors exit with code 2 and a one-line message.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, Iterable, NoReturn, Optional

import typer
from rich.console import Console

from .config import Config, ConfigError, load_config, resolve_config_path

if TYPE_CHECKING:  # pragma: no cover
    from rich.text import Text

    from .archive import Archive

# No emoji codes: a path, key or message text such as "a:fire:.json" or "root:x:0" is printed as
# it is, never turned into an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

DbOpt = Annotated[
    Optional[str],
    typer.Option("--db", envvar="CLAIMWATCH_DB", help="Archive SQLite file (default: config 'database').", show_default=False),
]
ConfigOpt = Annotated[
    Optional[str],
    typer.Option("--config", "-c", envvar="CLAIMWATCH_CONFIG", help="YAML config file.", show_default=False),
]
LogLevelOpt = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


MAX_ERROR_CHARS = 400


def cut(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """An error message of reasonable size (a pasted 100,000-character argument is cut)."""
    if len(message) <= limit:
        return message
    return message[:limit] + f"... ({len(message) - limit:,} more characters)"


def print_error(message: str) -> None:
    """One line ``error: MESSAGE`` on stderr. The message is plain text (it names paths, keys
    and values the user typed or a file held): never read as markup."""
    from rich.text import Text

    err_console.print(Text.assemble(("error:", "bold red"), " ", cut(message)), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """:func:`print_error`, then exit ``code``."""
    print_error(message)
    raise typer.Exit(code)


def setup(config: str | None, log_level: str | None = "INFO", log_format: str | None = None) -> Config:
    """Load config (or defaults) and configure logging (``log_level`` / ``log_format`` None: the
    config's); config errors and unknown levels or formats exit 2."""
    from .logs import configure_logging

    from .config import LOG_LEVELS

    if log_level is not None and log_level.upper() not in LOG_LEVELS:
        fail(f"--log-level: unknown level {log_level!r} (one of {', '.join(LOG_LEVELS)})")
    if log_format is not None and log_format not in ("console", "json"):
        fail(f"--log-format: unknown format {log_format!r} (console or json)")
    try:
        cfg = load_config(resolve_config_path(config))
    except ConfigError as exc:
        *first, last = str(exc).splitlines() or [""]
        for problem in first:  # several problems: each its own "error:" line
            print_error(problem)
        fail(last)
    configure_logging(log_level or cfg.log_level, log_format or cfg.log_format)
    return cfg


def db_path(db: str | None, cfg: Config) -> str:
    return db or cfg.database


def open_archive(path: str, *, readonly: bool = True) -> "Archive":
    """Open an existing archive, or exit 2 with one line saying it is not there."""
    from pathlib import Path

    from .archive import Archive

    if not Path(path).exists():
        fail(f"{path}: archive not found (run 'claimwatch import' or 'claimwatch run' first)")
    return Archive.open(path, readonly=readonly)


def shown(value: Any) -> str:
    """Text read from Telegram, X or a file, made safe for a terminal: bidi embeddings,
    overrides and isolates become U+FFFD (they would reorder the rest of the line) and control
    characters (ESC sequences could clear the screen, recolour or retitle the terminal) are
    shown as ``\\x1b``-style escapes; tab and newline stay. ``--json`` and exports keep the
    text as archived."""
    from .alerts.destinations.console import visible_controls
    from .bidi import neutralize_bidi

    return visible_controls(neutralize_bidi("" if value is None else str(value)))


def shown_text(value: Any, spans: Iterable[tuple[int, int]] = (), style: str = "") -> "Text":
    """:func:`shown` as a rich Text (never markup), with ``spans`` (offsets into ``value``)
    styled ``style``: each piece is made safe on its own, so an escape that lengthens the text
    does not shift the highlights."""
    from rich.text import Text

    raw = "" if value is None else str(value)
    out = Text()
    pos = 0
    for start, end in sorted(spans):
        if start < pos or end <= start:
            continue
        out.append(shown(raw[pos:start]))
        out.append(shown(raw[start:end]), style=style)
        pos = end
    out.append(shown(raw[pos:]))
    return out


def print_json_lines(rows: Iterable[Any]) -> None:
    out = sys.stdout
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    out.flush()
