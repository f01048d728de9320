"""A JSONL file: one JSON object per alert, appended and flushed to disk."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from ...config import FileDestination as FileConfig
from ..alert import Alert
from ...timefmt import ts
from ...archive import utcnow
from .base import Destination, PermanentDeliveryError, TemporaryDeliveryError


class FileDestination(Destination):
    type = "file"

    def __init__(self, name: str, cfg: FileConfig) -> None:
        super().__init__(name)
        self.path = Path(cfg.path)
        self._lock = asyncio.Lock()

    def record(self, alert: Alert) -> dict[str, Any]:
        return {
            "outbox_id": alert.outbox_id,
            "destination": self.name,
            "kind": alert.kind,
            "level": alert.level,
            "title": alert.title,
            "subject": alert.subject,
            "written_at": ts(utcnow()),
            **{k: v for k, v in alert.data.items() if k not in ("kind", "level", "title")},
        }

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    async def send(self, alert: Alert) -> None:
        line = json.dumps(self.record(alert), ensure_ascii=False, default=str) + "\n"
        async with self._lock:  # whole lines, never interleaved
            try:
                await asyncio.to_thread(self._append, line)
            except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
                raise PermanentDeliveryError(f"{self.path}: {exc.strerror or exc}") from None
            except OSError as exc:  # disk full, NFS hiccup...
                raise TemporaryDeliveryError(f"{self.path}: {exc.strerror or exc}") from None
