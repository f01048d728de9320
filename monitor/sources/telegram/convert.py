"""Telethon TL objects -> :class:`~monitor.model.Message`.

Only the TL fields are read (never the client-bound helpers of Telethon's custom
``Message``), so a message fetched live, from history, or built in a test converts alike.

Identity: ``channel_id`` is the *bare* peer id as a string (:mod:`.ids`, shared with
the Desktop export importer), so an exported and a live-collected channel share one key.

``raw`` is ``tl_message.to_dict()`` made JSON-safe (datetimes as ISO-8601 UTC, bytes as
hex). Entity offsets in ``extra["entities"]`` are Python string offsets into ``text``
(Telegram counts UTF-16 code units; ``raw`` keeps those).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from telethon.tl import types

from ...model import Forward, Media, Message, iso, make_url, to_utc
from .ids import PLATFORM, peer_bare_id, peer_kind


# Channel kinds with public/private post links (t.me/<user>/<id>, t.me/c/<id>/<id>).
LINKABLE_KINDS = ("channel", "megagroup")


@dataclass(frozen=True, slots=True)
class ChannelMeta:
    """What conversion needs to know about the chat a message is in."""

    channel_id: str
    username: str | None = None
    title: str | None = None
    kind: str = "channel"  # channel | megagroup | chat | user


def meta_of(entity: Any) -> ChannelMeta:
    """ChannelMeta from a Telethon entity (Channel, Chat, User) or a ChannelMeta-like object."""
    if isinstance(entity, ChannelMeta):
        return entity
    if isinstance(entity, (types.Channel, types.ChannelForbidden)):
        kind = "megagroup" if getattr(entity, "megagroup", False) else "channel"
        return ChannelMeta(str(entity.id), entity_username(entity), entity.title, kind)
    if isinstance(entity, (types.Chat, types.ChatForbidden)):
        return ChannelMeta(str(entity.id), None, entity.title, "chat")
    if isinstance(entity, types.User):
        title = " ".join(x for x in (entity.first_name, entity.last_name) if x) or None
        return ChannelMeta(str(entity.id), entity_username(entity), title, "user")
    # Duck-typed (e.g. the source's ChannelInfo).
    return ChannelMeta(
        str(getattr(entity, "channel_id")),
        getattr(entity, "username", None),
        getattr(entity, "title", None),
        getattr(entity, "kind", None) or "channel",
    )


def entity_username(entity: Any) -> str | None:
    """The main username of an entity, or its first active collectible username."""
    name = getattr(entity, "username", None)
    if name:
        return name
    for u in getattr(entity, "usernames", None) or ():
        if getattr(u, "active", False) and getattr(u, "username", None):
            return u.username
    return None


# -- raw ----------------------------------------------------------------------------
def json_safe(obj: Any) -> Any:
    """A TL ``to_dict()`` tree with datetimes as ISO-8601 UTC and bytes as hex."""
    if obj is None or type(obj) in _SCALARS:
        return obj
    if isinstance(obj, dict):
        return {k if type(k) is str else str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, datetime):
        return iso(to_utc(obj))
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).hex()
    if isinstance(obj, (str, int, float)):
        return obj
    return str(obj)


_SCALARS = frozenset((str, int, float, bool))


# -- entities -------------------------------------------------------------------------
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def entity_type(entity: Any) -> str:
    """``MessageEntityTextUrl`` -> ``text_url``."""
    name = type(entity).__name__
    for prefix in ("InputMessageEntity", "MessageEntity"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return _snake(name)


def convert_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """Entities with Python offsets, their text and their extra fields (url, user_id...)."""
    if not entities or not text:
        return []
    utf16 = text.encode("utf-16-le", "surrogatepass")
    bmp_only = len(utf16) == 2 * len(text)  # then UTF-16 offsets are Python offsets
    out = []
    for ent in entities:
        off, length = getattr(ent, "offset", None), getattr(ent, "length", None)
        if not isinstance(off, int) or not isinstance(length, int):
            continue
        if bmp_only:
            start, piece = off, text[off : off + length]
        else:
            # "replace": an offset inside a surrogate pair (malformed) must not yield lone surrogates
            start = len(utf16[: 2 * off].decode("utf-16-le", "replace"))
            piece = utf16[2 * off : 2 * (off + length)].decode("utf-16-le", "replace")
        d: dict[str, Any] = {"type": entity_type(ent), "offset": start, "length": len(piece), "text": piece}
        for attr in ("url", "user_id", "language", "document_id"):
            value = getattr(ent, attr, None)
            if value is not None:
                d[attr] = value
        out.append(d)
    return out


def links_of(entities: list[dict[str, Any]], webpage_url: str | None = None) -> list[str]:
    """Every URL of a message: visible links, hidden text links and the preview's URL."""
    seen: dict[str, None] = {}
    for e in entities:
        if e["type"] == "text_url" and e.get("url"):
            seen[e["url"]] = None
        elif e["type"] == "url" and e["text"]:
            seen[e["text"]] = None
    if webpage_url:
        seen[webpage_url] = None
    return list(seen)


# -- media ----------------------------------------------------------------------------
def _photo_size(photo: Any) -> int | None:
    best: tuple[int, int] | None = None  # (pixels, bytes)
    for s in getattr(photo, "sizes", None) or ():
        if isinstance(s, types.PhotoSize):
            n = s.size
        elif isinstance(s, types.PhotoSizeProgressive):
            n = max(s.sizes) if s.sizes else None
        elif isinstance(s, types.PhotoCachedSize):
            n = len(s.bytes)
        else:
            continue
        if n is None:
            continue
        key = (getattr(s, "w", 0) * getattr(s, "h", 0), n)
        if best is None or key > best:
            best = key
    return best[1] if best else None


def document_type(media: Any, document: Any) -> str:
    """video | video_note | animation | voice | audio | sticker | document for a Document
    (the names the Telegram Desktop importer uses too)."""
    attrs = getattr(document, "attributes", None) or ()
    if any(isinstance(a, (types.DocumentAttributeSticker, types.DocumentAttributeCustomEmoji)) for a in attrs):
        return "sticker"
    if any(isinstance(a, types.DocumentAttributeAnimated) for a in attrs):
        return "animation"
    if getattr(media, "voice", False):
        return "voice"
    for a in attrs:
        if isinstance(a, types.DocumentAttributeAudio):
            return "voice" if a.voice else "audio"
    videos = [a for a in attrs if isinstance(a, types.DocumentAttributeVideo)]
    if getattr(media, "round", False) or any(a.round_message for a in videos):
        return "video_note"
    if getattr(media, "video", False) or videos:
        return "video"
    return "document"


def document_file_name(document: Any) -> str | None:
    for a in getattr(document, "attributes", None) or ():
        if isinstance(a, types.DocumentAttributeFilename):
            return a.file_name
    return None


def _text_of(value: Any) -> str | None:
    """Plain text of a str or a TextWithEntities."""
    if value is None or isinstance(value, str):
        return value
    return getattr(value, "text", None)


def media_of(tl_media: Any) -> tuple[tuple[Media, ...], dict[str, Any]]:
    """The Media entries of a message's ``media`` and extra fields (web page, poll...)."""
    extra: dict[str, Any] = {}
    if tl_media is None or isinstance(tl_media, types.MessageMediaEmpty):
        return (), extra
    if isinstance(tl_media, types.MessageMediaPhoto):
        photo = tl_media.photo
        if isinstance(photo, types.Photo):
            return (Media(type="photo", size=_photo_size(photo), mime="image/jpeg"),), extra
        return (Media(type="photo"),), extra
    if isinstance(tl_media, types.MessageMediaDocument):
        doc = tl_media.document
        if isinstance(doc, types.Document):
            kind = document_type(tl_media, doc)
            return (Media(type=kind, file_name=document_file_name(doc), size=doc.size, mime=doc.mime_type),), extra
        return (Media(type="document"),), extra
    if isinstance(tl_media, types.MessageMediaWebPage):
        page = tl_media.webpage
        info = {
            "url": getattr(page, "url", None),
            "display_url": getattr(page, "display_url", None),
            "site_name": getattr(page, "site_name", None),
            "title": getattr(page, "title", None),
            "description": getattr(page, "description", None),
            "author": getattr(page, "author", None),
        }
        info = {k: v for k, v in info.items() if v}
        if info:
            extra["webpage"] = info
        return (Media(type="webpage"),), extra
    if isinstance(tl_media, types.MessageMediaPoll):
        poll = tl_media.poll
        extra["poll"] = {
            "question": _text_of(getattr(poll, "question", None)),
            "answers": [_text_of(getattr(a, "text", None)) for a in getattr(poll, "answers", None) or ()],
        }
        return (Media(type="poll"),), extra
    # geo, venue, contact, dice, game, invoice, story, giveaway, paid_media, unsupported...
    name = type(tl_media).__name__
    if name.startswith("MessageMedia"):
        name = name[len("MessageMedia"):]
    return (Media(type=_snake(name) or "unknown"),), extra


# -- the message ----------------------------------------------------------------------
def _forward(fwd: Any, tl_msg: Any, names: Mapping[str, str] | None) -> tuple[Forward | None, dict[str, Any]]:
    extra: dict[str, Any] = {}
    if fwd is None:
        return None, extra
    src_id = peer_bare_id(fwd.from_id)
    name = fwd.from_name
    if not name:
        # Telethon's custom Message carries the forwarded-from entity when the server sent it.
        forward = getattr(tl_msg, "forward", None)
        origin = getattr(forward, "chat", None) or getattr(forward, "sender", None)
        if isinstance(origin, (types.Channel, types.ChannelForbidden, types.Chat, types.User)):
            name = meta_of(origin).title or entity_username(origin)
    if not name and src_id and names:
        name = names.get(src_id)
    kind = peer_kind(fwd.from_id)
    if kind:
        extra["forward_from_type"] = kind
    if fwd.post_author:
        extra["forward_post_author"] = fwd.post_author
    return (
        Forward(
            name=name,
            id=src_id,
            message_id=str(fwd.channel_post) if fwd.channel_post is not None else None,
            date=to_utc(fwd.date, "fwd_from.date"),
        ),
        extra,
    )


def message_to_message(
    tl_msg: Any,
    channel: Any = None,
    *,
    names: Mapping[str, str] | None = None,
) -> Message:
    """Convert a ``telethon.tl.types.Message``.

    ``channel`` is the chat's Telethon entity or a ChannelMeta-like object (username,
    title, kind), used for the display name and the post URL. ``names`` maps bare peer ids
    to display names, used for forward headers that carry only an id.
    """
    if not isinstance(tl_msg, types.Message):
        raise TypeError(f"not a Telegram message: {type(tl_msg).__name__}")
    peer_id = peer_bare_id(tl_msg.peer_id)
    meta = meta_of(channel) if channel is not None else None
    channel_id = peer_id or (meta.channel_id if meta else None)
    if channel_id is None:
        raise ValueError(f"message {tl_msg.id}: no peer id")
    kind = (meta.kind if meta else None) or peer_kind(tl_msg.peer_id) or "channel"
    username = meta.username if meta else None
    title = meta.title if meta else None
    text = tl_msg.message or ""
    message_id = str(tl_msg.id)

    extra: dict[str, Any] = {}
    entities = convert_entities(text, tl_msg.entities)
    if entities:
        extra["entities"] = entities
    media, media_extra = media_of(tl_msg.media)
    extra.update(media_extra)
    links = links_of(entities, media_extra.get("webpage", {}).get("url"))
    if links:
        extra["links"] = links
    forward, fwd_extra = _forward(tl_msg.fwd_from, tl_msg, names)
    extra.update(fwd_extra)

    reply_to = None
    header = tl_msg.reply_to
    if isinstance(header, types.MessageReplyHeader):
        if header.reply_to_msg_id is not None:
            reply_to = str(header.reply_to_msg_id)
        if header.reply_to_peer_id is not None:
            extra["reply_to_peer"] = peer_bare_id(header.reply_to_peer_id)
        if header.reply_to_top_id is not None:
            extra["reply_to_top_id"] = header.reply_to_top_id
        if header.quote_text:
            extra["quote_text"] = header.quote_text

    for attr in ("views", "forwards", "via_bot_id", "ttl_period"):
        value = getattr(tl_msg, attr, None)
        if value is not None:
            extra[attr] = value
    replies = getattr(tl_msg, "replies", None)
    if replies is not None and getattr(replies, "replies", None) is not None:
        extra["replies"] = replies.replies
    if tl_msg.from_id is not None:
        extra["from_id"] = peer_bare_id(tl_msg.from_id)
        extra["from_type"] = peer_kind(tl_msg.from_id)
    if tl_msg.restriction_reason:
        extra["restriction_reason"] = [
            {"platform": r.platform, "reason": r.reason, "text": r.text} for r in tl_msg.restriction_reason
        ]
    for flag in ("pinned", "noforwards", "edit_hide"):
        if getattr(tl_msg, flag, None):
            extra[flag] = True

    url = make_url(PLATFORM, username, channel_id, message_id) if kind in LINKABLE_KINDS else None
    return Message(
        platform=PLATFORM,
        channel_id=channel_id,
        message_id=message_id,
        date=to_utc(tl_msg.date, "date"),  # type: ignore[arg-type]
        text=text,
        channel=username or title,
        channel_title=title,
        edit_date=to_utc(tl_msg.edit_date, "edit_date"),
        author=tl_msg.post_author or None,
        url=url,
        reply_to=reply_to,
        forwarded_from=forward,
        media=media,
        grouped_id=str(tl_msg.grouped_id) if tl_msg.grouped_id is not None else None,
        extra=extra,
        raw=json_safe(tl_msg.to_dict()),
    )
