"""X (Twitter) collector: account timelines and recent searches through the X API v2 (tweepy).

``build_source(xcfg)`` -> :class:`XSource` (source name ``"x"``); see docs/x.md.
:mod:`.convert` (tweets and pages -> Messages) is shared with the file importer, which
does not load the collector: the names below are imported on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["XSource", "build_source"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import source

        return getattr(source, name)
    raise AttributeError(f"module 'monitor.sources.x' has no attribute {name!r}")
