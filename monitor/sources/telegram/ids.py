"""Telegram peer ids, in one place for the live collector (Telethon TL objects) and the
Desktop export importer (``"channel1234500000"``-style strings).

The archive's ``channel_id`` is the *bare* peer id as a string (``PeerChannel.channel_id``,
``PeerChat.chat_id`` or ``PeerUser.user_id``), never Telethon's marked ``-100…`` form. It
is the ``id`` Telegram Desktop's JSON export gives a channel, and the export's peer ids
(``channel1234500000``, ``user42``) reduce to it, so a channel imported from an export and
the same channel collected live share one key.

No Telethon import here: the file importer uses this module without loading Telethon.
"""

from __future__ import annotations

from typing import Any

PLATFORM = "telegram"
PEER_KINDS = ("channel", "chat", "user")
_TL_KINDS = {
    "PeerChannel": "channel", "InputPeerChannel": "channel",
    "PeerChat": "chat", "InputPeerChat": "chat",
    "PeerUser": "user", "InputPeerUser": "user",
}


def peer_kind(peer: Any) -> str | None:
    """``channel`` / ``chat`` / ``user`` of a TL peer (``PeerChannel``, ``InputPeerChat`` …)
    or of an export peer id (``channel1234500000``); None otherwise."""
    if isinstance(peer, str):
        for prefix in PEER_KINDS:
            if peer.startswith(prefix) and peer[len(prefix):].isdigit():
                return prefix
        return None
    return _TL_KINDS.get(type(peer).__name__)


def peer_bare_id(peer: Any) -> str | None:
    """The bare id as a string: of a Peer* / InputPeer* / entity (None when it has none), or
    of an export peer id (``channel1234500000`` -> ``1234500000``; a plain id stays itself)."""
    if peer is None or peer == "":
        return None
    if isinstance(peer, (str, int)) and not isinstance(peer, bool):
        text = str(peer)
        kind = peer_kind(text)
        return text[len(kind):] if kind else text
    for attr in ("channel_id", "chat_id", "user_id"):
        value = getattr(peer, attr, None)
        if isinstance(value, int):
            return str(value)
    value = getattr(peer, "id", None)
    return str(value) if isinstance(value, int) else None
