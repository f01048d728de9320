"""Telegram collector (Telethon): live updates, backfill/resume, gap-fill, edits, deletions.

    from monitor.sources.telegram import build_source
    source = build_source(cfg.sources.telegram)    # checks credentials and session, no network
    await source.run(ctx)                          # see TelegramSource

Modules: :mod:`.gateway` (the narrow interface to Telegram), :mod:`.convert` (TL objects
to Message), :mod:`.channels` (reference resolution with the archive's cache),
:mod:`.source` (the Source), :mod:`.media` (optional content-addressed downloads),
:mod:`.session` (private session files), :mod:`.cli` (``login telegram``, ``doctor``).

Telethon is imported on first use, so the CLI starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ...config import TelegramConfig
    from .gateway import TelegramGateway
    from .source import TelegramSource

__all__ = ["build_source", "make_gateway"]


def make_gateway(cfg: "TelegramConfig") -> "TelegramGateway":
    """The real gateway for a config (raises TelegramSetupError without api_id/api_hash)."""
    from .gateway import TelethonGateway

    return TelethonGateway(cfg)


def build_source(cfg: "TelegramConfig") -> "TelegramSource":
    """A TelegramSource for the daemon. Raises TelegramSetupError (a ValueError) for missing
    credentials, an invalid ``backfill``, or a missing / group- or other-readable session
    file, so the daemon refuses to start with a clear message. Does not connect."""
    from ...logs import register_secret
    from .errors import TelegramSetupError
    from .media import MediaStore
    from .session import check_session_file
    from .source import TelegramSource, check_channel_refs, parse_backfill

    if cfg.api_hash is not None:
        register_secret(cfg.api_hash.get_secret_value())
    if cfg.session_string is not None:
        register_secret(cfg.session_string.get_secret_value())
    try:
        parse_backfill(cfg.backfill)
        check_channel_refs(list(cfg.channels))
    except ValueError as exc:
        raise TelegramSetupError(str(exc)) from None
    gateway = make_gateway(cfg)
    if cfg.session_string is None or not cfg.session_string.get_secret_value():
        check_session_file(cfg.session)
    media = MediaStore(cfg.download_media) if cfg.download_media is not None else None
    return TelegramSource(cfg, gateway, media=media)


def __getattr__(name: str) -> Any:  # lazy re-exports: TelegramSource, TelethonGateway, errors
    if name in ("TelegramSource", "parse_backfill"):
        from . import source

        return getattr(source, name)
    if name in ("TelegramGateway", "TelethonGateway"):
        from . import gateway

        return getattr(gateway, name)
    if name in ("TelegramSetupError", "TelegramAuthError", "ChannelUnavailable"):
        from . import errors

        return getattr(errors, name)
    raise AttributeError(name)
