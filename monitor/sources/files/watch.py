"""inotify wake-ups for followed files (Linux), so a follower reads a file when it changes
instead of globbing and stat-ing every followed path every ``poll_interval``.

:class:`Watcher` watches the folders that hold followed files (the folder of a file path, a
followed folder, the fixed folder part of a glob) with one inotify descriptor read by the
event loop (``add_reader``: no thread, no timer while nothing changes). It only says *what*
to look at; reading stays the follower's (``FilesSource._poll_file``), so rotation,
truncation, partial lines and checkpoints behave exactly as when polling:

* a write to (or truncation of) a followed file -> that file is read;
* anything else that may change what the paths name (a file created, moved in or out,
  deleted; a watched folder moved or deleted; the event queue overflowing) -> a full
  rescan, as one poll does;
* events for files no entry can name are ignored.

A followed file reached through a symlink is also watched in its real folder (a write to
the target shows there only).

A glob whose folder part has wildcards (``data/*/in.jsonl``, ``**``), a folder that does not
exist (yet), a platform without inotify, or a system out of inotify instances or watches
leave the entry to polling every ``poll_interval`` (the follower rescans at that pace while
any entry is not watched). ``watch: poll`` in the entry forces polling (network file
systems: inotify does not see writes made on other hosts).
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
from pathlib import Path
from typing import Any

from ...logs import get_logger

log = get_logger("claimwatch.files")

try:  # Linux only; elsewhere followed files are polled
    from inotify_simple import INotify
    from inotify_simple import flags as _flags
except (ImportError, OSError):  # pragma: no cover - not Linux
    INotify = None  # type: ignore[assignment,misc]
    _flags = None  # type: ignore[assignment]

if _flags is not None:
    _MODIFY = int(_flags.MODIFY)
    # A followed path may now name another file (or none): rescan.
    _RESCAN = int(_flags.CREATE | _flags.DELETE | _flags.MOVED_FROM | _flags.MOVED_TO
                  | _flags.DELETE_SELF | _flags.MOVE_SELF | _flags.IGNORED | _flags.Q_OVERFLOW)
    _GONE = int(_flags.IGNORED | _flags.DELETE_SELF | _flags.MOVE_SELF)
    MASK = _MODIFY | int(_flags.CREATE | _flags.DELETE | _flags.MOVED_FROM | _flags.MOVED_TO
                         | _flags.DELETE_SELF | _flags.MOVE_SELF)
else:  # pragma: no cover
    _MODIFY = _RESCAN = _GONE = MASK = 0

FOLLOWED_SUFFIXES = (".jsonl", ".json", ".ndjson")  # the files a followed folder holds


def has_magic(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def entry_folder(pattern: str) -> str | None:
    """The folder whose entries decide what ``pattern`` (a file, folder or glob) names, or
    None when no single folder does (wildcards in the folder part, ``**``)."""
    if os.path.isdir(pattern):
        return str(Path(pattern))
    if has_magic(pattern):
        folder = os.path.dirname(pattern)
        if "**" in pattern or has_magic(folder):
            return None
        return str(Path(folder or "."))
    return str(Path(os.path.dirname(pattern) or "."))


def may_name(pattern: str, path: str) -> bool:
    """Could ``pattern`` (as :func:`~.source.expand` reads it) name the file ``path``?
    Errs towards yes (then the caller rescans, which is always right)."""
    if os.path.isdir(pattern):
        return os.path.dirname(path) == str(Path(pattern)) and path.endswith(FOLLOWED_SUFFIXES)
    if has_magic(pattern):
        return fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, str(Path(pattern)))
    return str(Path(path)) == str(Path(pattern))


class Watcher:
    """One inotify descriptor on the event loop; :meth:`wait` returns when something changed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        if INotify is None:  # pragma: no cover - not Linux
            raise OSError("inotify is not available on this platform")
        self.loop = loop
        self._ino = INotify(nonblocking=True)
        self._fd = self._ino.fileno()
        self._dirs: dict[str, int] = {}  # folder -> watch descriptor
        self._wds: dict[int, list[str]] = {}  # watch descriptor -> the folder's names (one inode, one wd)
        self.changed: set[str] = set()  # paths written to since the last take()
        self.rescan = False  # something else changed: rescan every entry
        self.events = 0
        self._waiter: asyncio.Future[None] | None = None
        loop.add_reader(self._fd, self._readable)

    @classmethod
    def start(cls, loop: asyncio.AbstractEventLoop) -> "Watcher | None":
        """A watcher, or None (logged) where inotify cannot be used: then poll."""
        try:
            return cls(loop)
        except OSError as exc:
            log.warning("inotify unavailable; polling followed files", error=str(exc))
            return None

    def watch(self, folder: str) -> bool:
        """Watch ``folder`` (again); False when it cannot be watched (missing, no watches left)."""
        if folder in self._dirs:
            return True
        try:
            wd = self._ino.add_watch(folder, MASK)
        except OSError as exc:
            if os.path.isdir(folder):  # out of watches, permission: worth a word
                log.warning("cannot watch folder; polling it", folder=folder, error=str(exc))
            return False
        self._dirs[folder] = wd
        names = self._wds.setdefault(wd, [])
        if folder not in names:
            names.append(folder)
        return True

    def watched(self, folder: str) -> bool:
        return folder in self._dirs

    def _readable(self) -> None:
        try:
            events = self._ino.read(timeout=0)
        except OSError as exc:  # pragma: no cover - a broken descriptor: rescan (and poll)
            log.warning("inotify read failed", error=str(exc))
            events = []
            self.rescan = True
        for wd, mask, _cookie, name in events:
            self.events += 1
            if mask & _GONE:  # the folder went away: watch it again on a rescan
                for folder in self._wds.pop(wd, ()):
                    if self._dirs.get(folder) == wd:
                        del self._dirs[folder]
            if mask & _RESCAN:
                self.rescan = True
            elif mask & _MODIFY and name:
                for folder in self._wds.get(wd, ()):
                    self.changed.add(name if folder == "." else os.path.join(folder, name))
        if (self.rescan or self.changed) and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def wake(self) -> None:
        """End a :meth:`wait` now (the source is stopping)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Until something changed, :meth:`wake` or ``timeout`` seconds."""
        if self.rescan or self.changed or timeout <= 0:
            return
        fut = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, self.wake)
        try:
            await fut
        finally:
            timer.cancel()
            self._waiter = None

    def take(self) -> tuple[set[str], bool]:
        """(files written to, rescan?) since the last call."""
        changed, rescan = self.changed, self.rescan
        self.changed, self.rescan = set(), False
        return changed, rescan

    def close(self) -> None:
        try:
            self.loop.remove_reader(self._fd)
        except (RuntimeError, ValueError):  # pragma: no cover - loop closed
            pass
        self._ino.close()
        self.wake()


def known(paths: dict[str, Any], changed: set[str]) -> tuple[list[Any], set[str]]:
    """Split written-to paths into the followed ones (their values) and the others."""
    hits, other = [], set()
    for p in changed:
        v = paths.get(p)
        if v is None:
            other.add(p)
        elif v not in hits:
            hits.append(v)
    return hits, other
