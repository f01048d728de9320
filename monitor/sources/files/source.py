"""The ``files`` source: import files once, or follow JSONL files like ``tail -F``.

Configured under ``sources.files``::

    - {path: samples/telegram/result.json}           # imported once (checkpointed)
    - {path: "data/incoming/*.jsonl", follow: true}  # tailed live (a file, glob or folder)

*Import once*: the file is read with the streaming importers; its checkpoint (size and
mtime) is committed with the last message, so an unchanged file is not read again and a
crash midway simply re-reads it (the archive is idempotent).

*Follow*: each matching file is read line by line from its checkpoint (``inode:offset``
of the end of the last complete line). A partial last line waits for its newline;
rotation (the path now names a new file) finishes the old file then starts the new one
at offset 0; truncation (size below the offset) restarts at 0. Each JSONL line may be a
canonical record, an X tweet or an X API v2 page (see :mod:`monitor.sources.files.detect`).
A malformed line is logged with its file and line number and skipped.

The read position runs ahead of the archive only in memory: the checkpoint committed with a
line's message is the one stored, the pipeline retries a batch that failed to commit until
it commits, and a restart reads on from the committed checkpoint, so a line whose message
was not stored is never passed. ``health()`` reports the committed positions (``on_commit``).
"""

from __future__ import annotations

import asyncio
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import FileSourceConfig
from ...logs import get_logger
from ...model import Message, MessageError
from ..base import Envelope, Source, SourceContext
from ..depth import depth_message, line_too_deep
from ..surrogates import json_may_have_surrogates
from .detect import read_messages
from .errors import ImportStats, InputError
from .fastjson import loads_checked
from .jsonl import parse_jsonl_record
from .watch import Watcher, entry_folder, known, may_name

log = get_logger("claimwatch.files")

SOURCE = "files"
READ_CHUNK = 1 << 20
RESCAN_WATCHED = 2.0  # seconds between full rescans when inotify watches every entry (a safety net)


def expand(pattern: str) -> list[Path]:
    """Files named by a path, a glob or a folder (``*.jsonl``/``*.json`` inside it), sorted."""
    p = Path(pattern)
    if p.is_dir():
        return sorted(x for x in p.iterdir() if x.is_file() and x.suffix in (".jsonl", ".json", ".ndjson"))
    if any(ch in pattern for ch in "*?["):
        return sorted(Path(x) for x in glob.glob(pattern, recursive=True) if Path(x).is_file())
    return [p] if p.is_file() else []


@dataclass
class _Followed:
    """Read position in one followed file."""

    path: Path
    inode: int = 0
    offset: int = 0
    line_no: int = 0  # lines read since offset 0 in this process (for error messages)
    committed: str | None = None  # the checkpoint stored in the archive (set by on_commit)
    fh: Any = None
    partial: bytes = b""

    def checkpoint(self) -> str:
        return f"{self.inode}:{self.offset}"


def _committer(state: _Followed, value: str) -> Any:
    def on_commit() -> None:
        state.committed = value

    return on_commit


@dataclass
class FilesSource(Source):
    """Import-once and followed files (``sources.files`` in the config)."""

    entries: list[FileSourceConfig]
    name: str = SOURCE
    stats: dict[str, int] = field(default_factory=lambda: {"messages": 0, "bad_lines": 0, "files": 0, "errors": 0})
    _followed: dict[str, _Followed] = field(default_factory=dict)
    last_error: str | None = None
    follow_mode: str | None = None  # "inotify" or "poll" while following
    _paths: dict[str, tuple[Path, str]] = field(default_factory=dict)  # followed path (and real path) -> (path, format)
    _keys: dict[str, str] = field(default_factory=dict)  # followed path -> its resolved path, this scan
    _unread: list[str] = field(default_factory=list)  # files read once that are missing or failed (not an export, cut off)

    # -- Source interface -----------------------------------------------------
    async def run(self, ctx: SourceContext, *, once: bool = False) -> None:
        for i, entry in enumerate(self.entries):
            if not entry.follow:
                for path in expand(entry.path) or [Path(entry.path)]:
                    await self._import_once(ctx, path, entry.format, f"sources.files[{i}]")
        follow = [e for e in self.entries if e.follow]
        if not follow:
            return
        if once:
            await self.poll(ctx)
            await self.close()
            return
        interval = min(e.poll_interval for e in follow)
        loop = asyncio.get_running_loop()
        watcher = Watcher.start(loop) if any(e.watch != "poll" for e in follow) else None
        self.follow_mode = "inotify" if watcher is not None else "poll"
        stopper = asyncio.create_task(self._wake_on_stop(ctx, watcher)) if watcher is not None else None
        try:
            while True:
                complete = self._watch_entries(watcher, follow)
                await self.poll(ctx)
                complete = self._watch_files(watcher) and complete
                if ctx.stop.is_set():
                    break
                # Every entry watched: rescan seldom (a safety net); else poll at the entries' pace.
                period = max(interval, RESCAN_WATCHED) if complete else interval
                await self._wait_for_changes(ctx, watcher, follow, period)
                if ctx.stop.is_set():
                    break
        finally:
            if stopper is not None:
                stopper.cancel()
            if watcher is not None:
                watcher.close()
        await self.close()

    async def poll(self, ctx: SourceContext) -> None:
        """Read what is new in every followed file (files stay open between polls)."""
        self._paths = {}
        self._keys = {}
        for entry in self.entries:
            if entry.follow:
                for path in expand(entry.path):
                    self._paths.setdefault(str(path), (path, entry.format))
                    await self._poll_file(ctx, path, entry.format)

    # -- follow by inotify -----------------------------------------------------
    @staticmethod
    async def _wake_on_stop(ctx: SourceContext, watcher: Watcher) -> None:
        await ctx.stop.wait()
        watcher.wake()

    def _watch_entries(self, watcher: Watcher | None, follow: list[FileSourceConfig]) -> bool:
        """Watch each entry's folder; True when every entry's folder is watched."""
        if watcher is None:
            return False
        complete = True
        for entry in follow:
            folder = entry_folder(entry.path) if entry.watch != "poll" else None
            if folder is None or not watcher.watch(folder):
                complete = False
        return complete

    def _watch_files(self, watcher: Watcher | None) -> bool:
        """Watch the real folder of each followed file reached through a symlink (and map
        its real path to it); True when all are watched."""
        if watcher is None:
            return False
        complete = True
        for name, (path, fmt) in list(self._paths.items()):
            key = self._keys.get(name)
            if key is not None and key != name:
                self._paths.setdefault(key, (path, fmt))
                if not watcher.watch(os.path.dirname(key)):
                    complete = False
        return complete

    async def _wait_for_changes(self, ctx: SourceContext, watcher: Watcher | None,
                                follow: list[FileSourceConfig], period: float) -> None:
        """Read the followed files written to until ``period`` is over, the stop, or a
        change that needs a rescan (a file created, moved, deleted; see :mod:`.watch`)."""
        if watcher is None:
            try:
                await asyncio.wait_for(ctx.stop.wait(), timeout=period)
            except asyncio.TimeoutError:
                pass
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + period
        while not ctx.stop.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await watcher.wait(remaining)
            changed, rescan = watcher.take()
            if rescan:
                return
            files, others = known(self._paths, changed)
            if others and any(may_name(e.path, p) for p in others for e in follow if e.watch != "poll"):
                return  # a file the entries may name but not followed yet
            for path, fmt in files:
                await self._poll_file(ctx, path, fmt)

    def input_problems(self) -> list[str]:
        return list(self._unread)

    def health(self) -> dict[str, Any]:
        return {
            **self.stats,
            # Only what the archive holds: the read position may be ahead while a batch waits.
            "followed": {k: f.committed for k, f in self._followed.items() if f.committed},
            "last_error": self.last_error,
            **({"follow": self.follow_mode} if self.follow_mode else {}),
        }

    async def close(self) -> None:
        for f in self._followed.values():
            if f.fh is not None:
                f.fh.close()
                f.fh = None

    # -- import once ----------------------------------------------------------
    async def _import_once(self, ctx: SourceContext, path: Path, fmt: str, entry: str = "sources.files") -> None:
        key = str(path.resolve())
        try:
            st = path.stat()
        except FileNotFoundError:
            what = "no file matches" if any(ch in str(path) for ch in "*?[") else "no such file"
            self._error(f"{path}: {what}")
            self._unread.append(f"{entry}: {path}: {what}")
            return
        stamp = f"done:{st.st_size}:{st.st_mtime_ns}"
        if ctx.checkpoint(SOURCE, key) == stamp:
            log.debug("file already imported", path=str(path))
            return
        log.info("importing file", path=str(path))
        previous: Message | None = None
        stats = ImportStats()
        try:
            # The reader is synchronous and streaming; yield to the loop between messages.
            for n, msg in enumerate(read_messages(path, fmt=fmt, skip_bad=True, stats=stats)):
                if previous is not None:
                    await ctx.emit(Envelope(previous, SOURCE))
                previous = msg
                if n % 256 == 0:
                    await asyncio.sleep(0)
        except InputError as exc:
            self._error(str(exc))
            self._unread.append(f"{entry}: {exc}")
            return
        finally:
            self._skipped(path, stats)
        if previous is not None:
            await ctx.emit(Envelope(previous, SOURCE, checkpoint=(key, stamp)))
        self.stats["files"] += 1

    # -- follow ---------------------------------------------------------------
    async def _poll_file(self, ctx: SourceContext, path: Path, fmt: str) -> None:
        name = str(path)
        key = self._keys.get(name)
        if key is None:  # resolved once a scan (each full poll starts afresh)
            key = self._keys[name] = str(path.resolve())
        state = self._followed.get(key)
        if state is None:
            state = _Followed(path)
            self._followed[key] = state
            saved = ctx.checkpoint(SOURCE, key)
            if saved and ":" in saved and not saved.startswith("done:"):
                ino, off = saved.split(":", 1)
                state.inode, state.offset = int(ino), int(off)
                state.committed = saved
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return  # rotated away; the new file appears on a later poll
        if state.fh is None:
            self._open(state, st)
        elif st.st_ino != state.inode:
            # Rotated: drain the old file, then start the new one from the beginning.
            await self._read_available(ctx, state, key, fmt)
            state.fh.close()
            state.fh, state.inode, state.offset, state.partial, state.line_no = None, st.st_ino, 0, b"", 0
            log.info("followed file rotated", path=str(path))
            self._open(state, st)
        elif st.st_size < state.offset:
            log.warning("followed file truncated; reading from the start", path=str(path))
            state.offset, state.partial, state.line_no = 0, b"", 0
            state.fh.seek(0)
        await self._read_available(ctx, state, key, fmt)

    def _open(self, state: _Followed, st: os.stat_result) -> None:
        state.fh = open(state.path, "rb")  # noqa: SIM115 - kept open while following
        if state.inode != st.st_ino or st.st_size < state.offset:
            state.inode, state.offset = st.st_ino, 0
        state.fh.seek(state.offset)
        state.partial = b""

    async def _read_available(self, ctx: SourceContext, state: _Followed, key: str, fmt: str) -> None:
        while True:
            chunk = state.fh.read(READ_CHUNK)
            if not chunk:
                return
            data = state.partial + chunk
            lines = data.split(b"\n")
            state.partial = lines.pop()
            pos = state.offset
            for raw_line in lines:
                pos += len(raw_line) + 1
                state.line_no += 1
                messages = self._parse_line(state, raw_line, fmt)
                if not messages:
                    state.offset = pos
                    continue
                for i, msg in enumerate(messages):
                    state.offset = pos
                    if i == len(messages) - 1:
                        value = state.checkpoint()
                        await ctx.emit(Envelope(msg, SOURCE, checkpoint=(key, value), on_commit=_committer(state, value)))
                    else:
                        await ctx.emit(Envelope(msg, SOURCE))
                    self.stats["messages"] += 1

    def _parse_line(self, state: _Followed, raw_line: bytes, fmt: str) -> list[Message]:

        line = raw_line.strip()
        if not line:
            return []
        where = f"{state.path}:{state.line_no}"
        try:
            if line_too_deep(line):
                raise InputError(depth_message())
            obj, by_orjson = loads_checked(line)
            # orjson refuses lone surrogates: a record it read needs no scrub.
            return parse_jsonl_record(obj, fmt, scrub=not by_orjson and json_may_have_surrogates(line))
        except (ValueError, MessageError, InputError, KeyError, TypeError, RecursionError) as exc:
            self.stats["bad_lines"] += 1
            self._error(f"{where}: skipped malformed line: {exc}")
            return []

    def _skipped(self, path: Path, stats: ImportStats) -> None:
        """Malformed records skipped in a file read once: warned and counted like a followed
        file's malformed lines (they were an info line only: unseen at log level WARNING)."""
        if not stats.bad:
            return
        self.stats["bad_lines"] += stats.bad
        for example in stats.bad_examples:
            self._error(f"{example}: skipped malformed record")
        if stats.bad > len(stats.bad_examples):
            self._error(f"{path}: {stats.bad} malformed record(s) skipped in all")

    def _error(self, message: str) -> None:
        self.stats["errors"] += 1
        self.last_error = message
        log.warning(message)
