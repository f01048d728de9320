"""Several Telegram accounts in one config: ``sources.telegram.accounts``.

    sources:
      telegram:
        api_id: ${TG_API_ID}            # shared by the accounts unless one sets its own
        api_hash: ${TG_API_HASH}
        channels: ["@a", "@b", ...]     # spread over the accounts (the fewest first)
        accounts:
          - {name: desk1, session: data/tg-desk1.session, channels: ["@only_desk1"]}
          - {name: desk2, session_string: "${TG_SESSION_DESK2}"}

Without ``accounts`` the single-account keys are the one account (source ``telegram``, as
before). With them each account is its own source (``telegram:<name>``) with its own
client, session and flood limits: the daemon runs and restarts each separately, so one
account's FloodWait or ban (a revoked session stops that source) does not stop the others.
An account holds at most ``channels_per_account`` channels (500 by default, Telegram's limit
being about 500): more is a setup error, and an account at 90 % of it is warned about.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...logs import get_logger
from .errors import TelegramSetupError

if TYPE_CHECKING:  # pragma: no cover
    from ...config import TelegramConfig
    from .source import TelegramSource

log = get_logger("claimwatch.telegram.accounts")

WARN_AT = 0.9


def account_configs(tg: "TelegramConfig") -> dict[str | None, "TelegramConfig"]:
    """Account name -> a single-account config (``None``: no ``accounts``, the keys as they are)."""
    if not tg.accounts:
        return {None: tg}
    limit = tg.channels_per_account
    names = [a.name for a in tg.accounts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TelegramSetupError(f"sources.telegram.accounts: name '{dupes[0]}' used twice")
    assigned: dict[str, list[str]] = {a.name: list(a.channels) for a in tg.accounts}
    seen = {ref.lower() for refs in assigned.values() for ref in refs}
    for a in tg.accounts:
        if len(assigned[a.name]) > limit:
            raise TelegramSetupError(
                f"sources.telegram.accounts[{a.name}]: {len(assigned[a.name])} channels, more than"
                f" channels_per_account ({limit})"
            )
    for ref in tg.channels:  # spread: the account with the fewest channels first
        if ref.lower() in seen:
            continue
        seen.add(ref.lower())
        name = min(assigned, key=lambda n: len(assigned[n]))
        if len(assigned[name]) >= limit:
            total = len(seen)
            raise TelegramSetupError(
                f"sources.telegram.channels: {total} channels do not fit {len(assigned)} account(s) x"
                f" {limit} (channels_per_account); add an account"
            )
        assigned[name].append(ref)
    out: dict[str | None, TelegramConfig] = {}
    base_dir = Path(tg.session).parent
    for a in tg.accounts:
        n = len(assigned[a.name])
        if n >= WARN_AT * limit:
            log.warning("telegram account near its channel limit", account=a.name, channels=n, limit=limit)
        out[a.name] = tg.model_copy(update={
            "api_id": a.api_id if a.api_id is not None else tg.api_id,
            "api_hash": a.api_hash if a.api_hash is not None else tg.api_hash,
            "session": a.session or str(base_dir / f"telegram-{a.name}.session"),
            "session_string": a.session_string,
            "channels": assigned[a.name],
            "accounts": [],
        })
    return out


def account_config(tg: "TelegramConfig", name: str | None) -> "TelegramConfig":
    """One account's config (``--account NAME``); without ``accounts`` only no name works."""
    configs = account_configs(tg)
    if name is None:
        if None in configs:
            return configs[None]
        raise TelegramSetupError(
            "sources.telegram has several accounts: choose one with --account ("
            + ", ".join(str(n) for n in configs) + ")"
        )
    if name not in configs:
        known = ", ".join(str(n) for n in configs if n is not None) or "none: sources.telegram.accounts is empty"
        raise TelegramSetupError(f"no Telegram account '{name}' in the config (accounts: {known})")
    return configs[name]


def build_sources(tg: "TelegramConfig") -> dict[str, "TelegramSource"]:
    """One source per account: ``telegram`` (single account) or ``telegram:<name>``."""
    from . import build_source

    return {("telegram" if name is None else f"telegram:{name}"): build_source(cfg)
            for name, cfg in account_configs(tg).items()}
