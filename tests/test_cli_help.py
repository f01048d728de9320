"""`claimwatch --help` lists each command with a short help that reads as one sentence: a
docstring whose first paragraph spans several lines was shown with its line breaks
("… every configured channel,\\n and report each one …"), so those commands give a
`short_help`."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from monitor.cli import app

runner = CliRunner()


def command_rows(args: list[str]) -> list[str]:
    """The rows of the Commands panel, on a terminal wide enough for every entry to fit one line."""
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"},
                           terminal_width=250)
    assert result.exit_code == 0, result.output
    panel = result.output.split("Commands")[1]
    return [line.strip("│ ").rstrip() for line in panel.splitlines()[1:] if line.startswith("│")]


@pytest.mark.parametrize("group", [[], ["rules"], ["alerts"], ["login"], ["incident"]])
def test_every_command_is_listed_on_one_line(group: list[str]) -> None:
    rows = command_rows(group)
    assert rows, "no Commands panel"
    for row in rows:
        assert re.match(r"^[a-z]+ +\S", row), f"{' '.join(['claimwatch', *group])} --help: broken entry {row!r}"


def test_doctor_and_serve_keep_their_full_help() -> None:
    listing = "\n".join(command_rows([]))
    assert "doctor     Check Telegram credentials, session and every configured channel." in listing
    assert "serve      Browse the archive in the browser (Datasette, read-only; the web extra)." in listing
    full = runner.invoke(app, ["doctor", "--help"], terminal_width=250).output
    assert "a config without sources.telegram is reported as not configured (exit 0)" in " ".join(full.split())
