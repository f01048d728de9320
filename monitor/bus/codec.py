"""Events on the stream: canonical JSON with an idempotency key, several events an entry.

A collector adds one stream entry per batch of up to :data:`ENTRY_EVENTS` events (what its
sources emitted within a few milliseconds), with the fields

* ``b``: the events, a JSON array of canonical JSON objects (each as :func:`event_json`);
* ``k``: their idempotency keys, a JSON array in the same order;
* ``n``: how many events, ``c``: the collector's name, ``t``: publish time (Unix ms).

An entry written by an earlier version carries one event in ``e`` (and its key in ``k``);
:func:`decode_entry` reads both. The key is ``platform:channel_id:message_id:<text sha256>``
for a message or an edit and ``platform:channel_id:deleted:<ids sha256>`` for a deletion:
publishing the same event twice gives the same key, and the archive stores it once whatever
the key (its store is idempotent), so a redelivered entry is harmless.

Batching is what makes the bus cheap: one ``XADD``, one entry to read and one id to
acknowledge per batch instead of per event (redis-py packs and parses each command in
Python, ~100 us an entry on the collector side before).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import orjson

from ..model import Deletion, Message, MessageError, _json_default, iso, sha256_hex, to_utc
from ..sources.files import fastjson

ENTRY_EVENTS = 100  # events per stream entry at most


class BusRecordError(ValueError):
    """An entry (or one event in it) that is not valid (logged with its id and set aside)."""


def idempotency_key(event: Message | Deletion) -> str:
    if isinstance(event, Deletion):
        ids = ",".join(sorted(event.message_ids))
        return f"{event.platform}:{event.channel_id or ''}:deleted:{sha256_hex(ids)[:16]}"
    return f"{event.platform}:{event.channel_id}:{event.message_id}:{event.text_sha256()[:16]}"


def event_dict(event: Message | Deletion) -> dict[str, Any]:
    if isinstance(event, Deletion):
        return {
            "type": "deletion", "platform": event.platform, "channel_id": event.channel_id,
            "message_ids": list(event.message_ids), "date": iso(event.date),
        }
    return {"type": "message", **event.to_dict(include_raw=True)}


def event_json(event: Message | Deletion) -> str:
    """The event as compact JSON. orjson writes it (~20x faster than the json module) when
    reading the result back gives exactly the same object; otherwise (NaN, which orjson
    writes as null; integers past 64 bits; lone surrogates; tuples, Decimals) the json
    module writes it, as :func:`~monitor.model.canonical_json` but ASCII-only (a lone
    surrogate escaped as ``\\udXXX``: raw it could not be sent as UTF-8). Either way the
    archiver reads back the very record the collector had, so the archive stores the same
    bytes and hashes as the single process would."""
    d = event_dict(event)
    try:
        out = orjson.dumps(d, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
        if orjson.loads(out) == d:
            return out.decode("utf-8")
    except (TypeError, ValueError):  # orjson.JSONEncodeError / JSONDecodeError
        pass
    return json.dumps(d, ensure_ascii=True, separators=(",", ":"), default=_json_default)


def loads(text: str | bytes, *, raw: bytes | None = None) -> Any:
    """JSON -> Python, orjson first (~4x faster); the json module for what orjson refuses
    (NaN, lone surrogate escapes) and for text that may hold integers past 64 bits (orjson
    reads those as floats), so both read the same JSON alike
    (:mod:`monitor.sources.files.fastjson`). ``raw``: the text as UTF-8, when at hand."""
    return fastjson.loads(text, raw=raw)


def encode(event: Message | Deletion, collector: str, now_ms: int) -> dict[str, str]:
    """A one-event entry in the earlier format (still read; kept for tools and tests)."""
    return {"k": idempotency_key(event), "e": event_json(event), "c": collector, "t": str(now_ms)}


def encode_batch(events: Sequence[Message | Deletion], collector: str, now_ms: int) -> list[dict[str, str]]:
    """Entries of up to :data:`ENTRY_EVENTS` events each, in order."""
    out = []
    for start in range(0, len(events), ENTRY_EVENTS):
        part = events[start:start + ENTRY_EVENTS]
        out.append({
            "b": "[" + ",".join(event_json(e) for e in part) + "]",
            "k": orjson.dumps([idempotency_key(e) for e in part]).decode("utf-8"),
            "n": str(len(part)),
            "c": collector,
            "t": str(now_ms),
        })
    return out


def _text(fields: Mapping[Any, Any], name: str) -> str | None:
    value = fields.get(name.encode())
    if value is None:
        value = fields.get(name)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise BusRecordError(f"field '{name}' is not UTF-8") from None
    return value


def event_from_dict(d: Any) -> Message | Deletion:
    """One event from its JSON object; :class:`BusRecordError` when it is not valid."""
    if not isinstance(d, dict):
        raise BusRecordError("event is not a JSON object")
    kind = d.pop("type", None)
    try:
        if kind == "deletion":
            ids = d.get("message_ids")
            if not isinstance(ids, list) or not ids or not d.get("platform"):
                raise BusRecordError("deletion without platform or message_ids")
            return Deletion(
                platform=str(d["platform"]),
                channel_id=None if d.get("channel_id") is None else str(d["channel_id"]),
                message_ids=tuple(str(i) for i in ids),
                date=to_utc(d.get("date")),
            )
        if kind == "message":
            return Message.from_dict(d)
        raise BusRecordError(f"unknown event type {kind!r}")
    except MessageError as exc:
        raise BusRecordError(str(exc)) from None


def decode_entry(fields: Mapping[Any, Any]) -> tuple[list[Message | Deletion | BusRecordError], str | None, int | None]:
    """(events, collector, publish time ms) from a stream entry's fields. An event that is
    not valid is a :class:`BusRecordError` in its place (the others are still good); an
    entry that cannot be read at all raises it."""
    body = _text(fields, "b")
    if body is not None:
        raw = fields.get(b"b")
        try:
            items = loads(body, raw=raw if isinstance(raw, bytes) else None)
        except ValueError as exc:
            raise BusRecordError(f"field 'b' is not JSON: {exc}") from None
        if not isinstance(items, list):
            raise BusRecordError("field 'b' is not a JSON array")
    else:
        body = _text(fields, "e")
        if body is None:
            raise BusRecordError("no field 'b' or 'e'")
        try:
            items = [loads(body)]
        except ValueError as exc:
            raise BusRecordError(f"field 'e' is not JSON: {exc}") from None
    events: list[Message | Deletion | BusRecordError] = []
    for item in items:
        try:
            events.append(event_from_dict(item))
        except BusRecordError as exc:
            events.append(exc)
    _text(fields, "t")  # not UTF-8: the entry cannot be read
    return events, _text(fields, "c"), entry_time(fields)


def entry_time(fields: Mapping[Any, Any]) -> int | None:
    """The entry's publish time (Unix ms; None when missing or not a number)."""
    try:
        t = _text(fields, "t")
        return int(t) if t is not None else None
    except (ValueError, BusRecordError):
        return None


def decode(fields: Mapping[Any, Any]) -> tuple[Message | Deletion, str, str | None, int | None]:
    """(event, idempotency key, collector, publish time ms) from a one-event entry."""
    events, collector, published = decode_entry(fields)
    if len(events) != 1:
        raise BusRecordError(f"{len(events)} events in the entry, not one")
    event = events[0]
    if isinstance(event, BusRecordError):
        raise event
    return event, _text(fields, "k") or idempotency_key(event), collector, published
