"""Following files by inotify (monitor/sources/files/watch.py), on real files with real inotify.

The followed entries poll once an hour here (``poll_interval=3600``), so every line read after
the start was read because inotify said the file changed: appends, a partial last line
completed later, rotation and truncation while following, a new file in a followed folder, a
symlinked file written through its target, a restart resuming from the committed checkpoint.
Entries inotify cannot watch (a folder that does not exist yet, wildcards in the folder part,
``watch: poll``) are polled at their ``poll_interval``, as before.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from monitor.archive import Archive
from monitor.config import FileSourceConfig
from monitor.sources.base import Envelope, SourceContext
from monitor.sources.files import watch
from monitor.sources.files.source import FilesSource
from test_file_source import line

pytestmark = pytest.mark.skipif(watch.INotify is None, reason="inotify is Linux only")

HOUR = 3600.0
WAIT = 20.0  # the most a test waits for lines to arrive (they arrive in milliseconds)


class Follower:
    """A running FilesSource whose emit commits each envelope like the pipeline does."""

    def __init__(self, archive: Archive, *entries: FileSourceConfig) -> None:
        self.archive = archive
        self.ids: list[str] = []
        self.ctx = SourceContext(archive, self.emit)
        self.src = FilesSource(list(entries))
        self.task: asyncio.Task[None] | None = None

    async def emit(self, env: Envelope) -> None:
        self.ids.append(env.event.message_id)  # type: ignore[union-attr]
        cps = {(env.source, env.checkpoint[0]): env.checkpoint[1]} if env.checkpoint else None
        self.archive.store([(env.event, [])], checkpoints=cps)  # type: ignore[list-item]
        if env.on_commit is not None:
            env.on_commit()

    async def __aenter__(self) -> "Follower":
        self.task = asyncio.create_task(self.src.run(self.ctx))
        for _ in range(int(WAIT / 0.01)):  # started: the first scan done, the folders watched
            if self.src.follow_mode is not None:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.ctx.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, WAIT)

    async def until(self, n: int) -> list[str]:
        """The ids read once there are ``n`` of them (or when WAIT is over)."""
        for _ in range(int(WAIT / 0.005)):
            if len(self.ids) >= n:
                break
            await asyncio.sleep(0.005)
        return self.ids


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


def entry(path: Path | str, **kw: Any) -> FileSourceConfig:
    return FileSourceConfig(path=str(path), follow=True, **{"poll_interval": HOUR, **kw})


async def test_appends_and_a_partial_line_are_read_when_written(tmp_path: Path, archive: Archive) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(line(1), encoding="utf-8")
    async with Follower(archive, entry(f)) as fol:
        assert fol.src.follow_mode == "inotify"
        assert await fol.until(1) == ["1"]
        append(f, line(2) + line(3)[:25])  # one write: line 2 and the start of line 3
        assert await fol.until(2) == ["1", "2"]
        append(f, line(3)[25:] + line(4))
        assert await fol.until(4) == ["1", "2", "3", "4"]
    assert fol.src.health()["followed"][str(f.resolve())] == f"{os.stat(f).st_ino}:{f.stat().st_size}"


async def test_rotation_while_following(tmp_path: Path, archive: Archive) -> None:
    """Renamed away with a last line, a new file at the path: the old file is finished first,
    then the new one read from its start (as when polling)."""
    f = tmp_path / "in.jsonl"
    f.write_text(line(1), encoding="utf-8")
    async with Follower(archive, entry(f)) as fol:
        await fol.until(1)
        append(f, line(2))
        os.rename(f, tmp_path / "in.jsonl.1")
        f.write_text(line(3), encoding="utf-8")
        assert await fol.until(3) == ["1", "2", "3"]
        append(f, line(4))
        assert await fol.until(4) == ["1", "2", "3", "4"]
        # Rotated the way logrotate's default does: moved away, then the new file created empty.
        os.rename(f, tmp_path / "in.jsonl.2")
        f.touch()
        append(f, line(5))
        assert await fol.until(5) == ["1", "2", "3", "4", "5"]
    assert fol.src.health()["followed"][str(f.resolve())] == f"{os.stat(f).st_ino}:{f.stat().st_size}"
    assert archive.conn.execute("select count(*) from messages").fetchone()[0] == 5


async def test_truncation_while_following(tmp_path: Path, archive: Archive) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(line(1) + line(2), encoding="utf-8")
    async with Follower(archive, entry(f)) as fol:
        await fol.until(2)
        with f.open("r+", encoding="utf-8") as fh:  # copytruncate: emptied in place
            fh.truncate(0)
        await asyncio.sleep(0.1)
        append(f, line(3))
        assert await fol.until(3) == ["1", "2", "3"]
    assert fol.src.health()["followed"][str(f.resolve())] == f"{os.stat(f).st_ino}:{len(line(3).encode())}"


async def test_new_files_in_a_followed_folder_and_glob(tmp_path: Path, archive: Archive) -> None:
    d = tmp_path / "incoming"
    d.mkdir()
    g = tmp_path / "glob"
    g.mkdir()
    async with Follower(archive, entry(d), entry(g / "*.jsonl")) as fol:
        (d / "a.jsonl").write_text(line(1), encoding="utf-8")
        assert await fol.until(1) == ["1"]
        (d / "notes.txt").write_text("not followed\n", encoding="utf-8")  # not a followed name
        (g / "b.jsonl").write_text(line(2)[:10], encoding="utf-8")  # created with a partial line
        append(g / "b.jsonl", line(2)[10:])
        assert await fol.until(2) == ["1", "2"]
        # Moved into the folder (a writer that renames its finished file into place).
        (tmp_path / "tmp.part").write_text(line(3), encoding="utf-8")
        os.rename(tmp_path / "tmp.part", g / "c.jsonl")
        assert await fol.until(3) == ["1", "2", "3"]
    assert fol.src.stats["bad_lines"] == 0


async def test_symlinked_file_written_through_its_target(tmp_path: Path, archive: Archive) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    target = real / "feed.jsonl"
    target.write_text(line(1), encoding="utf-8")
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "feed.jsonl").symlink_to(target)
    async with Follower(archive, entry(watched / "feed.jsonl")) as fol:
        await fol.until(1)
        append(target, line(2))  # the change shows in the target's folder only
        assert await fol.until(2) == ["1", "2"]


async def test_restart_resumes_from_the_committed_checkpoint(tmp_path: Path, archive: Archive) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(line(1), encoding="utf-8")
    async with Follower(archive, entry(f)) as fol:
        append(f, line(2))
        await fol.until(2)
    append(f, line(3) + line(4)[:30])  # written while no follower runs
    async with Follower(archive, entry(f)) as again:
        assert await again.until(1) == ["3"]
        append(f, line(4)[30:])
        assert await again.until(2) == ["3", "4"]
    assert archive.conn.execute("select count(*) from messages").fetchone()[0] == 4


async def test_folder_created_later_is_polled_then_watched(tmp_path: Path, archive: Archive) -> None:
    """A followed folder that does not exist yet cannot be watched: the entry is polled at its
    poll_interval until it exists, then watched (inotify reads the next write)."""
    d = tmp_path / "later"
    async with Follower(archive, entry(d / "*.jsonl", poll_interval=0.05)) as fol:
        assert fol.src.follow_mode == "inotify"
        d.mkdir()
        (d / "a.jsonl").write_text(line(1), encoding="utf-8")
        assert await fol.until(1) == ["1"]
        append(d / "a.jsonl", line(2))
        assert await fol.until(2) == ["1", "2"]
        # The folder removed and made again: watched again once it is back.
        shutil.rmtree(d)
        await asyncio.sleep(0.1)
        d.mkdir()
        (d / "b.jsonl").write_text(line(3), encoding="utf-8")
        assert await fol.until(3) == ["1", "2", "3"]


async def test_wildcard_folders_and_watch_poll_are_polled(tmp_path: Path, archive: Archive) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "in.jsonl").write_text("", encoding="utf-8")
    async with Follower(archive, entry(tmp_path / "*" / "in.jsonl", poll_interval=0.02)) as fol:
        (tmp_path / "a" / "in.jsonl").write_text(line(1), encoding="utf-8")
        assert await fol.until(1) == ["1"]
        append(tmp_path / "b" / "in.jsonl", line(2))
        assert await fol.until(2) == ["1", "2"]
    f = tmp_path / "c.jsonl"
    f.write_text(line(3), encoding="utf-8")
    async with Follower(archive, entry(f, poll_interval=0.02, watch="poll")) as polled:
        assert polled.src.follow_mode == "poll"
        append(f, line(4))
        assert await polled.until(2) == ["3", "4"]


async def test_stop_ends_a_waiting_follower(tmp_path: Path, archive: Archive) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text("", encoding="utf-8")
    fol = Follower(archive, entry(f))
    async with fol:
        pass  # __aexit__ sets stop and waits for the task (it would wait an hour polling)
    assert fol.task is not None and fol.task.done() and fol.task.exception() is None


def test_entry_folders() -> None:
    assert watch.entry_folder("data/in/*.jsonl") == "data/in"
    assert watch.entry_folder("feed.jsonl") == "."
    assert watch.entry_folder("data/*/in.jsonl") is None
    assert watch.entry_folder("data/**/*.jsonl") is None
    assert watch.may_name("data/in/*.jsonl", "data/in/a.jsonl")
    assert not watch.may_name("data/in/*.jsonl", "data/in/a.txt")
    assert watch.may_name("./feed.jsonl", "feed.jsonl")
