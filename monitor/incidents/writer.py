"""The incident rows' SQL writes of a batch on a thread of their own (docs/incidents.md, "How
it is kept fast").

:meth:`IncidentTracker.flush <monitor.incidents.assign.IncidentTracker.flush>` assigns a big
batch in chunks; the rows each chunk adds (``family_texts``, ``family_bands_new``,
``incident_messages``) are handed to a :class:`RowWriter`, whose thread executes them while the
tracker assigns the next chunk, and the batch's changed rows (families, facets, incidents) while
it evicts. ``sqlite3`` releases the GIL while a statement runs, so on two cores the B-tree work
overlaps the assignment's Python. The writer uses the archive's own connection, inside the
archive's transaction: nothing is committed apart from the hits; the flush waits for every
job before it returns (the archive then commits), so no thread outlives a flush.

Rules the tracker keeps:

* jobs run one at a time, in the order submitted;
* a job that fails stops the writer: the jobs after it are dropped (never run), and
  :meth:`RowWriter.wait` raises that job's exception in the flushing thread (the archive rolls
  the transaction back);
* when the flushing thread fails itself, :meth:`RowWriter.abort` drops the jobs not started,
  stops the running one at its next statement and waits for it before the archive rolls back
  (a statement run after the ``ROLLBACK`` would run outside any transaction);
* :attr:`RowWriter.lock` is held around each statement of a job and around each read of the
  assigning thread (:class:`LockedReads`): SQLite serialises the two threads' statements on the
  connection anyway, but the error code of a failed statement is read from the connection after
  it, and another thread's statement in between would replace it (a disk-full error reported
  as something else).
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

SWITCH_INTERVAL = 0.0005  # s: the GIL's switch interval while a writer thread runs (Python's default: 0.005)
# values bound to one multi-row INSERT by the writer thread: each statement takes the GIL back
# (twice); SQLite's cost a row is the same for 120 or 480 rows a statement
WRITER_VALUES = 960


class Cancelled(Exception):
    """The flush failed: a writer job stops at its next statement."""


class StatementLock:
    """The lock around each statement (the writer's and the assigning thread's reads); once
    :attr:`cancelled`, entering it raises :class:`Cancelled` (a job of an aborted flush runs
    no further statement)."""

    __slots__ = ("_lock", "cancelled")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cancelled = False

    def __enter__(self) -> "StatementLock":
        self._lock.acquire()
        if self.cancelled:
            self._lock.release()
            raise Cancelled("the incident batch failed")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()


class RowWriter:
    """Runs jobs (callables) on a thread started by the first :meth:`submit`, in order; see the
    module's rules. One per flush: :meth:`wait` or :meth:`abort` ends the thread."""

    def __init__(self, name: str = "incident-writer") -> None:
        self.per_statement = WRITER_VALUES
        self.lock = StatementLock()
        self._name = name
        self._cond = threading.Condition()
        self._jobs: deque[Callable[[], Any]] = deque()
        self._busy = False
        self._stop = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.ran = 0  # jobs run (for the tests)

    def submit(self, job: Callable[[], Any]) -> None:
        """Run ``job`` after the jobs submitted before it (dropped after a failure)."""
        with self._cond:
            if self._stop:
                raise RuntimeError("the incident writer was stopped")
            if self._error is not None:
                return  # a job failed: nothing after it runs (wait() raises)
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            else:
                self._cond.notify_all()

    def _run(self) -> None:
        cond, jobs = self._cond, self._jobs
        while True:
            with cond:
                while not jobs and not self._stop:
                    cond.wait()
                if not jobs:
                    return  # stopped, nothing left
                job = jobs.popleft()
                self._busy = True
            try:
                job()
            except BaseException as exc:  # noqa: BLE001 - handed to the flushing thread by wait()
                with cond:
                    if self._error is None:
                        self._error = exc
                    jobs.clear()  # nothing after a failure
            finally:
                with cond:
                    self._busy = False
                    self.ran += 1
                    cond.notify_all()

    def _finish(self) -> None:
        """Stop the thread once idle and join it (caller holds nothing)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def wait(self) -> None:
        """Wait for every job submitted, end the thread; raise the first job's failure."""
        with self._cond:
            while self._jobs or self._busy:
                self._cond.wait()
        self._finish()
        err, self._error = self._error, None
        if err is not None:
            raise err

    def sync(self) -> None:
        """Wait for every job submitted (the thread stays); raise the first job's failure."""
        with self._cond:
            while self._jobs or self._busy:
                self._cond.wait()
            err, self._error = self._error, None
        if err is not None:
            raise err

    def abort(self) -> None:
        """Drop the jobs not started, wait for the running one, end the thread (the flushing
        thread failed; a failure of the writer's own is dropped: the caller's is raised). The
        running job stops at its next statement."""
        self.lock.cancelled = True
        with self._cond:
            self._jobs.clear()
            self._stop = True
            self._cond.notify_all()
        while True:
            try:
                self._finish()
                break
            except BaseException:  # (an interrupt while joining: the statement must end first)  # noqa: BLE001
                continue
        self._error = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class InlineWriter:
    """The same interface, running each job at once in the calling thread (small batches)."""

    lock = None  # (one thread: statements run as before, many a call)
    per_statement = None  # (assign.BIND_PER_STATEMENT)
    ran = 0

    def submit(self, job: Callable[[], Any]) -> None:
        job()

    def wait(self) -> None:
        pass

    def sync(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _Rows(list):
    """A read's rows, fetched under the lock (what the callers use of a cursor)."""

    def fetchone(self) -> Any:
        return self[0] if self else None

    def fetchall(self) -> list:
        return self


class LockedReads:
    """The connection as the assigning thread uses it while a :class:`RowWriter` writes: each
    ``execute`` runs and fetches its rows under the writer's lock."""

    __slots__ = ("conn", "lock")

    def __init__(self, conn: sqlite3.Connection, lock: StatementLock) -> None:
        self.conn, self.lock = conn, lock

    def execute(self, sql: str, args: Sequence[Any] | dict = ()) -> _Rows:
        with self.lock:
            return _Rows(self.conn.execute(sql, args))


_switch_lock = threading.Lock()
_switch_depth = 0
_switch_saved = 0.0


@contextmanager
def short_switch_interval() -> Iterator[None]:
    """The GIL's switch interval at :data:`SWITCH_INTERVAL` meanwhile (process-wide,
    nesting-safe; restored after). A writer thread coming back from a statement waits for the
    GIL until the assigning thread, busy with Python, is asked to drop it: by default after
    5 ms, a statement's worth of B-tree work; each statement needs the GIL back twice."""
    global _switch_depth, _switch_saved
    with _switch_lock:
        if _switch_depth == 0:
            _switch_saved = sys.getswitchinterval()
            if _switch_saved > SWITCH_INTERVAL:
                sys.setswitchinterval(SWITCH_INTERVAL)
        _switch_depth += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_depth -= 1
            if _switch_depth == 0:
                sys.setswitchinterval(_switch_saved)
