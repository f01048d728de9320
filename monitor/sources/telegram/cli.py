"""CLI commands of monitor.sources.telegram (STUB: being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
