"""Rules' ``sources:`` filter: ``platform`` or ``platform:GLOB``.

The glob is matched case-insensitively against the channel's username (with or without
``@``), its id and its title; a message passes when any entry matches.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ..model import PLATFORMS, Message


class SourceError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SourcePattern:
    platform: str
    glob: str | None  # None: the whole platform
    _regex: re.Pattern[str] | None = None

    def matches(self, msg: Message) -> bool:
        if msg.platform != self.platform:
            return False
        if self._regex is None:
            return True
        for value in (msg.channel, msg.channel_id, msg.channel_title):
            if value and self._regex.match(str(value).lstrip("@")):
                return True
        return False

    def __str__(self) -> str:
        return self.platform if self.glob is None else f"{self.platform}:{self.glob}"


def parse_source(text: str) -> SourcePattern:
    """Parse ``telegram``, ``x:@IRIran_Military``, ``telegram:*amaq*``; raises SourceError."""
    raw = text.strip()
    platform, sep, glob = raw.partition(":")
    platform = platform.strip().lower()
    if platform not in PLATFORMS:
        import difflib

        close = difflib.get_close_matches(platform, PLATFORMS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise SourceError(f"unknown platform '{platform}' in source '{text}'{hint}; use {', '.join(PLATFORMS)}")
    if not sep:
        return SourcePattern(platform, None)
    glob = glob.strip().lstrip("@")
    if not glob:
        raise SourceError(f"source '{text}': nothing after ':' (write '{platform}' for the whole platform)")
    regex = re.compile(fnmatch.translate(glob), re.IGNORECASE)
    return SourcePattern(platform, glob, regex)


def sources_match(patterns: tuple[SourcePattern, ...], msg: Message) -> bool:
    """True when there is no filter or any pattern matches."""
    return not patterns or any(p.matches(msg) for p in patterns)
