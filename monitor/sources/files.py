"""File importers: Telegram Desktop export JSON, X API v2 JSONL, canonical JSONL.

Public API::

    detect_format(path) -> "telegram" | "x" | "canonical"
    read_messages(path, fmt="auto", skip_bad=False, stats=None, progress=None,
                  channel_username=None) -> Iterator[Message]
    parse_jsonl_record(obj, fmt="auto") -> list[Message]     # one decoded JSONL line
    canonical_line(msg) -> str                               # one canonical JSONL line

Every reader streams: memory stays bounded whatever the file size. Input problems raise
:class:`InputError` with a one-line message naming the file and the position (JSONL line,
Telegram JSON byte offset / message index). With ``skip_bad`` a bad *record* is counted in
:class:`ImportStats` and skipped; a file that cannot be parsed at all still fails.
The formats are documented in docs/formats.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping

from ..logs import get_logger
from ..model import CANONICAL_SCHEMA, Message, MessageError, canonical_json

FORMATS = ("telegram", "x", "canonical")
MAX_BAD_EXAMPLES = 20
PEEK_BYTES = 64 * 1024
UTF8_BOM = b"\xef\xbb\xbf"

log = get_logger(__name__)


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
    """Classify a JSON object from its top-level keys, reading no further than needed."""
    from .telegram_export import ijson_backend

    ijson = ijson_backend()
    keys: set[str] = set()
    try:
        for n, (prefix, event, value) in enumerate(ijson.parse(f)):
            if prefix == "" and event == "map_key":
                keys.add(value)
                if value in _TELEGRAM_KEYS:
                    return "telegram"
                if value in _X_PAGE_KEYS:
                    return "x"
            elif prefix == "schema" and event == "string":
                if value.startswith("claimwatch.message/"):
                    return "canonical"
            elif prefix == "" and event == "end_map":
                break
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
            from .telegram_export import read_telegram_export

            yield from read_telegram_export(
                f, path, stats=stats, skip_bad=skip_bad, progress=progress,
                channel_username=channel_username, offset=bom,
            )
        else:
            from .jsonl_files import read_jsonl

            yield from read_jsonl(f, path, fmt, stats=stats, skip_bad=skip_bad, progress=progress, offset=bom)


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
    from .x import convert as x_convert
    from .surrogates import scrub_message

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
