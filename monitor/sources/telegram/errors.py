"""How the Telegram source classifies Telethon's errors, and its own error types.

* :class:`TelegramSetupError` (a ``ValueError``): found before connecting (missing
  api_id/api_hash, missing session, session file readable by others). The daemon refuses
  to start with this message.
* :class:`TelegramAuthError` (a :class:`~monitor.sources.base.SourceStopped`): the session
  is not (or no longer) authorised. The source stops; the daemon does not restart it.
* Flood waits are retried after the given seconds; "unreadable channel" errors skip that
  channel with a reason (:func:`describe`).
"""

from __future__ import annotations

from telethon import errors

from ..base import SourceStopped

LOGIN_HINT = "run 'claimwatch login telegram' again"


class TelegramSetupError(ValueError):
    """The Telegram source cannot start: configuration or session file problem."""


class TelegramAuthError(SourceStopped):
    """The Telegram session is not authorised (revoked, expired, unregistered key)."""


class ChannelUnavailable(Exception):
    """A configured channel cannot be resolved or read; ``reason`` says why."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"{ref}: {reason}")
        self.ref = ref
        self.reason = reason


# Errors meaning "this session cannot be used": stop the source with a clear message.
AUTH_ERRORS: tuple[type[BaseException], ...] = (
    errors.AuthKeyError,  # AUTH_KEY_DUPLICATED and friends
    errors.UnauthorizedError,  # AuthKeyUnregistered, SessionRevoked, SessionExpired, UserDeactivated...
    errors.AuthKeyNotFound,
)

# Errors meaning "this channel cannot be resolved/read by this account": skip it.
UNREADABLE_ERRORS: tuple[type[BaseException], ...] = (
    errors.ChannelPrivateError,
    errors.ChannelInvalidError,
    errors.ChannelBannedError,
    errors.ChannelPublicGroupNaError,
    errors.UsernameNotOccupiedError,
    errors.UsernameInvalidError,
    errors.InviteHashExpiredError,
    errors.InviteHashInvalidError,
    errors.PeerIdInvalidError,
    errors.ChatIdInvalidError,
    errors.ChatForbiddenError,
    errors.ForbiddenError,  # 403: no right to read
    ValueError,  # Telethon: "Could not find the input entity", "not part of" (invite links)
    TypeError,  # Telethon: "Cannot cast X to any kind of peer"
)

_REASONS: dict[type[BaseException], str] = {
    errors.ChannelPrivateError: "private channel, or this account was banned from it",
    errors.ChannelInvalidError: "invalid channel (unknown to this account or stale access hash)",
    errors.ChannelBannedError: "the channel is banned",
    errors.ChannelPublicGroupNaError: "channel/supergroup not available",
    errors.UsernameNotOccupiedError: "no channel or user has this username",
    errors.UsernameInvalidError: "invalid username, or nobody uses it",
    errors.InviteHashExpiredError: "the invite link has expired",
    errors.InviteHashInvalidError: "the invite link is invalid",
    errors.PeerIdInvalidError: "invalid peer id",
    errors.ChatIdInvalidError: "invalid chat id",
    errors.ChatForbiddenError: "no access to this chat",
}


def is_auth_error(exc: BaseException) -> bool:
    return isinstance(exc, AUTH_ERRORS)


def is_unreadable(exc: BaseException) -> bool:
    return isinstance(exc, UNREADABLE_ERRORS) and not is_auth_error(exc)


def flood_seconds(exc: BaseException) -> int | None:
    """Seconds to wait for a FloodWait-style error, else None."""
    if isinstance(exc, errors.FloodError):
        seconds = getattr(exc, "seconds", None)
        return int(seconds) if seconds is not None else 1
    return None


def describe(exc: BaseException) -> str:
    """A short human reason for an error, naming Telethon's error class."""
    name = type(exc).__name__
    for cls, reason in _REASONS.items():
        if isinstance(exc, cls):
            return f"{reason} ({name})"
    text = str(exc).split(" (caused by ")[0].strip()
    if isinstance(exc, ValueError) and "not part of" in text:
        return f"not a member: join it with this account first ({text})"
    if isinstance(exc, ValueError) and ("input entity" in text or "find" in text):
        return f"unknown to this account: use the @username or a t.me link once ({text})"
    return f"{text} ({name})" if text else name


def auth_error(exc: BaseException) -> TelegramAuthError:
    return TelegramAuthError(f"Telegram session is not authorised: {describe(exc)}; {LOGIN_HINT}")
