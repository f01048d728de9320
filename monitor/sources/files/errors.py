"""Errors and counts of reading input files (a leaf module: every reader imports it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ...logs import get_logger

MAX_BAD_EXAMPLES = 20

log = get_logger("monitor.sources.files")


class InputError(Exception):
    """Unreadable input; the message names the file and the position or record."""


@dataclass
class ImportStats:
    format: str | None = None
    read: int = 0  # messages produced
    skipped_service: int = 0  # Telegram service messages (joins, pins, title changes ...)
    bad: int = 0  # bad records skipped (skip_bad mode)
    bad_examples: list[str] = field(default_factory=list)
    bytes_read: int = 0

    def add_bad(self, where: str, reason: str, *, skip_bad: bool) -> None:
        """Record a bad record: raise InputError, or (``skip_bad``) count it and keep going."""
        if not skip_bad:
            raise InputError(f"{where}: {reason}")
        self.bad += 1
        if len(self.bad_examples) < MAX_BAD_EXAMPLES:
            self.bad_examples.append(f"{where}: {reason}")
        log.info("bad record skipped", where=where, reason=reason)


ProgressFn = Callable[[int], None]
