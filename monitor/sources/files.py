"""File importers (STUB: being written): Telegram Desktop export JSON, X API v2 JSONL, canonical JSONL."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..model import Message


class InputError(Exception):
    """Unreadable input; the message names the file and the position or record."""


@dataclass
class ImportStats:
    format: str | None = None
    read: int = 0
    skipped_service: int = 0
    bad: int = 0
    bad_examples: list[str] = field(default_factory=list)


def detect_format(path: str | Path) -> str:
    raise NotImplementedError


def read_messages(
    path: str | Path,
    *,
    fmt: str = "auto",
    skip_bad: bool = False,
    stats: ImportStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Message]:
    raise NotImplementedError
