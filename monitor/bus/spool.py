"""The collector's on-disk spool: where events go while Redis cannot be reached.

An append-only file of JSON lines (``spool.jsonl``, one stream entry's fields a line, each
appended batch flushed and fsynced before the sources' checkpoints advance) and the drain
position (``spool.pos``, replaced atomically after the entries up to it were added to the
stream). Entries are drained in the order they were spooled; when all are drained both files
are reset. A crash mid-append leaves a torn last line, cut off on open (its events were not
committed, so the sources read them again). A crash between ``XADD`` and the position update
publishes a few entries twice: the archive's store is idempotent.

The spool is bounded (``max_bytes``): :meth:`append` raises :class:`SpoolFull` instead of
growing past it, and the publisher then holds the sources back until entries drained.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class SpoolFull(Exception):
    """The spool holds ``max_bytes``; the caller waits until it drains."""


class Spool:
    def __init__(self, folder: str | os.PathLike[str], max_bytes: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.data_path = self.folder / "spool.jsonl"
        self.pos_path = self.folder / "spool.pos"
        self._fh = open(self.data_path, "a+b")  # noqa: SIM115 - held while the collector runs
        self._repair()
        self.size = os.fstat(self._fh.fileno()).st_size
        self.pos = self._read_pos()
        if self.pos >= self.size:
            self._reset()

    # -- state ----------------------------------------------------------------
    def _read_pos(self) -> int:
        try:
            return int(self.pos_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _repair(self) -> None:
        """Cut a torn last line (a crash mid-append)."""
        fh = self._fh
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        end = size
        while end > 0:
            start = max(0, end - 65536)
            fh.seek(start)
            chunk = fh.read(end - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                fh.truncate(start + nl + 1)
                break
            end = start
        else:
            fh.truncate(0)
        os.fsync(fh.fileno())

    def _reset(self) -> None:
        self._fh.truncate(0)
        os.fsync(self._fh.fileno())
        self.size = 0
        self._write_pos(0)

    def _write_pos(self, pos: int) -> None:
        tmp = self.pos_path.with_suffix(".pos.tmp")
        with open(tmp, "w") as fh:
            fh.write(str(pos))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.pos_path)
        self.pos = pos

    @property
    def pending_bytes(self) -> int:
        return self.size - self.pos

    def has_data(self) -> bool:
        return self.size > self.pos

    # -- writing --------------------------------------------------------------
    def append(self, entries: list[dict[str, str]]) -> int:
        """Append the entries that fit and fsync them; returns how many (0: SpoolFull).
        An entry larger than the whole spool is taken only into an empty spool."""
        lines = [json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for e in entries]
        room = self.max_bytes - self.size
        n, size = 0, 0
        for line in lines:
            if size + len(line) > room and not (self.size == 0 and n == 0):
                break
            size += len(line)
            n += 1
        if n == 0:
            raise SpoolFull(f"spool {self.data_path} holds {self.size} bytes (max {self.max_bytes})")
        fh = self._fh
        fh.seek(0, os.SEEK_END)
        fh.write(b"".join(lines[:n]))
        fh.flush()
        os.fsync(fh.fileno())
        self.size += size
        return n

    # -- draining -------------------------------------------------------------
    def read(self, limit: int = 500) -> tuple[list[dict[str, str]], int]:
        """Up to ``limit`` entries from the drain position, and the position after them."""
        fh = self._fh
        fh.seek(self.pos)
        out: list[dict[str, str]] = []
        pos = self.pos
        while len(out) < limit and pos < self.size:
            line = fh.readline()
            if not line.endswith(b"\n"):
                break
            pos += len(line)
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # cannot happen for lines this class wrote; never block the drain
            if isinstance(entry, dict):
                out.append({str(k): str(v) for k, v in entry.items()})
        return out, pos

    def advance(self, pos: int) -> None:
        """Entries before ``pos`` are in the stream; reset the files once all are."""
        if pos >= self.size:
            self._reset()
        else:
            self._write_pos(pos)

    def close(self) -> None:
        self._fh.close()
