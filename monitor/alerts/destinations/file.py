"""A JSONL file: one JSON object per alert, appended and fsynced; each delivery at most once.

Every line carries a ``delivery_key`` (``<destination>:<outbox id>:<outbox row created_at>``,
so a new archive whose outbox ids start again at 1 does not collide with an old one's lines).
Before appending, the destination reads the keys of the lines it has not seen yet (the last
:data:`TAIL_BYTES` of the file when it first opens it, or after the file was replaced or
truncated; afterwards only what was appended since) and does not write a key that is
already there: it reports the alert sent instead. So an alert written just before the
process died (the line is on disk, the outbox row still says ``sending``) is not written a
second time when it is delivered again after the restart. The check and the append happen
under an exclusive ``flock`` on the file, so two processes (or a retry still racing a timed-out
attempt) cannot both write the same key. A line cut short by a crash is ended with a newline
before the next line is appended (readers skip it as invalid JSON; its alert is written again
in full, since its key could not be read).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from ...archive import utcnow
from ...config import FileDestination as FileConfig
from ...logs import get_logger
from ...timefmt import ts
from ..alert import Alert
from .base import Destination, PermanentDeliveryError, TemporaryDeliveryError

log = get_logger("claimwatch.alerts.file")

TAIL_BYTES = 8 << 20  # read for keys when the file is first opened (a redelivery follows a restart at once)
KEEP_KEYS = 200_000  # keys remembered in memory (the newest)
_KEY_FIELD = b'"delivery_key":'


class FileDestination(Destination):
    type = "file"

    def __init__(self, name: str, cfg: FileConfig) -> None:
        super().__init__(name)
        self.path = Path(cfg.path)
        self._lock = asyncio.Lock()
        self._keys: dict[str, None] = {}  # insertion-ordered: the oldest are dropped first
        self._scanned: tuple[int, int] | None = None  # (inode, bytes read for keys)
        self.skipped = 0  # deliveries found in the file already

    def delivery_key(self, alert: Alert) -> str | None:
        """None for an alert without an outbox row (``claimwatch alerts test``)."""
        if alert.outbox_id is None:
            return None
        return f"{self.name}:{alert.outbox_id}:{alert.created_at or ''}"

    def record(self, alert: Alert) -> dict[str, Any]:
        return {
            "outbox_id": alert.outbox_id,
            "delivery_key": self.delivery_key(alert),
            "destination": self.name,
            "kind": alert.kind,
            "level": alert.level,
            "title": alert.title,
            "subject": alert.subject,
            "written_at": ts(utcnow()),
            **{k: v for k, v in alert.data.items() if k not in ("kind", "level", "title")},
        }

    # -- keys already in the file ---------------------------------------------
    def _remember(self, key: str) -> None:
        self._keys[key] = None
        if len(self._keys) > KEEP_KEYS:
            for old in list(self._keys)[: len(self._keys) - KEEP_KEYS]:
                del self._keys[old]

    def _catch_up(self, fd: int, st: os.stat_result) -> None:
        """Read the keys of the lines appended since the last look (or of the file's tail)."""
        size = st.st_size
        tail = self._scanned is None or self._scanned[0] != st.st_ino or self._scanned[1] > size
        start = max(0, size - TAIL_BYTES) if tail else self._scanned[1]  # type: ignore[index]
        if start < size:
            data = os.pread(fd, size - start, start)
            if tail and start > 0:  # began mid-line: that partial line is not read
                cut = data.find(b"\n")
                data = data[cut + 1:] if cut >= 0 else b""
            for raw in data.split(b"\n"):
                if _KEY_FIELD not in raw:
                    continue
                try:
                    key = json.loads(raw).get("delivery_key")
                except (ValueError, AttributeError):
                    continue  # a line cut short by a crash, or not ours
                if isinstance(key, str):
                    self._remember(key)
        self._scanned = (st.st_ino, size)

    # -- writing --------------------------------------------------------------
    def _append(self, line: str, key: str | None) -> bool:
        """Append ``line`` unless ``key`` is in the file already. True: written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
            st = os.fstat(fd)
            self._catch_up(fd, st)
            if key is not None and key in self._keys:
                return False
            data = line.encode("utf-8")
            if st.st_size > 0 and os.pread(fd, 1, st.st_size - 1) != b"\n":
                data = b"\n" + data  # end a line a crash cut short
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            if key is not None:
                self._remember(key)
            self._scanned = (st.st_ino, st.st_size + len(data))
            return True
        finally:
            os.close(fd)

    async def send(self, alert: Alert) -> None:
        key = self.delivery_key(alert)
        line = json.dumps(self.record(alert), ensure_ascii=False, default=str) + "\n"
        async with self._lock:  # whole lines, never interleaved
            try:
                written = await asyncio.to_thread(self._append, line, key)
            except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
                raise PermanentDeliveryError(f"{self.path}: {exc.strerror or exc}") from None
            except OSError as exc:  # disk full, NFS hiccup...
                raise TemporaryDeliveryError(f"{self.path}: {exc.strerror or exc}") from None
        if not written:
            self.skipped += 1
            log.info("alert already in the file; not written again", destination=self.name, path=str(self.path),
                     delivery_key=key)
