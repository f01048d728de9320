"""Streaming export of archived messages: canonical JSONL (re-importable) or flat CSV.

    result = export(archive, "out.jsonl", fmt="jsonl", filters=Filters.build(rule="claims"),
                    manifest="out.manifest.json")

JSONL lines are :meth:`Message.to_dict` (schema ``claimwatch.message/1``) with the raw
record exactly as archived, so importing the file with ``--format canonical`` into the
same archive changes nothing, and into a new one stores the same message rows. The export
reads one snapshot; a manifest records the number of messages, the file's SHA-256 and the
archive's hash-chain head at that snapshot, for ``claimwatch verify --manifest``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..archive import Archive
from ..archive.chain import GENESIS
from ..model import Message, canonical_json
from ..timefmt import iso_now
from .filters import Filters
from .verify import MANIFEST_SCHEMA

FORMATS = ("jsonl", "csv")
CSV_COLUMNS = (
    "key", "platform", "channel_id", "channel", "channel_title", "message_id", "date", "edit_date",
    "author", "lang", "url", "reply_to", "text", "forwarded_from", "media", "grouped_id", "extra",
    "raw_sha256", "first_seen_at", "updated_at", "deleted_at",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(ValueError):
    """Bad export arguments or an unwritable output (the message names it)."""


@dataclass
class ExportResult:
    format: str
    path: str | None  # None for stdout
    count: int = 0
    file_sha256: str = ""
    chain_length: int = 0
    chain_head: str = GENESIS
    filters: dict[str, Any] = field(default_factory=dict)
    manifest_path: str | None = None

    incidents: int = 0
    incident_corrections: list[dict[str, Any]] = field(default_factory=list)

    def manifest(self, archive_path: str) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "exported_at": iso_now(),
            "archive": os.path.abspath(archive_path),
            "format": self.format,
            "filters": self.filters,
            "count": self.count,
            "file": os.path.basename(self.path) if self.path else None,
            "file_sha256": self.file_sha256,
            "chain_length": self.chain_length,
            "chain_head": self.chain_head,
            # incidents are derived from hits; the analysts' corrections are not: they travel here
            "incidents": self.incidents,
            "incident_corrections": self.incident_corrections,
        }


def row_message(archive: Archive, row: dict[str, Any]) -> Message:
    """Message of a messages row whose ``raw`` re-serialises to the archived bytes.

    Raw records are stored as canonical JSON; one that is not (a string kept as received)
    is exported as that string, so a re-import hashes to the same raw_sha256.
    """
    raw = row.get("raw")
    try:
        exact = raw is not None and canonical_json(json.loads(raw)) == raw
    except ValueError:
        exact = False
    if exact:
        return archive.message_from_row(row)
    return dataclasses.replace(archive.message_from_row({**row, "raw": None}), raw=raw)


def csv_row(row: dict[str, Any]) -> list[Any]:
    key = f"{row['platform']}:{row['channel_id']}:{row['message_id']}"
    return [key if c == "key" else row.get(c) for c in CSV_COLUMNS]


def excel_safe(value: Any) -> Any:
    """Neutralise a cell that a spreadsheet would run as a formula (prefix a quote)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def iter_rows(archive: Archive, filters: Filters | None = None) -> Iterator[dict[str, Any]]:
    conds, args = (filters or Filters()).where(archive.conn, "m")
    sql = "SELECT m.* FROM messages m" + (" WHERE " + " AND ".join(conds) if conds else "") + " ORDER BY m.id"
    yield from archive.query(sql, args)


class _HashingWriter(io.RawIOBase):
    """Binary sink that hashes what passes through."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.hash.update(data)
        self.sink.write(data)
        return len(data)


def _check_targets(archive_path: str | Path, out: str | Path | None, manifest: str | Path | None) -> None:
    """Refuse an export that would overwrite the archive it reads (or its WAL files: the
    ``.part`` file is renamed over the target), or whose file and manifest are one file."""
    db = Path(archive_path).resolve()
    protected = {db, *(Path(f"{db}{suffix}") for suffix in ("-wal", "-shm", "-journal"))}
    for option, value in (("--out", out), ("--manifest", manifest)):
        if value is None:
            continue
        target = Path(value).resolve()
        same = target in protected or Path(f"{target}.part") in protected
        if not same and target.exists() and db.exists():
            same = os.path.samefile(target, db)
        if same:
            raise ExportError(f"{option} {value}: is the archive being exported ({archive_path}) or one of its files")
    if out is not None and manifest is not None and Path(out).resolve() == Path(manifest).resolve():
        raise ExportError(f"--out and --manifest name the same file: {out}")


def export(
    archive: Archive,
    out: str | Path,
    *,
    fmt: str = "jsonl",
    filters: Filters | None = None,
    manifest: str | Path | None = None,
    excel: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write the messages that match ``filters`` to ``out`` (``-`` = stdout), oldest row first.

    A file is written to ``out.part`` and renamed when complete, so a failed export leaves
    no truncated file. ``excel`` (CSV only) adds a UTF-8 BOM and neutralises formula-like
    cells; the default keeps every value exactly as archived.
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format: unknown format {fmt!r} (jsonl or csv)")
    if excel and fmt != "csv":
        raise ExportError("--excel only applies to --format csv")
    filters = filters or Filters()
    to_stdout = str(out) == "-"
    _check_targets(archive.path, None if to_stdout else out, manifest)
    result = ExportResult(fmt, None if to_stdout else str(out), filters=filters.as_dict())
    conn = archive.conn
    part = Path(f"{out}.part")
    if not to_stdout:
        target = Path(out)
        if target.is_dir():
            raise ExportError(f"{out}: is a directory")
        try:
            sink: IO[bytes] = part.open("wb")
        except OSError as exc:
            raise ExportError(f"{out}: cannot write ({exc.strerror})") from None
    else:
        sink = sys.stdout.buffer
    manifest_part: Path | None = None
    if manifest is not None:
        # Both files or neither: the manifest's folder must be writable before anything is written.
        manifest_part = Path(f"{manifest}.part")
        try:
            if Path(manifest).is_dir():
                raise IsADirectoryError(21, "is a directory")
            manifest_part.open("wb").close()
        except OSError as exc:
            if not to_stdout:
                sink.close()
                part.unlink(missing_ok=True)
            raise ExportError(f"--manifest {manifest}: cannot write ({exc.strerror})") from None
    own_tx = not conn.in_transaction
    if own_tx:
        conn.execute("BEGIN")  # one snapshot for the rows and the chain head
    ok = False
    try:
        head = conn.execute("SELECT count(*), max(seq) FROM chain").fetchone()
        result.chain_length = head[0]
        if head[0]:
            result.chain_head = conn.execute("SELECT link_sha256 FROM chain ORDER BY seq DESC LIMIT 1").fetchone()[0]
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name='incidents'").fetchone():
            result.incidents = conn.execute(
                "SELECT count(*) FROM incidents WHERE merged_into IS NULL AND messages > 0").fetchone()[0]
            result.incident_corrections = [
                {"action": a, "message_key": k, "other_key": o, "created_at": t}
                for a, k, o, t in conn.execute(
                    "SELECT action, message_key, other_key, created_at FROM incident_corrections ORDER BY id")
            ]
        hasher = _HashingWriter(sink)
        text = io.TextIOWrapper(io.BufferedWriter(hasher, 1 << 16), encoding="utf-8", newline="")
        if fmt == "jsonl":
            for row in iter_rows(archive, filters):
                text.write(canonical_json(row_message(archive, row).to_dict()) + "\n")
                result.count += 1
                if progress is not None and not result.count % 5000:
                    progress(result.count)
        else:
            if excel:
                text.write("\ufeff")
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(CSV_COLUMNS)
            for row in iter_rows(archive, filters):
                values = csv_row(row)
                writer.writerow([excel_safe(v) for v in values] if excel else values)
                result.count += 1
                if progress is not None and not result.count % 5000:
                    progress(result.count)
        text.flush()
        text.detach()
        result.file_sha256 = hasher.hash.hexdigest()
        if manifest_part is not None:
            result.manifest_path = str(manifest)
            manifest_part.write_text(json.dumps(result.manifest(archive.path), indent=2, ensure_ascii=False) + "\n")
        ok = True
    finally:
        if own_tx:
            conn.execute("COMMIT")
        if not to_stdout:
            sink.close()
        if ok:
            if not to_stdout:
                os.replace(part, out)
            if manifest_part is not None:
                os.replace(manifest_part, manifest)  # type: ignore[arg-type]
        else:
            if not to_stdout:
                part.unlink(missing_ok=True)
            if manifest_part is not None:
                manifest_part.unlink(missing_ok=True)
    if progress is not None:
        progress(result.count)
    return result
