"""X (Twitter) collector: account timelines and recent searches through the X API v2 (tweepy).

``build_source(xcfg)`` -> :class:`XSource` (source name ``"x"``); see docs/x.md.
"""

from .source import XSource, build_source

__all__ = ["XSource", "build_source"]
