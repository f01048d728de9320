"""CLI commands of monitor.rules (STUB: being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""


def matcher_for_cli(path: str, cfg, required: bool = False):
    """STUB: load + compile rules at ``path`` for a CLI command; exit 2 with file:line errors."""
    return None
