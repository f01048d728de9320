"""Line-by-line reader for the JSONL formats (X API v2 pages/tweets, canonical messages).

Memory is bounded by the longest line. Errors name the file and the line:
``tweets.jsonl:17: invalid JSON: Expecting ',' delimiter (column 45)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

from ...model import CANONICAL_SCHEMA, Message, MessageError, canonical_json
from ..depth import depth_message, line_too_deep
from ..surrogates import json_may_have_surrogates, scrub_message
from ..x import convert as x_convert
from .errors import ImportStats, InputError, ProgressFn

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


def classify_record(obj: Any) -> str | None:
    """The kind of one decoded JSON object: canonical | x-page | x-tweet | telegram | None."""
    if not isinstance(obj, Mapping):
        return None
    schema = obj.get("schema")
    if isinstance(schema, str) and schema.startswith("claimwatch.message/"):
        return "canonical"
    if "data" in obj or "includes" in obj or ("meta" in obj and "result_count" in (obj.get("meta") or {})):
        return "x-page"
    if "id" in obj and ("text" in obj or "note_tweet" in obj) and (
        "author_id" in obj or "edit_history_tweet_ids" in obj or "author" in obj or "__twarc" in obj
    ):
        return "x-tweet"
    if "messages" in obj or "chats" in obj or "left_chats" in obj:
        return "telegram"
    return None


def parse_jsonl_record(
    obj: Any, fmt: str = "auto", *, errors: list[str] | None = None, scrub: bool = True
) -> list[Message]:
    """One decoded JSONL line -> its Messages (X response page, X tweet, flattened tweet, canonical).

    Raises MessageError for a record that is not one of those or lacks required fields.
    With ``errors`` (a list) a page's bad tweets are reported there ("tweet <id>: reason")
    and the good ones returned. ``scrub=False`` skips the lone-surrogate scrub of a canonical
    record (for a caller that checked the line with
    :func:`~monitor.sources.surrogates.json_may_have_surrogates`).
    """
    kind = classify_record(obj)
    if fmt not in ("auto", "x", "canonical"):
        raise MessageError(f"format '{fmt}' is not a JSONL format")
    if kind is None or kind == "telegram":
        if not isinstance(obj, Mapping):
            raise MessageError(f"record is a JSON {type(obj).__name__}, not an object")
        keys = ", ".join(list(obj)[:6]) or "none"
        raise MessageError(f"not a tweet, X API page or canonical message (keys: {keys})")
    if (fmt == "x" and kind == "canonical") or (fmt == "canonical" and kind != "canonical"):
        raise MessageError(f"a {kind} record in a file read as '{fmt}'")
    if kind == "canonical":
        if obj.get("schema") != CANONICAL_SCHEMA:
            raise MessageError(f"unsupported schema {obj.get('schema')!r} (this version reads {CANONICAL_SCHEMA})")
        msg = Message.from_dict(obj)
        return [scrub_message(msg) if scrub else msg]
    if kind == "x-page":
        return x_convert.page_to_messages(obj, errors=errors)
    return [x_convert.fold_edit(x_convert.tweet_to_message(obj))]


def canonical_line(msg: Message) -> str:
    """``msg`` as one canonical JSONL line (with the trailing newline)."""
    return canonical_json(msg.to_dict()) + "\n"
