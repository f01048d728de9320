"""Files: Telegram Desktop export JSON, X API v2 JSONL, canonical JSONL.

    detect.py   detect_format(path), read_messages(path, fmt="auto", ...) -> Iterator[Message]
    jsonl.py    the JSONL reader; parse_jsonl_record(obj) (one decoded line), canonical_line(msg)
    errors.py   InputError (one line naming the file and position), ImportStats (counts, bad records)
    source.py   FilesSource: the daemon's import-once and followed files
    (the Telegram export reader is monitor.sources.telegram.export)

Every reader streams: memory stays bounded whatever the file size. Input problems raise
:class:`InputError` with a one-line message naming the file and the position (JSONL line,
Telegram JSON byte offset / message index). With ``skip_bad`` a bad *record* is counted in
:class:`ImportStats` and skipped; a file that cannot be parsed at all still fails.
The formats are documented in docs/formats.md. The names below are imported on first use
(so importing ``.errors`` from a reader loads nothing else).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "detect_format": ".detect",
    "read_messages": ".detect",
    "InputError": ".errors",
    "ImportStats": ".errors",
    "parse_jsonl_record": ".jsonl",
    "canonical_line": ".jsonl",
    "classify_record": ".jsonl",
    "FilesSource": ".source",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'monitor.sources.files' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
