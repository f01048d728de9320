"""The write-ahead log's checkpoints on a thread of their own, off the writer's path.

A checkpoint copies the pages that commits appended to the ``-wal`` file into the database
file, syncing the log before and the database after (``synchronous=NORMAL``). SQLite runs one
on the committing connection itself once the log holds ``wal_autocheckpoint`` pages (1,000 by
default): the writer then waits for the copy and three ``fdatasync``s (~2.7 s of a 1M-message
incident bench, docs/performance.md, "Incidents"). Here the writer's connection checkpoints
only past :data:`WRITER_AUTOCHECKPOINT` pages (a bound, reached only when this thread falls
behind, see below), and after a commit it nudges a :class:`WalCheckpointer`, whose thread runs
``PRAGMA wal_checkpoint(PASSIVE)`` on a connection of its own: at most one every
:data:`INTERVAL` seconds, while the writer goes on (Python's ``sqlite3`` lets go of the GIL
inside SQLite). A passive checkpoint takes no lock a writer or a reader waits for.

Durability is unchanged: what a commit has written is in the log, which the operating system
holds whether or not a checkpoint has copied it (a killed process loses nothing acknowledged);
against a power cut, ``synchronous=NORMAL`` in WAL mode leaves the commits since the log's
last sync exposed, as before, and that sync now comes with every background checkpoint (at
most :data:`INTERVAL` after a commit) instead of once per 1,000 pages.

Why the writer keeps a bound: the log starts again from its beginning only when a write
transaction begins with every committed page already copied. A writer that commits back to
back (the bench, a long import) begins its next transaction before the thread's checkpoint of
the last commit is done, so the log would grow for as long as the writes go on. Past
:data:`WRITER_AUTOCHECKPOINT` pages the writer's own checkpoint copies the few pages the thread
has not (two syncs) and its next transaction starts the log again.

A fork (the import's preparer process) waits until no checkpointer is inside SQLite
(:data:`_IN_SQLITE`): the child would otherwise inherit SQLite's global mutexes mid-use.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from typing import Any

WRITER_AUTOCHECKPOINT = 8192  # pages (64 MB at 8 kB): the writer checkpoints itself past this
INTERVAL = 0.25  # seconds: at most one background checkpoint this often

_IN_SQLITE = threading.Lock()  # held by a checkpointer's thread while it is inside SQLite


def _after_fork_in_child() -> None:
    global _IN_SQLITE
    _IN_SQLITE = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=lambda: _IN_SQLITE.acquire(), after_in_parent=lambda: _IN_SQLITE.release(),
                        after_in_child=_after_fork_in_child)


class WalCheckpointer:
    """Runs passive checkpoints of the archive at ``path`` on its own thread and connection,
    started by the first :meth:`nudge` (an archive that never commits starts none)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.runs = 0  # checkpoints run (tests)
        self.last: tuple[int, int, int] | None = None  # (busy, log pages, pages checkpointed)
        self.error: BaseException | None = None  # the last checkpoint's error, if it failed
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def nudge(self) -> None:
        """A commit happened: checkpoint soon (cheap; called by the writer after each commit)."""
        if self._thread is None:
            self._start()
        self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stopped.is_set():
                thread = threading.Thread(target=self._run, name="archive-wal-checkpoint", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        conn = None
        try:
            with _IN_SQLITE:
                conn = sqlite3.connect(self.path, timeout=0, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA synchronous=NORMAL")  # syncs the log before, the file after
            while True:
                self._wake.wait()
                if self._stopped.is_set():
                    break
                self._wake.clear()
                try:
                    with _IN_SQLITE:
                        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # a full disk, say: the next commit tries again
                    self.error = exc
                else:
                    self.last = tuple(row) if row else None
                    self.runs += 1
                if self._stopped.wait(INTERVAL):
                    break
        except BaseException as exc:  # noqa: BLE001 - the writer's own bound still holds the log
            self.error = exc  # the connection could not be opened: no thread (the bound holds)
        finally:
            if conn is not None:
                with _IN_SQLITE:
                    conn.close()

    def close(self) -> None:
        """Stop the thread (after its checkpoint in progress, if any) and close its connection."""
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def stop_soon(self) -> None:
        """Stop the thread without waiting (the archive was dropped unclosed)."""
        self._stopped.set()
        self._wake.set()


def attach(owner: Any, path: str) -> WalCheckpointer:
    """A checkpointer for ``owner``'s archive at ``path``, stopped when ``owner`` is collected."""
    checkpointer = WalCheckpointer(path)
    weakref.finalize(owner, checkpointer.stop_soon)
    return checkpointer
