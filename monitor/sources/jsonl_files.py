"""Line-by-line reader for the JSONL formats (X API v2 pages/tweets, canonical messages).

Memory is bounded by the longest line. Errors name the file and the line:
``tweets.jsonl:17: invalid JSON: Expecting ',' delimiter (column 45)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Iterator

from ..model import Message, MessageError
from .depth import depth_message, line_too_deep
from .surrogates import json_may_have_surrogates
from .files import ImportStats, InputError, ProgressFn, parse_jsonl_record

PROGRESS_EVERY = 1 << 20  # bytes
MAX_SINGLE_DOCUMENT = 64 << 20  # a pretty-printed API response is read whole up to this size


def read_jsonl(
    f: IO[bytes],
    path: str | Path,
    fmt: str,
    *,
    stats: ImportStats,
    skip_bad: bool = False,
    progress: ProgressFn | None = None,
    offset: int = 0,
) -> Iterator[Message]:
    """Yield the Messages of a JSONL file (``fmt``: x | canonical | auto per line).

    A file holding one pretty-printed JSON object (an API response saved with curl, say)
    is read as a single record.
    """
    document = _single_document(f, offset)
    if document is not None:
        errors: list[str] = []
        try:
            messages = parse_jsonl_record(document, fmt, errors=errors)
        except MessageError as exc:
            raise InputError(f"{path}: {exc}") from None
        for reason in errors:
            stats.add_bad(f"{path}", reason, skip_bad=skip_bad)
        stats.read += len(messages)
        stats.bytes_read = f.tell()
        if progress is not None:
            progress(stats.bytes_read)
        yield from messages
        return
    nbytes = offset
    next_progress = nbytes + PROGRESS_EVERY
    lineno = 0
    good_lines = 0
    bad_lines = 0
    for line in f:
        lineno += 1
        nbytes += len(line)
        if progress is not None and nbytes >= next_progress:
            progress(nbytes)
            next_progress = nbytes + PROGRESS_EVERY
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        errors: list[str] = []
        if line_too_deep(line):
            bad_lines += 1
            stats.add_bad(where, depth_message(), skip_bad=skip_bad)
            continue
        try:
            obj = json.loads(line.rstrip(b"\r\n"))
            messages = parse_jsonl_record(obj, fmt, errors=errors, scrub=json_may_have_surrogates(line))
        except UnicodeDecodeError as exc:
            bad_lines += 1
            stats.add_bad(where, f"invalid UTF-8 (byte {exc.start + 1} of the line)", skip_bad=skip_bad)
            continue
        except json.JSONDecodeError as exc:
            bad_lines += 1
            truncated = not line.endswith(b"\n") and exc.pos >= len(exc.doc.rstrip()) - 1
            if not truncated and exc.msg.startswith("Unterminated string") and not line.endswith(b"\n"):
                truncated = True
            reason = "truncated record at end of file" if truncated else "invalid JSON"
            stats.add_bad(where, f"{reason}: {exc.msg} (column {exc.colno})", skip_bad=skip_bad)
            continue
        except RecursionError:
            bad_lines += 1
            stats.add_bad(where, "invalid JSON: nested too deeply", skip_bad=skip_bad)
            continue
        except MessageError as exc:
            bad_lines += 1
            stats.add_bad(where, str(exc), skip_bad=skip_bad)
            continue
        for reason in errors:
            stats.add_bad(where, reason, skip_bad=skip_bad)
        good_lines += 1
        for msg in messages:
            stats.read += 1
            yield msg
    stats.bytes_read = nbytes
    if progress is not None:
        progress(nbytes)
    if bad_lines and not good_lines:
        first = stats.bad_examples[0] if stats.bad_examples else ""
        raise InputError(f"{path}: no readable record ({bad_lines} bad lines; first: {first})")


def _single_document(f: IO[bytes], offset: int) -> object | None:
    """The whole file's JSON object if it is one multi-line document, else None (f rewound)."""
    first = f.readline()
    while first and not first.strip():
        first = f.readline()
    f.seek(offset)
    stripped = first.strip()
    if not stripped.startswith(b"{"):
        return None
    try:
        json.loads(stripped)
        return None  # a complete first line: JSONL
    except (ValueError, RecursionError):
        pass
    f.seek(0, 2)
    size = f.tell()
    f.seek(offset)
    if size - offset > MAX_SINGLE_DOCUMENT:
        return None
    try:
        doc = json.loads(f.read())
    except (ValueError, RecursionError):
        f.seek(offset)
        return None  # not one document either: report line errors
    return doc if isinstance(doc, dict) else None
