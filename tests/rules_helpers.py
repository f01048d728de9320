"""Helpers for the rules tests: write rule files, build messages, compile matchers."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from monitor.model import Forward, Message
from monitor.rules import Matcher, load_rules
from monitor.rules.reference import NaiveMatcher

# a watch rule over a names list and a place, as the cache and reload tests write it
WATCH_RULE = """\
id: watch
level: high
match:
  who: ["@list:names", Kerman]
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of the test's own (CLAIMWATCH_CACHE_DIR)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("CLAIMWATCH_CACHE_DIR", str(d))
    return d


T0 = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)
_counter = iter(range(1, 10**9))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def msg(text: str = "", *, platform: str = "telegram", channel: str | None = "news_channel",
        channel_id: str = "-1001", title: str | None = None, lang: str | None = None,
        author: str | None = None, forwarded: str | None = None, url: str | None = None, **kw: Any) -> Message:
    return Message(
        platform=platform,
        channel_id=channel_id,
        message_id=str(kw.pop("message_id", next(_counter))),
        date=kw.pop("date", T0),
        text=text,
        channel=channel,
        channel_title=title,
        lang=lang,
        author=author,
        forwarded_from=Forward(name=forwarded) if forwarded else None,
        url=url,
        **kw,
    )


def matcher_for(tmp_path: Path, rule_yaml: str, name: str = "rule.yml", **kw: Any) -> Matcher:
    d = tmp_path / f"rules-{next(_counter)}"
    write(d / name, rule_yaml)
    return Matcher(load_rules([d]), **kw)


def matcher_for_files(tmp_path: Path, files: dict[str, str], **kw: Any) -> Matcher:
    """A matcher of several rule files (name -> YAML) in a folder of their own."""
    d = tmp_path / f"rules-{next(_counter)}"
    for name, text in files.items():
        write(d / name, text)
    return Matcher(load_rules([d]), **kw)


def both_for(tmp_path: Path, rule_yaml: str) -> tuple[Matcher, NaiveMatcher]:
    d = tmp_path / f"rules-{next(_counter)}"
    write(d / "rule.yml", rule_yaml)
    rs = load_rules([d])
    return Matcher(rs), NaiveMatcher(rs)


def one_term_rule(term: str, op: str = "any") -> str:
    quoted = term.replace("\\", "\\\\").replace('"', '\\"')
    return f'id: t\nmatch:\n  sel:\n    {op}: ["{quoted}"]\n'
