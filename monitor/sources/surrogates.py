"""Lone UTF-16 surrogates: JSON may carry them (``"\\ud83d"`` escapes, e.g. X text cut in the
middle of an emoji) but they cannot be encoded as UTF-8, so SQLite and hashing would fail.

:func:`scrub_message` replaces them with U+FFFD in the Message's text fields and keeps the
original record exact by turning ``raw`` into its JSON text with the surrogates escaped.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..model import Forward, Message, canonical_json

_LONE = re.compile("[\ud800-\udfff]")
# In JSON bytes a surrogate can only come from a \uD800-\uDFFF escape or from CESU-8-style
# encoded surrogates (ED A0-BF xx, which json.loads decodes with "surrogatepass").
_MAYBE_IN_JSON = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def json_may_have_surrogates(line: bytes) -> bool:
    """False when the JSON text ``line`` cannot decode to any surrogate (a cheap byte scan);
    True means it may (valid pairs included): scrub the decoded record."""
    return _MAYBE_IN_JSON.search(line) is not None


def has_lone_surrogates(s: str | None) -> bool:
    return bool(s) and _LONE.search(s) is not None  # type: ignore[arg-type]


def replace_lone_surrogates(s: str) -> str:
    return _LONE.sub("\ufffd", s)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def escape_lone_surrogates(json_text: str) -> str:
    """JSON text with its lone surrogates written as ``\\uXXXX`` escapes (same JSON value)."""
    return _LONE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)


def scrub_message(msg: Message) -> Message:
    """``msg`` with lone surrogates replaced (fields) or escaped (raw); unchanged if none."""
    fields = (msg.text, msg.channel, msg.channel_title, msg.author, msg.reply_to)
    raw_text = msg.raw if isinstance(msg.raw, str) else canonical_json(msg.raw) if msg.raw is not None else ""
    extra_text = canonical_json(msg.extra) if msg.extra else ""
    fwd_text = canonical_json(msg.forwarded_from.to_dict()) if msg.forwarded_from else ""
    if not any(has_lone_surrogates(s) for s in (*fields, raw_text, extra_text, fwd_text)):
        return msg
    changes: dict[str, Any] = {}
    for name in ("text", "channel", "channel_title", "author", "reply_to"):
        value = getattr(msg, name)
        if has_lone_surrogates(value):
            changes[name] = replace_lone_surrogates(value)
    if has_lone_surrogates(extra_text):
        changes["extra"] = _clean(dict(msg.extra))
    if has_lone_surrogates(fwd_text):
        f = msg.forwarded_from
        assert f is not None
        changes["forwarded_from"] = Forward(
            name=_clean(f.name), id=_clean(f.id), message_id=_clean(f.message_id), date=f.date
        )
    if has_lone_surrogates(raw_text):
        changes["raw"] = escape_lone_surrogates(raw_text)
    return dataclasses.replace(msg, **changes)
