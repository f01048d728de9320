"""The Telegram session: a Telethon SQLite session file kept private (mode 0600), or a
StringSession given in the config (for containers).

A session file is as good as the account's password: whoever can read it can read the
account's messages. The source refuses a file that group or others can read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from .errors import TelegramSetupError

EXTENSION = ".session"


def session_file(session: str | os.PathLike[str]) -> Path:
    """The file Telethon uses for ``session`` (it appends ``.session`` when missing)."""
    s = str(session)
    if not s.endswith(EXTENSION):
        s += EXTENSION
    return Path(s)


def check_session_file(path: str | os.PathLike[str]) -> Path:
    """Raise :class:`TelegramSetupError` unless the session file exists and only its owner
    can read or write it."""
    p = session_file(path)
    if not p.exists():
        raise TelegramSetupError(
            f"{p}: Telegram session file not found; run 'claimwatch login telegram' first"
        )
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        raise TelegramSetupError(
            f"{p}: Telegram session file is accessible by other users (mode {mode:04o}); "
            f"it grants full access to the account. Run: chmod 600 {p}"
        )
    return p


def open_private_session(path: str | os.PathLike[str]) -> Any:
    """Open (creating if needed) a Telethon SQLiteSession whose file has mode 0600.

    The file is created under umask 077 (so it is never readable by others, not even
    briefly) in a folder created with mode 0700; an existing file is tightened to 0600.
    SQLite gives its journal files the permissions of the database file.
    """
    from telethon.sessions import SQLiteSession

    p = session_file(path)
    if not p.parent.exists():
        p.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    old = os.umask(0o077)
    try:
        if p.exists():
            os.chmod(p, 0o600)
        session = SQLiteSession(str(p))
        if not p.exists():  # Telethon creates the file lazily on first save
            session.save()
    finally:
        os.umask(old)
    os.chmod(p, 0o600)
    return session


def string_session(value: str | None = None) -> Any:
    """A Telethon StringSession (empty for a new login)."""
    from telethon.sessions import StringSession

    try:
        return StringSession(value or None)
    except ValueError as exc:
        raise TelegramSetupError(f"session_string: not a valid Telethon StringSession ({exc})") from None
