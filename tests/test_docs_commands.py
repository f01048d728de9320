"""Every `claimwatch ...` command line shown in README.md and docs/*.md names a command that
exists and only options that command accepts (a doc example that no longer runs is a bug).

The commands are read from the fenced code blocks; bracketed placeholders (``[--json]``) are
read as the options they stand for. Values are not run: what this checks is the CLI's shape."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from monitor.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")


def command_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, command) for each `claimwatch` command in the file's code blocks."""
    out: list[tuple[int, str]] = []
    inside = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        text = line.strip()
        if text.startswith("$ "):
            text = text[2:].strip()
        if inside and text.startswith("claimwatch "):
            out.append((number, text))
    return out


def words(command: str) -> list[str]:
    command = re.sub(r"\s#\s.*$", "", command)  # a trailing comment
    command = command.replace("[", " ").replace("]", " ").replace("|", " ")
    return shlex.split(command)


def check(root: Any, argv: list[str]) -> str | None:
    """What is wrong with ``argv`` (after ``claimwatch``), or None. (Typer vendors its own click, so
    groups and options are recognised by their attributes.)"""
    command = root
    path = ["claimwatch"]
    rest = list(argv)
    while getattr(command, "commands", None) and rest and not rest[0].startswith("-"):
        name = rest[0]
        sub = command.commands.get(name)
        if sub is None:
                        return f"{' '.join(path)} has no command {name!r}"
        command, path = sub, path + [name]
        rest.pop(0)
    accepted = {opt for p in command.params if p.param_type_name == "option" for opt in p.opts + p.secondary_opts}
    accepted |= {"--help"}
    for word in rest:
        if word.startswith("-") and word not in ("-", "--", "..."):
            option = word.split("=", 1)[0]
            if option not in accepted:
                return f"{' '.join(path)} has no option {option}"
    return None


ROOT_COMMAND = typer.main.get_command(app)
CASES = [(f"{path.relative_to(ROOT)}:{number}", text) for path in DOCS for number, text in command_lines(path)]


def test_the_docs_show_commands() -> None:
    assert len(CASES) >= 40  # the reader finds examples; a broken extractor would find none
    assert any(where.startswith("README.md") for where, _ in CASES)


@pytest.mark.parametrize(("where", "command"), CASES, ids=[where for where, _ in CASES])
def test_documented_command_exists(where: str, command: str) -> None:
    problem = check(ROOT_COMMAND, words(command)[1:])
    assert problem is None, f"{where}: `{command}`: {problem}"


def test_the_checker_finds_a_renamed_option_and_command() -> None:
    assert check(ROOT_COMMAND, ["hits", "--kind", "claim"]) is None
    assert "no option --kinds" in (check(ROOT_COMMAND, ["hits", "--kinds", "claim"]) or "")
    assert "no command 'evaluate'" in (check(ROOT_COMMAND, ["rules", "evaluate", "rules/"]) or "")


CONFLICT = re.compile(r"^(<{7}|>{7})( |$)|^={7}$")


def conflict_markers(path: Path) -> list[int]:
    """Line numbers of merge-conflict markers left in a document."""
    return [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if CONFLICT.match(line)]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_no_merge_conflict_markers_left(path: Path) -> None:
    assert conflict_markers(path) == []


def test_the_marker_check_finds_a_left_conflict(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("a\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> branch\n| ======= |\n", encoding="utf-8")
    assert conflict_markers(doc) == [2, 4, 6]
