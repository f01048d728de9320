"""The console: the plain-text alert on standard output (always available)."""

from __future__ import annotations

import re
import sys
from typing import TextIO

from ..alert import Alert
from .base import Destination

# Terminal control characters in hostile text could move the cursor, recolour or retitle
# the terminal: show them as visible escapes instead (tab and newline stay).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class ConsoleDestination(Destination):
    type = "console"

    def __init__(self, name: str = "console", stream: TextIO | None = None) -> None:
        super().__init__(name)
        self._stream = stream

    async def send(self, alert: Alert) -> None:
        stream = self._stream or sys.stdout
        rule = "─" * 72
        stream.write(f"{rule}\n{visible_controls(alert.subject)}\n\n{visible_controls(alert.text).rstrip()}\n{rule}\n")
        stream.flush()
