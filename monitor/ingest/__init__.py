"""Import files into the archive: read (streaming) -> match -> store, one transaction per file.

Library API behind ``claimwatch import`` (and the daemon's one-shot ``files`` source).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..archive import Archive, StoreResult
from ..model import Hit, MatcherLike, Message
from ..sources.files.detect import read_messages
from ..sources.files.errors import ImportStats
from . import prepare as ingest_prepare




@dataclass
class FileReport:
    path: str
    format: str
    read: int = 0
    skipped_service: int = 0
    bad: int = 0
    bad_examples: list[str] = field(default_factory=list)
    result: StoreResult = field(default_factory=StoreResult)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "read": self.read,
            "skipped_service": self.skipped_service,
            "bad": self.bad,
            **self.result.as_dict(),
        }


def _pairs(messages: Iterable[Message], matcher: MatcherLike | None) -> Iterator[tuple[Message, list[Hit]]]:
    if matcher is None:
        for m in messages:
            yield m, []
    else:
        match = matcher.match
        for m in messages:
            yield m, match(m)


def import_file(
    archive: Archive,
    path: str | Path,
    *,
    fmt: str = "auto",
    matcher: MatcherLike | None = None,
    skip_bad: bool = False,
    alerts: bool = False,
    progress: Callable[[int], None] | None = None,
    prepare_process: bool | None = None,
) -> FileReport:
    """Import one file in one transaction: a parse error rolls the whole file back.

    With ``skip_bad`` a malformed *record* is counted and skipped; a file that is not
    parseable at all (broken JSON, truncated) always fails. ``progress`` receives the
    number of bytes read so far.

    ``prepare_process``: read, match and prepare the rows in a second process (see
    :mod:`monitor.ingest.prepare`) while this one writes; None (default) decides by the
    file's size. Not with ``alerts`` (the outbox policy works on Messages, edits included).
    """
    stats = ImportStats()
    if prepare_process is None:
        prepare_process = ingest_prepare.worth_it(path)
    if prepare_process and ingest_prepare.available() and not alerts:
        rows = ingest_prepare.prepared_rows(
            path, fmt=fmt, skip_bad=skip_bad, matcher=matcher, stats=stats, progress=progress,
            archive_path=archive.path, incidents=archive.incidents if matcher is not None else None,
        )
        try:
            result = archive.store_rows(rows, collect=False)
        finally:
            rows.close()
    else:
        messages = read_messages(path, fmt=fmt, skip_bad=skip_bad, stats=stats, progress=progress)
        result = archive.store(_pairs(messages, matcher), alerts=alerts, collect=False)
    return FileReport(
        path=str(path),
        format=stats.format or fmt,
        read=stats.read,
        skipped_service=stats.skipped_service,
        bad=stats.bad,
        bad_examples=list(stats.bad_examples),
        result=result,
    )
