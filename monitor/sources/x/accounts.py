"""Configured accounts: parse handles/ids, resolve handles to user ids once, cache them.

``"@IRIMFA_SPOX"`` (or ``"IRIMFA_SPOX"``) is a handle, ``"1234567890"`` a numeric user id.
Resolved accounts are stored in the archive's ``channels`` table (platform ``x``,
``resolved_from`` = the configured text), so later starts make no lookup request.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ...logs import get_logger
from .client import USERS, XApi

if TYPE_CHECKING:  # pragma: no cover
    from ...archive import Archive
    from .poller import Caller

log = get_logger("claimwatch.x")

_HANDLE = re.compile(r"^@?([A-Za-z0-9_]{1,50})$")
_ID = re.compile(r"^[0-9]{1,20}$")
LOOKUP_BATCH = 100  # users per lookup request (API maximum)


@dataclass
class Account:
    ref: str  # as configured
    user_id: str | None = None
    username: str | None = None
    name: str | None = None

    @property
    def is_id(self) -> bool:
        return bool(_ID.match(self.ref))

    @property
    def label(self) -> str:
        return f"@{self.username}" if self.username else self.ref


def parse_accounts(refs: Sequence[str], where: str = "sources.x.accounts") -> list[Account]:
    """Validate the configured accounts; raises ValueError naming the bad entry."""
    out: list[Account] = []
    seen: set[str] = set()
    for i, ref in enumerate(refs):
        text = str(ref).strip()
        if _ID.match(text):
            acc = Account(text, user_id=text)
        elif _HANDLE.match(text):
            acc = Account(text if text.startswith("@") else "@" + text)
        else:
            raise ValueError(f"{where}[{i}]: {ref!r} is not an X handle (@name) or a numeric user id")
        key = acc.ref.lower()
        if key not in seen:
            seen.add(key)
            out.append(acc)
    return out


def _apply_cached(archive: "Archive", acc: Account) -> bool:
    row = archive.find_channel("x", acc.ref)  # by id, resolved_from or username
    if row is None:
        return False
    acc.user_id = str(row["channel_id"])
    acc.username = row.get("username") or acc.username
    acc.name = row.get("title") or acc.name
    return True


async def resolve_accounts(
    accounts: list[Account], archive: "Archive", api: XApi, caller: "Caller"
) -> list[str]:
    """Fill ``user_id``/``username`` from the cache, else with user lookups (cached after).

    Returns problems worth reporting (accounts not found, suspended ...). Raises what
    :meth:`Caller.call` raises (a 403 for the lookup endpoint among them).
    """
    problems: list[str] = []
    to_lookup = [a for a in accounts if not await asyncio.to_thread(_apply_cached, archive, a)]
    handles = [a for a in to_lookup if not a.is_id]
    for start in range(0, len(handles), LOOKUP_BATCH):
        batch = handles[start:start + LOOKUP_BATCH]
        names = [a.ref.lstrip("@") for a in batch]
        page = await caller.call(USERS, lambda names=names: api.users_by_usernames(names))
        by_name = {str(u.get("username", "")).lower(): u for u in page.get("data") or [] if isinstance(u, dict)}
        for acc in batch:
            user = by_name.get(acc.ref.lstrip("@").lower())
            if user is None:
                problems.append(f"X: account {acc.ref} not found: {_lookup_error(page, acc.ref.lstrip('@'))}")
                continue
            await _store(archive, acc, user)
    # ids given in the config: the lookup only fills the cache (username for links)
    ids = [a for a in to_lookup if a.is_id]
    for start in range(0, len(ids), LOOKUP_BATCH):
        batch = ids[start:start + LOOKUP_BATCH]
        page = await caller.call(USERS, lambda b=batch: api.users_by_ids([a.ref for a in b]))
        by_id = {str(u.get("id")): u for u in page.get("data") or [] if isinstance(u, dict)}
        for acc in batch:
            user = by_id.get(acc.ref)
            if user is None:
                problems.append(f"X: account id {acc.ref} not found: {_lookup_error(page, acc.ref)}")
                continue
            await _store(archive, acc, user)
    return problems


def _lookup_error(page: dict[str, Any], value: str) -> str:
    for err in page.get("errors") or []:
        if isinstance(err, dict) and str(err.get("value", err.get("resource_id", ""))).lower() == value.lower():
            return str(err.get("detail") or err.get("title") or "unknown error")
    return "not in the lookup response"


async def _store(archive: "Archive", acc: Account, user: dict[str, Any]) -> None:
    acc.user_id = str(user["id"])
    acc.username = user.get("username")
    acc.name = user.get("name")
    await asyncio.to_thread(
        archive.upsert_channel,
        "x",
        acc.user_id,
        username=acc.username,
        title=acc.name,
        kind="user",
        resolved_from=acc.ref,
    )
    log.info("x: account resolved", account=acc.ref, user_id=acc.user_id, name=acc.name)
