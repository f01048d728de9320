"""Read, match and prepare a file's rows in a second process while this one writes SQLite.

An import's Python work per message (JSON parsing, conversion to :class:`Message`,
matching, normalising the search text, hashing, JSON of the raw record) is about as long
as SQLite's; in one process the GIL keeps them from overlapping. :func:`prepared_rows`
forks a preparer process that runs :func:`~monitor.sources.files.detect.read_messages` (and the
matcher) and sends ready :mod:`~monitor.archive.rows` tuples in chunks (``marshal``: a
third faster to load than pickle) through a bounded queue, so memory stays bounded and the writer only runs SQL.

Errors keep their meaning: an :class:`~monitor.sources.files.errors.InputError` raised while
reading is raised again here (same message, naming the file and position), so the
caller's transaction rolls the whole file back. ``progress`` and the import statistics
are forwarded to the caller.
"""

from __future__ import annotations

import dataclasses
import marshal
import multiprocessing
import os
import pickle
import queue
import sqlite3
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..archive.rows import RAW_SHA, TEXT, Row, complete_row, prepare_row
from ..model import Hit, MatcherLike, Message
from ..sources.files.detect import read_messages
from ..sources.files.errors import ImportStats

CHUNK_ROWS = 1000  # rows per message on the queue
QUEUE_CHUNKS = 8  # chunks in flight (bounded memory: ~8 x 1000 x 2-3 kB)
MIN_BYTES = 4 * 1024 * 1024  # smaller files are prepared inline (a fork costs ~10 ms)
_POLL_SECONDS = 1.0



def available() -> bool:
    """Can this platform fork a preparer (the matcher is inherited, never pickled)?"""
    return hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods()


def worth_it(path: str | Path) -> bool:
    """Is ``path`` big enough for a preparer process to pay off?"""
    try:
        return os.path.getsize(path) >= MIN_BYTES
    except OSError:
        return False  # the reader reports the problem, with the path


def prepared_rows(
    path: str | Path,
    *,
    fmt: str = "auto",
    skip_bad: bool = False,
    matcher: MatcherLike | None = None,
    stats: ImportStats | None = None,
    progress: Callable[[int], None] | None = None,
    archive_path: str | None = None,
    incidents: Any = None,
) -> Iterator[tuple[Row, Sequence[Hit]]]:
    """Yield (row, hits) for every message of ``path``, prepared in a forked process.

    ``stats`` is filled in when the file has been read completely. Closing the generator
    early (or an exception in the consumer) stops the preparer. ``archive_path`` (the
    archive's file): the preparer reads it (read-only) to leave out the search column and
    record hash of records stored already (a re-import); the writer computes them if it
    needs them after all. ``incidents`` (the archive's incident tracker): the preparer also
    prepares the texts of the messages with hits for assignment (words, places, signatures:
    :func:`~monitor.incidents.assign.prepare_texts`) and the tracker is given them with their
    chunk (:meth:`~monitor.incidents.assign.IncidentTracker.give`), so the writer only applies them.
    """
    ctx = multiprocessing.get_context("fork")
    chunks: Any = ctx.Queue(maxsize=QUEUE_CHUNKS)
    proc = ctx.Process(
        target=_produce, args=(chunks, str(path), fmt, skip_bad, matcher, archive_path, incidents),
        name="claimwatch-prepare",
        daemon=True,
    )
    proc.start()
    try:
        while True:
            try:
                kind, payload, nbytes = chunks.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"{path}: the preparer process stopped (exit code {proc.exitcode})") from None
                continue
            if kind == "rows":
                packed, hits, texts = payload
                rows = marshal.loads(packed)
                if texts is not None:
                    incidents.give(marshal.loads(texts))
                if progress is not None:
                    progress(nbytes)
                if hits:
                    for i, row in enumerate(rows):
                        yield row, hits.get(i, ())
                else:
                    for row in rows:
                        yield row, ()
            elif kind == "done":
                if stats is not None:
                    for name, value in payload.items():
                        setattr(stats, name, value)
                if progress is not None:
                    progress(nbytes)
                return
            else:  # "error": the exception raised while reading, raised here again
                raise payload
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join()
        chunks.close()
        chunks.cancel_join_thread()


class _StoredRecords:
    """Read-only look-ups of stored raw hashes, done for a chunk only when its first
    message is stored already (a fresh import pays one look-up per chunk)."""

    def __init__(self, archive_path: str | None) -> None:
        self.conn: sqlite3.Connection | None = None
        if archive_path and archive_path != ":memory:" and os.path.exists(archive_path):
            try:
                self.conn = sqlite3.connect(f"file:{archive_path}?mode=ro", uri=True)
            except sqlite3.Error:
                self.conn = None
        self.checking = False

    def stored_sha(self, msg: Message) -> str | None:
        assert self.conn is not None
        try:
            found = self.conn.execute(
                "SELECT raw_sha256 FROM messages WHERE platform=? AND channel_id=? AND message_id=?",
                (msg.platform, msg.channel_id, msg.message_id),
            ).fetchone()
        except sqlite3.Error:
            return None
        return found[0] if found else None

    def prepare(self, msg: Message, first_of_chunk: bool) -> Row:
        if self.conn is None:
            return prepare_row(msg)
        if first_of_chunk:
            self.checking = self.stored_sha(msg) is not None
        if not self.checking:
            return prepare_row(msg)
        row = prepare_row(msg, search=False)
        if self.stored_sha(msg) == row[RAW_SHA]:
            return row  # unchanged, as far as committed rows tell: lazy values stay None
        return complete_row(row)


def _incident_texts(incidents: Any, rows: list[Row], hits: dict[int, list[Hit]]) -> bytes | None:
    """The texts of a chunk's messages with hits prepared for incident assignment (marshalled
    (text, prepared) pairs), or None."""
    if incidents is None or not hits:
        return None
    texts = list(dict.fromkeys(rows[i][TEXT] or "" for i in hits))
    return marshal.dumps(list(zip(texts, incidents.prepare_texts(texts))))


def _produce(
    chunks: Any, path: str, fmt: str, skip_bad: bool, matcher: MatcherLike | None, archive_path: str | None = None,
    incidents: Any = None,
) -> None:
    """The preparer process: read, match, prepare; send chunks, then "done" or "error"."""
    # Fresh stream objects: another thread of the parent (a progress display) may have held
    # the inherited ones' locks at the moment of the fork. Logs follow sys.stderr.
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    stats = ImportStats()
    position = [0]

    def seen(nbytes: int) -> None:
        position[0] = nbytes

    try:
        rows: list[Row] = []
        hits: dict[int, list[Hit]] = {}
        match = matcher.match if matcher is not None else None
        stored = _StoredRecords(archive_path)
        prepare = stored.prepare
        for msg in read_messages(path, fmt=fmt, skip_bad=skip_bad, stats=stats, progress=seen):
            if match is not None:
                found = match(msg)
                if found:
                    hits[len(rows)] = found
            rows.append(prepare(msg, not rows))
            if len(rows) == CHUNK_ROWS:
                chunks.put(("rows", (marshal.dumps(rows), hits, _incident_texts(incidents, rows, hits)), position[0]))
                rows, hits = [], {}
        if rows:
            chunks.put(("rows", (marshal.dumps(rows), hits, _incident_texts(incidents, rows, hits)), position[0]))
        chunks.put(("done", dataclasses.asdict(stats), stats.bytes_read or position[0]))
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the writer
        chunks.put(("error", _picklable(exc), position[0]))
    chunks.close()
    chunks.join_thread()


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")
