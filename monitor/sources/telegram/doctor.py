"""``claimwatch doctor`` for Telegram: credentials, session, account, and every configured
channel resolved and read (newest post), each reported OK or with the reason it fails."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ...config import TelegramConfig
from ...model import iso
from .channels import ChannelResolver
from .errors import ChannelUnavailable, TelegramSetupError, describe, flood_seconds, is_auth_error
from .session import check_session_file

if TYPE_CHECKING:  # pragma: no cover
    from ...archive import Archive
    from .gateway import TelegramGateway

MAX_FLOOD_WAIT = 30  # longer flood waits are reported instead of waited out


@dataclass
class Check:
    name: str  # "credentials", "session", "account" or the configured channel reference
    ok: bool
    detail: str
    channel_id: str | None = None
    title: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _flood_limited(sleep: Callable[[float], Awaitable[Any]]) -> Any:
    async def call(during: str, channel: str, factory: Callable[[], Awaitable[Any]]) -> Any:
        while True:
            try:
                return await factory()
            except Exception as exc:
                seconds = flood_seconds(exc)
                if seconds is None or seconds > MAX_FLOOD_WAIT:
                    raise
                await sleep(seconds)

    return call


async def run_doctor(
    cfg: TelegramConfig,
    archive: "Archive",
    gateway_factory: Callable[[TelegramConfig], "TelegramGateway"],
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> list[Check]:
    checks: list[Check] = []
    if not cfg.api_id or cfg.api_hash is None or not cfg.api_hash.get_secret_value():
        checks.append(Check("credentials", False, "api_id and api_hash are missing: get them at https://my.telegram.org"))
        return checks
    checks.append(Check("credentials", True, f"api_id {cfg.api_id}, api_hash set"))
    if cfg.session_string is not None and cfg.session_string.get_secret_value():
        checks.append(Check("session", True, "session_string (from the config)"))
    else:
        try:
            path = check_session_file(cfg.session)
        except TelegramSetupError as exc:
            checks.append(Check("session", False, str(exc)))
            return checks
        checks.append(Check("session", True, f"{path} (private, mode 0600)"))

    try:
        gateway = gateway_factory(cfg)
        await gateway.connect()
    except Exception as exc:
        checks.append(Check("connection", False, f"cannot connect to Telegram: {describe(exc)}"))
        return checks
    try:
        try:
            authorized = await gateway.is_authorized()
            me = await gateway.get_me() if authorized else None
        except Exception as exc:
            checks.append(Check("account", False, f"{describe(exc)}; run 'claimwatch login telegram'"))
            return checks
        if not authorized:
            checks.append(Check("account", False, "the session is not logged in: run 'claimwatch login telegram'"))
            return checks
        who = f"@{me.username}" if getattr(me, "username", None) else (getattr(me, "first_name", None) or "?")
        checks.append(Check("account", True, f"logged in as {who} (id {getattr(me, 'id', '?')})"))
        if not cfg.channels:
            checks.append(Check("channels", False, "no channels configured (sources.telegram.channels)"))
            return checks
        call = _flood_limited(sleep)
        resolver = ChannelResolver(gateway, archive, call)
        for ref in cfg.channels:
            check = await _check_channel(ref, resolver, gateway, call, cfg)
            checks.append(check)
            if check.name == "account":  # the session died midway
                break
    finally:
        try:
            await gateway.disconnect()
        except Exception:  # pragma: no cover - best effort
            pass
    return checks


async def _check_channel(ref: str, resolver: ChannelResolver, gateway: Any, call: Any, cfg: TelegramConfig) -> Check:
    try:
        info = await resolver.resolve(ref)
    except ChannelUnavailable as exc:
        return Check(ref, False, exc.reason)
    except Exception as exc:
        if is_auth_error(exc):
            return Check("account", False, f"{describe(exc)}; run 'claimwatch login telegram'")
        seconds = flood_seconds(exc)
        if seconds is not None:
            return Check(ref, False, f"Telegram asks to wait {seconds}s before resolving again (FloodWait); try later")
        return Check(ref, False, describe(exc))
    try:
        newest = await call("read", ref, lambda: _newest(gateway, info.peer))
    except Exception as exc:
        if is_auth_error(exc):
            return Check("account", False, f"{describe(exc)}; run 'claimwatch login telegram'")
        return Check(ref, False, f"cannot read history: {describe(exc)}", info.channel_id, info.title)
    if newest is None:
        detail = "readable; no posts yet"
    else:
        detail = f"readable; newest post {newest.id} at {iso(newest.date)}"
    if info.member is False:
        detail += f"; not a member: no live updates, read every {cfg.gapfill_interval:g}s by gap-fill"
    if info.from_cache:
        detail += "; from the channel cache"
    return Check(ref, True, detail, info.channel_id, info.title or info.username)


async def _newest(gateway: Any, peer: Any) -> Any:
    async for m in gateway.iter_messages(peer, limit=1):
        return m
    return None
