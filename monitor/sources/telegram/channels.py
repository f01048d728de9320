"""Configured channel references -> readable peers, through the archive's ``channels`` cache.

A reference is ``@name``, ``name``, ``https://t.me/name``, ``https://t.me/+invite``,
``https://t.me/joinchat/invite``, ``https://t.me/c/<id>``, a marked id ``-100<id>`` or a
bare channel id. Resolving a username is heavily rate-limited by Telegram, so the first
resolution is cached (id, access hash, username, title, kind) and later starts only
re-read the channel by id and access hash (one cheap ``channels.getChannels`` call that
also checks the hash still works for this account and refreshes title and username).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from telethon import errors, utils
from telethon.tl import types

from .convert import ChannelMeta, entity_username, meta_of
from .errors import ChannelUnavailable, describe, is_auth_error, is_unreadable

if TYPE_CHECKING:  # pragma: no cover
    from ...archive import Archive
    from .gateway import TelegramGateway

from .ids import PLATFORM

_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_TME = re.compile(r"^(?:https?://)?(?:www\.)?(?:t|telegram)\.(?:me|dog)/(.+)$", re.IGNORECASE)
_NUMBER = re.compile(r"^-?\d+$")

# Errors of a cached peer that mean "the cached access hash is not valid here".
_STALE = (errors.ChannelInvalidError, errors.PeerIdInvalidError, errors.ChatIdInvalidError, ValueError, TypeError)

# A call with flood-wait handling: call(description, channel, coroutine factory).
Caller = Callable[[str, str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


class ChannelRefError(ValueError):
    """A configured channel reference that is not a username, t.me link or id."""


@dataclass
class ChannelInfo:
    """A resolved chat: what the source reads and how messages are labelled."""

    ref: str  # as configured
    channel_id: str  # bare id
    peer: Any  # InputPeerChannel / InputPeerChat / InputPeerUser
    username: str | None = None
    title: str | None = None
    kind: str = "channel"  # channel | megagroup | chat | user
    member: bool | None = None  # None: unknown; False: no live updates arrive, gap-fill reads it
    from_cache: bool = False

    @property
    def meta(self) -> ChannelMeta:
        return ChannelMeta(self.channel_id, self.username, self.title, self.kind)

    @property
    def label(self) -> str:
        return f"@{self.username}" if self.username else (self.title or self.ref)


def parse_ref(ref: str) -> str | int:
    """What Telethon's ``get_entity`` should receive for a configured reference: a
    username (no @), an invite link, or a marked peer id. Raises ChannelRefError."""
    s = (ref or "").strip()
    if not s:
        raise ChannelRefError("empty channel reference")
    if _NUMBER.match(s):
        n = int(s)
        if n > 0:  # a bare channel id, as in Telegram Desktop exports
            return utils.get_peer_id(types.PeerChannel(n))
        return n
    if s.startswith("@"):
        name = s[1:]
        if _USERNAME.match(name):
            return name
        raise ChannelRefError(f"{ref!r}: not a valid username")
    m = _TME.match(s)
    if m:
        path = m.group(1).split("?")[0].strip("/")
        parts = path.split("/")
        if parts[0].startswith("+") or parts[0] == "joinchat":
            invite = parts[0][1:] if parts[0].startswith("+") else (parts[1] if len(parts) > 1 else "")
            if not invite:
                raise ChannelRefError(f"{ref!r}: invite link without a hash")
            return f"https://t.me/+{invite}"
        if parts[0] == "c" and len(parts) > 1 and parts[1].isdigit():
            return utils.get_peer_id(types.PeerChannel(int(parts[1])))
        if parts[0] == "s" and len(parts) > 1:
            parts = parts[1:]
        if _USERNAME.match(parts[0]):
            return parts[0]
        raise ChannelRefError(f"{ref!r}: not a t.me channel link")
    if _USERNAME.match(s):
        return s
    raise ChannelRefError(f"{ref!r}: not a @username, t.me link or channel id")


def _cache_keys(ref: str, parsed: str | int) -> list[str]:
    keys = [ref]
    if isinstance(parsed, int):
        keys.append(str(utils.resolve_id(parsed)[0]))
    elif not parsed.startswith("https://"):
        keys.append(parsed)
    return keys


def input_peer(kind: str, channel_id: int, access_hash: int | None) -> Any:
    if kind in ("channel", "megagroup"):
        return types.InputPeerChannel(channel_id, access_hash or 0)
    if kind == "chat":
        return types.InputPeerChat(channel_id)
    if kind == "user":
        return types.InputPeerUser(channel_id, access_hash or 0)
    raise ValueError(f"unknown chat kind {kind!r}")


def info_from_entity(entity: Any, ref: str) -> ChannelInfo:
    """ChannelInfo from a resolved entity; unreadable entities raise ChannelUnavailable."""
    if isinstance(entity, types.ChannelForbidden):
        raise ChannelUnavailable(ref, "this account was banned from the channel, or it is private (ChannelForbidden)")
    if isinstance(entity, types.ChatForbidden):
        raise ChannelUnavailable(ref, "no access to this group (ChatForbidden)")
    if isinstance(entity, types.Chat) and getattr(entity, "deactivated", False):
        raise ChannelUnavailable(ref, "this group was upgraded to a supergroup: configure the new one")
    if not isinstance(entity, (types.Channel, types.Chat, types.User)):
        raise ChannelUnavailable(ref, f"not a channel, group or user ({type(entity).__name__})")
    meta = meta_of(entity)
    member = None
    if isinstance(entity, (types.Channel, types.Chat)):
        member = not bool(getattr(entity, "left", False))
    return ChannelInfo(
        ref=ref,
        channel_id=meta.channel_id,
        peer=utils.get_input_peer(entity, allow_self=True, check_hash=False),
        username=entity_username(entity),
        title=meta.title,
        kind=meta.kind,
        member=member,
    )


class ChannelResolver:
    """Resolves configured references using (and filling) the archive's channel cache."""

    def __init__(self, gateway: "TelegramGateway", archive: "Archive", call: Caller) -> None:
        self.gateway = gateway
        self.archive = archive
        self.call = call
        self.username_lookups = 0  # resolutions that were not served by the cache

    def cached(self, ref: str) -> ChannelInfo | None:
        try:
            parsed = parse_ref(ref)
        except ChannelRefError:
            return None
        for key in _cache_keys(ref, parsed):
            row = self.archive.find_channel(PLATFORM, key)
            if not row or not row.get("kind"):
                continue
            kind = row["kind"]
            if kind in ("channel", "megagroup", "user") and not row.get("access_hash"):
                continue
            cid = int(row["channel_id"])
            ah = int(row["access_hash"]) if row.get("access_hash") else None
            return ChannelInfo(
                ref=ref,
                channel_id=row["channel_id"],
                peer=input_peer(kind, cid, ah),
                username=row.get("username"),
                title=row.get("title"),
                kind=kind,
                from_cache=True,
            )
        return None

    async def resolve(self, ref: str) -> ChannelInfo:
        """Resolve one reference; raises ChannelUnavailable (with a reason) when it cannot be
        read, and lets auth errors through."""
        try:
            parsed = parse_ref(ref)
        except ChannelRefError as exc:
            raise ChannelUnavailable(ref, str(exc)) from None
        cached = self.cached(ref)
        if cached is not None:
            try:
                entity = await self.call("refresh channel", cached.label, lambda: self.gateway.resolve(cached.peer))
                info = info_from_entity(entity, ref)
                info.from_cache = True
                self._store(info)
                return info
            except ChannelUnavailable:
                raise
            except Exception as exc:
                if is_auth_error(exc) or not is_unreadable(exc):
                    raise
                if not isinstance(exc, _STALE):  # private or banned for this account
                    raise ChannelUnavailable(ref, describe(exc)) from None
                # Otherwise the cached access hash does not work for this account (another
                # session?): resolve the reference afresh below.
        try:
            self.username_lookups += 1
            entity = await self.call("resolve channel", ref, lambda: self.gateway.resolve(parsed))
        except Exception as exc:
            if is_auth_error(exc) or not is_unreadable(exc):
                raise
            raise ChannelUnavailable(ref, describe(exc)) from None
        info = info_from_entity(entity, ref)
        self._store(info)
        return info

    def _store(self, info: ChannelInfo) -> None:
        access_hash = getattr(info.peer, "access_hash", None)
        self.archive.upsert_channel(
            PLATFORM,
            info.channel_id,
            username=info.username,
            title=info.title,
            kind=info.kind,
            access_hash=str(access_hash) if access_hash else None,
            resolved_from=info.ref,
        )
