"""Format detection and :func:`read_messages`, the one entry point for reading a file
(Telegram Desktop export JSON, X API v2 JSONL, canonical JSONL).

    detect_format(path) -> "telegram" | "x" | "canonical"
    read_messages(path, fmt="auto", skip_bad=False, stats=None, progress=None,
                  channel_username=None) -> Iterator[Message]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

from ...model import Message
from ..depth import MAX_JSON_DEPTH
from ..telegram.export import ijson_backend, read_telegram_export
from .errors import ImportStats, InputError, ProgressFn
from .jsonl import classify_record, read_jsonl

FORMATS = ("telegram", "x", "canonical")
PEEK_BYTES = 64 * 1024
UTF8_BOM = b"\xef\xbb\xbf"


# -- opening ------------------------------------------------------------------------
def open_input(path: str | Path) -> IO[bytes]:
    """Open ``path`` for binary reading; a missing/unreadable path is an InputError."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory (give the files)") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    return f


def skip_bom(f: IO[bytes]) -> int:
    """Skip a UTF-8 byte order mark at the start of ``f``; returns the bytes skipped."""
    if f.read(3) == UTF8_BOM:
        return 3
    f.seek(0)
    return 0


# -- detection ----------------------------------------------------------------------
_KIND_TO_FORMAT = {"canonical": "canonical", "x-page": "x", "x-tweet": "x", "telegram": "telegram"}
_TELEGRAM_KEYS = {"messages", "chats", "left_chats", "personal_information", "frequent_contacts"}
_X_PAGE_KEYS = {"data", "includes"}
_SCAN_EVENTS = 2_000_000
_DETECT_LINES = 20


def detect_format(path: str | Path) -> str:
    """Detect the format of ``path`` from its content: telegram | x | canonical.

    Looks at the first JSON line (JSONL) or, for a pretty-printed JSON document, at its
    top-level keys (streamed). Raises InputError naming the file for anything else.
    """
    with open_input(path) as f:
        skip_bom(f)
        return _detect(f, path)


def _detect(f: IO[bytes], path: str | Path) -> str:
    start = f.tell()
    head = f.read(PEEK_BYTES)
    stripped = head.lstrip()
    if not stripped:
        raise InputError(f"{path}: empty file (nothing to import)")
    if not stripped.startswith(b"{"):
        what = "a JSON array" if stripped.startswith(b"[") else f"text starting {_snippet(stripped)}"
        raise InputError(f"{path}: unknown format: {what} (expected {_EXPECTED})")
    # JSONL (or a one-line JSON document): the first line that parses decides (a broken
    # first line is reported by the reader, with its number).
    lines = stripped.split(b"\n")
    if len(head) == PEEK_BYTES:
        lines = lines[:-1]  # the last one may be cut
    for line in lines[:_DETECT_LINES]:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        kind = classify_record(obj)
        if kind:
            return _KIND_TO_FORMAT[kind]
        if isinstance(obj, Mapping):
            keys = ", ".join(list(obj)[:6])
            raise InputError(f"{path}: unknown format: a record with keys {keys} (expected {_EXPECTED})")
        break
    # A pretty-printed document (Telegram export) or a broken first line: stream the
    # top-level keys with ijson and decide from them.
    f.seek(start)
    kind = _scan_top_level(f)
    if kind:
        return kind
    raise InputError(f"{path}: unknown format: a JSON object without Telegram, X or canonical keys (expected {_EXPECTED})")


_EXPECTED = "a Telegram Desktop export, X API v2 JSONL or claimwatch canonical JSONL"


def _snippet(b: bytes, n: int = 20) -> str:
    return repr(b[:n].decode("utf-8", "replace"))


def _scan_top_level(f: IO[bytes]) -> str | None:
    """Classify a JSON object from its top-level keys, reading no further than needed.

    ijson's basic events (no prefixes: a prefix grows with the depth, and building one per
    event made a deeply nested first line quadratic: 200,000 levels never finished), the
    depth counted here and the scan stopped past MAX_JSON_DEPTH (the reader then reports it)."""
    ijson = ijson_backend()
    keys: set[str] = set()
    depth = 0
    key: str | None = None
    try:
        for n, (event, value) in enumerate(ijson.basic_parse(f)):
            if event in ("start_map", "start_array"):
                depth += 1
                if depth > MAX_JSON_DEPTH:
                    break
            elif event in ("end_map", "end_array"):
                depth -= 1
                if depth == 0:
                    break
            elif depth == 1 and event == "map_key":
                key = value
                keys.add(value)
                if value in _TELEGRAM_KEYS:
                    return "telegram"
                if value in _X_PAGE_KEYS:
                    return "x"
            elif depth == 1 and event == "string" and key == "schema":
                if value.startswith("claimwatch.message/"):
                    return "canonical"
            if n > _SCAN_EVENTS:
                break
    except Exception:  # noqa: BLE001 - a broken document: decide from what was seen
        pass
    if "id" in keys and "text" in keys and keys & {"author_id", "edit_history_tweet_ids", "author"}:
        return "x"
    return None


# -- reading ------------------------------------------------------------------------
def read_messages(
    path: str | Path,
    *,
    fmt: str = "auto",
    skip_bad: bool = False,
    stats: ImportStats | None = None,
    progress: ProgressFn | None = None,
    channel_username: str | Mapping[str, str] | None = None,
) -> Iterator[Message]:
    """Stream the Messages of one file (any supported format; ``fmt`` overrides detection).

    ``progress(bytes_read)`` is called periodically. ``channel_username`` (Telegram only):
    the channel's @username, which exports do not carry (a mapping chat id -> username for
    full-account exports); it makes t.me/<username>/<id> links. Raises InputError.
    """
    if fmt not in ("auto", *FORMATS):
        raise InputError(f"{path}: unknown format '{fmt}' (auto, {', '.join(FORMATS)})")
    stats = stats if stats is not None else ImportStats()
    with open_input(path) as f:
        bom = skip_bom(f)
        if fmt == "auto":
            fmt = _detect(f, path)
            f.seek(bom)
        stats.format = fmt
        if fmt == "telegram":
            yield from read_telegram_export(
                f, path, stats=stats, skip_bad=skip_bad, progress=progress,
                channel_username=channel_username, offset=bom,
            )
        else:
            yield from read_jsonl(f, path, fmt, stats=stats, skip_bad=skip_bad, progress=progress, offset=bom)
