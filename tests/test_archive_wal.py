"""The write-ahead log's checkpoints run on a thread of their own (monitor/archive/wal.py): the
writer's commits nudge it; nothing committed is lost when the process is killed; the log stays
bounded when commits come back to back; the thread stops with the archive; a fork while it
runs leaves the child free to use SQLite."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from monitor.archive import Archive, store, wal

ROOT = Path(__file__).resolve().parents[1]


def wait_until(cond, limit: float = 60.0) -> bool:
    """Poll ``cond`` (a thread's work, not a speed: the limit only keeps a broken run finite)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _fill(archive: Archive, n: int, width: int = 0, start: int = 0) -> None:
    for i in range(start, start + n):
        with archive.transaction() as conn:
            conn.execute("INSERT INTO checkpoints(source, channel, value, updated_at) VALUES (?,?,?,?)",
                         ("test", f"c{i}", "x" * width or str(i), "2024"))


def test_commits_are_checkpointed_by_the_thread_not_the_writer(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path / "a.db")
    try:
        assert archive.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == wal.WRITER_AUTOCHECKPOINT
        assert archive.checkpointer is not None and archive.checkpointer._thread is None  # none before a commit
        _fill(archive, 5)
        ck = archive.checkpointer
        assert wait_until(lambda: ck.last is not None and ck.last[1] > 0 and ck.last[1] == ck.last[2])
        assert ck.error is None
        assert ck._thread is not None and ck._thread.name == "archive-wal-checkpoint"
    finally:
        archive.close()


def test_the_database_file_holds_what_the_thread_checkpointed(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    archive = Archive.open(path)
    try:
        _fill(archive, 20)
        ck = archive.checkpointer
        after = ck.runs + 2  # a checkpoint begun after the last commit has ended

        def done() -> bool:
            ck.nudge()
            return ck.runs >= after and ck.last is not None and ck.last[1] == ck.last[2]

        assert wait_until(done)
        copy = tmp_path / "copy.db"
        copy.write_bytes(path.read_bytes())  # the file without its log
        conn = sqlite3.connect(copy)
        try:
            assert conn.execute("SELECT count(*) FROM checkpoints WHERE source='test'").fetchone()[0] == 20
        finally:
            conn.close()
    finally:
        archive.close()


def test_close_stops_the_thread_and_the_last_connection_removes_the_log(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    archive = Archive.open(path)
    _fill(archive, 3)
    thread = archive.checkpointer._thread
    archive.close()
    assert thread is not None and not thread.is_alive()
    assert not (tmp_path / "a.db-wal").exists()
    again = Archive.open(path)
    try:
        assert again.conn.execute("SELECT count(*) FROM checkpoints WHERE source='test'").fetchone()[0] == 3
    finally:
        again.close()


def test_read_only_and_in_memory_archives_have_no_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Archive.open(path).close()
    ro = Archive.open(path, readonly=True)
    mem = Archive.open(":memory:")
    try:
        assert ro.checkpointer is None and mem.checkpointer is None
        with mem.transaction() as conn:  # commits without one
            conn.execute("INSERT INTO checkpoints(source, channel, value, updated_at) VALUES ('a','b','c','d')")
    finally:
        ro.close()
        mem.close()


def test_a_killed_writer_loses_no_committed_transaction(tmp_path: Path) -> None:
    """Each commit is acknowledged (printed) before the next; the process is then killed with
    SIGKILL, checkpoints in progress or not: every acknowledged row is there."""
    path = tmp_path / "a.db"
    script = (
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from monitor.archive import Archive\n"
        f"a = Archive.open({str(path)!r})\n"
        "for i in range(300):\n"
        "    with a.transaction() as conn:\n"
        "        conn.execute(\"INSERT INTO checkpoints(source, channel, value, updated_at) VALUES (?,?,?,?)\","
        " ('test', f'c{i}', 'v' * 3000, '2024'))\n"
        "    print(i, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    acknowledged = len(proc.stdout.split())
    assert acknowledged == 300
    archive = Archive.open(path)
    try:
        assert archive.conn.execute("SELECT count(*) FROM checkpoints WHERE source='test'").fetchone()[0] == 300
    finally:
        archive.close()


def test_back_to_back_commits_keep_the_log_bounded(tmp_path: Path, monkeypatch) -> None:
    """A writer that begins its next transaction before the thread's checkpoint ends would
    never start the log again: past the bound, its own checkpoint does."""
    monkeypatch.setattr(store, "WRITER_AUTOCHECKPOINT", 64)
    path = tmp_path / "a.db"
    archive = Archive.open(path)
    try:
        _fill(archive, 400, width=20_000)  # ~3 pages a commit, ~1,200 pages in all
        size = (tmp_path / "a.db-wal").stat().st_size
        page = archive.conn.execute("PRAGMA page_size").fetchone()[0]
        assert size < 600 * page, size
    finally:
        archive.close()


def test_a_fork_while_checkpoints_run_leaves_sqlite_usable_in_the_child(tmp_path: Path) -> None:
    """The writer forks right after a commit (as the import forks its preparer), while the
    thread checkpoints that commit: the child opens the archive on a connection of its own."""
    path = tmp_path / "a.db"
    archive = Archive.open(path)
    try:
        for i in range(20):
            _fill(archive, 1, width=30_000, start=i)
            pid = os.fork()
            if pid == 0:  # the child: a new connection must not wait on an inherited mutex
                code = 1
                try:
                    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
                    conn.execute("SELECT count(*) FROM checkpoints").fetchone()
                    conn.close()
                    code = 0
                finally:
                    os._exit(code)
            end = time.monotonic() + 120
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    assert os.waitstatus_to_exitcode(status) == 0
                    break
                if time.monotonic() > end:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise AssertionError("the forked child hung in SQLite")
                time.sleep(0.01)
    finally:
        archive.close()
    assert archive.checkpointer.runs >= 1
