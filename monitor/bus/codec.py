"""Events on the stream: canonical JSON with an idempotency key.

An entry has the fields ``k`` (idempotency key), ``e`` (the event as canonical JSON),
``c`` (the collector's name) and ``t`` (publish time, Unix milliseconds). The key is
``platform:channel_id:message_id:<text sha256>`` for a message or an edit and
``platform:channel_id:deleted:<ids sha256>`` for a deletion: publishing the same event twice
gives the same key, and the archive stores it once whatever the key (its store is
idempotent), so a redelivered entry is harmless.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..model import Deletion, Message, MessageError, canonical_json, iso, sha256_hex, to_utc


class BusRecordError(ValueError):
    """An entry that is not a valid event (logged with its id and set aside)."""


def idempotency_key(event: Message | Deletion) -> str:
    if isinstance(event, Deletion):
        ids = ",".join(sorted(event.message_ids))
        return f"{event.platform}:{event.channel_id or ''}:deleted:{sha256_hex(ids)[:16]}"
    return f"{event.platform}:{event.channel_id}:{event.message_id}:{event.text_sha256()[:16]}"


def event_json(event: Message | Deletion) -> str:
    if isinstance(event, Deletion):
        return canonical_json({
            "type": "deletion", "platform": event.platform, "channel_id": event.channel_id,
            "message_ids": list(event.message_ids), "date": iso(event.date),
        })
    return canonical_json({"type": "message", **event.to_dict(include_raw=True)})


def encode(event: Message | Deletion, collector: str, now_ms: int) -> dict[str, str]:
    return {"k": idempotency_key(event), "e": event_json(event), "c": collector, "t": str(now_ms)}


def _text(fields: Mapping[Any, Any], name: str) -> str | None:
    value = fields.get(name, fields.get(name.encode()))
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise BusRecordError(f"field '{name}' is not UTF-8") from None
    return value


def decode(fields: Mapping[Any, Any]) -> tuple[Message | Deletion, str, str | None, int | None]:
    """(event, idempotency key, collector, publish time ms) from a stream entry's fields."""
    body = _text(fields, "e")
    if body is None:
        raise BusRecordError("no field 'e'")
    try:
        d = json.loads(body)
    except ValueError as exc:
        raise BusRecordError(f"field 'e' is not JSON: {exc}") from None
    if not isinstance(d, dict):
        raise BusRecordError("field 'e' is not a JSON object")
    kind = d.pop("type", None)
    try:
        if kind == "deletion":
            ids = d.get("message_ids")
            if not isinstance(ids, list) or not ids or not d.get("platform"):
                raise BusRecordError("deletion without platform or message_ids")
            event: Message | Deletion = Deletion(
                platform=str(d["platform"]),
                channel_id=None if d.get("channel_id") is None else str(d["channel_id"]),
                message_ids=tuple(str(i) for i in ids),
                date=to_utc(d.get("date")),
            )
        elif kind == "message":
            event = Message.from_dict(d)
        else:
            raise BusRecordError(f"unknown event type {kind!r}")
    except MessageError as exc:
        raise BusRecordError(str(exc)) from None
    t = _text(fields, "t")
    try:
        published = int(t) if t is not None else None
    except ValueError:
        published = None
    return event, _text(fields, "k") or idempotency_key(event), _text(fields, "c"), published
