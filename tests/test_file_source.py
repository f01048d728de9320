"""The daemon's `files` source on real files: follow (tail -F), partial lines, rotation,
truncation, resume from the committed checkpoint, import-once checkpoint."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from monitor.archive import Archive
from monitor.config import FileSourceConfig
from monitor.model import Message
from monitor.sources.base import Envelope, SourceContext
from monitor.sources.files.source import FilesSource

T0 = datetime(2024, 1, 4, 12, 0, tzinfo=timezone.utc)


def line(mid: int, text: str = "statement") -> str:
    m = Message("x", "42", str(mid), T0 + timedelta(minutes=mid), f"{text} {mid}", channel="ministry", raw={"id": mid})
    return json.dumps(m.to_dict(), ensure_ascii=False) + "\n"


class Collector:
    """A SourceContext whose emit commits each envelope like the pipeline does."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.ids: list[str] = []
        self.ctx = SourceContext(archive, self.emit)

    async def emit(self, env: Envelope) -> None:
        assert isinstance(env.event, Message)
        self.ids.append(env.event.message_id)
        cps = {(env.source, env.checkpoint[0]): env.checkpoint[1]} if env.checkpoint else None
        self.archive.store([(env.event, [])], checkpoints=cps)


async def poll(src: FilesSource, col: Collector) -> None:
    """One poll of a running source (followed files stay open, as in the daemon)."""
    await src.poll(col.ctx)


async def run_once(src: FilesSource, col: Collector) -> None:
    """A whole run of a freshly started source (import-once files, then one poll)."""
    await src.run(col.ctx, once=True)


async def test_follow_reads_complete_lines_and_waits_for_partial(tmp_path: Path, archive: Archive) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(line(1) + line(2) + line(3)[:20], encoding="utf-8")
    src = FilesSource([FileSourceConfig(path=str(f), follow=True)])
    col = Collector(archive)
    await poll(src, col)
    assert col.ids == ["1", "2"]
    with f.open("a", encoding="utf-8") as fh:
        fh.write(line(3)[20:] + line(4))
    await poll(src, col)
    assert col.ids == ["1", "2", "3", "4"]


async def test_resume_from_checkpoint_after_restart(tmp_path: Path, archive: Archive) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(line(1) + line(2), encoding="utf-8")
    col = Collector(archive)
    await run_once(FilesSource([FileSourceConfig(path=str(f), follow=True)]), col)
    with f.open("a", encoding="utf-8") as fh:
        fh.write(line(3))
    # A new source object = a restarted daemon: it starts from the committed checkpoint.
    col2 = Collector(archive)
    await run_once(FilesSource([FileSourceConfig(path=str(f), follow=True)]), col2)
    assert col2.ids == ["3"]
    assert archive.conn.execute("select count(*) from messages").fetchone()[0] == 3


async def test_rotation_and_truncation(tmp_path: Path, archive: Archive) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(line(1) + line(2), encoding="utf-8")
    src = FilesSource([FileSourceConfig(path=str(f), follow=True)])
    col = Collector(archive)
    await poll(src, col)
    # Rotation: the old file gets one more line, then is moved away; a new file appears.
    with f.open("a", encoding="utf-8") as fh:
        fh.write(line(3))
    os.rename(f, tmp_path / "in.jsonl.1")
    f.write_text(line(4), encoding="utf-8")
    await poll(src, col)
    assert col.ids == ["1", "2", "3", "4"]
    # Truncation in place: read from the start again.
    with f.open("r+", encoding="utf-8") as fh:
        fh.truncate(0)
    await poll(src, col)
    f.write_text(line(5), encoding="utf-8")
    await poll(src, col)
    assert col.ids[-1] == "5"


async def test_folder_of_files_and_bad_line_skipped(tmp_path: Path, archive: Archive) -> None:
    d = tmp_path / "incoming"
    d.mkdir()
    (d / "a.jsonl").write_text(line(1) + "{not json\n" + line(2), encoding="utf-8")
    src = FilesSource([FileSourceConfig(path=str(d), follow=True)])
    col = Collector(archive)
    await poll(src, col)
    (d / "b.jsonl").write_text(line(3), encoding="utf-8")
    await poll(src, col)
    assert col.ids == ["1", "2", "3"]
    assert src.stats["bad_lines"] == 1
    assert "a.jsonl:2" in (src.last_error or "")


async def test_follow_loop_stops_on_stop_event(tmp_path: Path, archive: Archive) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text("", encoding="utf-8")
    src = FilesSource([FileSourceConfig(path=str(f), follow=True, poll_interval=0.01)])
    col = Collector(archive)
    task = asyncio.create_task(src.run(col.ctx))
    await asyncio.sleep(0.05)
    with f.open("a", encoding="utf-8") as fh:
        fh.write(line(7))
    for _ in range(100):
        if col.ids:
            break
        await asyncio.sleep(0.01)
    col.ctx.stop.set()
    await asyncio.wait_for(task, 2)
    assert col.ids == ["7"]


async def test_import_once_is_checkpointed(tmp_path: Path, archive: Archive) -> None:
    f = tmp_path / "export.jsonl"
    f.write_text(line(1) + line(2), encoding="utf-8")
    col = Collector(archive)
    await run_once(FilesSource([FileSourceConfig(path=str(f))]), col)
    assert col.ids == ["1", "2"]
    col2 = Collector(archive)
    await run_once(FilesSource([FileSourceConfig(path=str(f))]), col2)
    assert col2.ids == []  # unchanged file: not read again


async def test_import_once_counts_and_reports_bad_records(tmp_path: Path, archive: Archive) -> None:
    # as a followed file's bad lines are: counted, in last_error (status) and warned (it was an info line)
    f = tmp_path / "export.jsonl"
    f.write_text(line(1) + "{not json\n" + line(2), encoding="utf-8")
    src = FilesSource([FileSourceConfig(path=str(f))])
    col = Collector(archive)
    await run_once(src, col)
    assert col.ids == ["1", "2"]
    assert src.stats["bad_lines"] == 1 and src.stats["errors"] == 1
    assert "export.jsonl:2" in (src.last_error or "") and "skipped" in (src.last_error or "")
