"""A big batch's incident rows written by a thread of their own (monitor.incidents.writer) while
the tracker assigns the next messages: the same rows as writing them in the flushing thread,
in the order submitted; a failed write surfaces in the flushing thread and the archive's
transaction (hits and all) rolls back with nothing of the batch left; a failure while
assigning stops the writer before the rollback; no writer thread outlives a flush. Real
archive files; the stream of test_incidents_near (many attacks in one template, copies,
trimmed copies, reposts a week later), in transactions big enough for the thread."""

from __future__ import annotations

import sqlite3
import sys
import threading

import pytest

from monitor.archive import Archive
from monitor.incidents import assign, writer
from monitor.incidents.assign import IncidentTracker, Incoming, Settings
from monitor.incidents.families import BANDS
from monitor.incidents.writer import RowWriter, short_switch_interval

from test_incidents_near import _stream

TABLES = {
    "incidents": "SELECT id, title, start_at, end_at, first_message_rowid, places, actors, counts, messages, channels"
                 " FROM incidents ORDER BY id",
    "families": "SELECT * FROM families ORDER BY id",
    "incident_messages": "SELECT * FROM incident_messages ORDER BY message_rowid",
    "family_texts": "SELECT * FROM family_texts ORDER BY id",
    "bands": "SELECT * FROM (SELECT * FROM family_bands UNION ALL SELECT * FROM family_bands_new) ORDER BY 1, 2",
    "incident_facets": "SELECT * FROM incident_facets ORDER BY 1, 2, 3",
}


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 8 messages, the thread from 16 (the bench's batches of 500 at this scale),
    statements of 40 values (rows are handed over at every chunk); band keys moved to
    family_bands every 3 texts' worth (the move is written too)."""
    monkeypatch.setattr(assign, "WRITE_CHUNK", 8)
    monkeypatch.setattr(assign, "BIND_PER_STATEMENT", 40)
    monkeypatch.setattr(writer, "WRITER_VALUES", 40)
    monkeypatch.setattr(assign, "CPU_SHARE_MIN", 0.0)  # the thread whatever the machine's load (but see the last test)
    monkeypatch.setattr(assign, "THREAD_MIN", 16)
    monkeypatch.setattr(assign, "STAGED_ROWS", 3 * BANDS)


def _tables(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    return {name: conn.execute(sql).fetchall() for name, sql in TABLES.items()}


def _archive(tmp_path, name: str, *, threaded: bool, in_memory: int = 3) -> Archive:
    archive = Archive.open(tmp_path / f"{name}.db")
    with archive.transaction() as conn:
        for i, (date, ch, text, _a, _k, _e) in enumerate(_stream()):
            conn.execute("INSERT INTO messages(id, platform, channel_id, message_id, date, text, raw, raw_sha256,"
                         " search_text, first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                         (i + 1, "telegram", ch, str(i), date, text, "{}", "0" * 64, "", date, date))
    archive.incidents = IncidentTracker(Settings(in_memory=in_memory), threaded=threaded)
    return archive


def _queue(tracker: IncidentTracker, items) -> None:
    """Every tenth message says it forwards the message three before it (Telegram's
    ``forwarded_from``: looked up in the tables or this transaction's rows)."""
    stream = _stream()
    for i, (date, ch, text, actors, kind, _e) in items:
        fwd = {"id": f"channel{stream[i - 3][1]}", "message_id": str(i - 3)} if i % 10 == 9 else None
        tracker.queue(Incoming(i + 1, "telegram", ch, str(i), date, text, fwd, kind, ["r"], actors), "now", new=True)


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "incident-writer"]


class _Spy:
    """Which thread ran each insert of the tracker's rows (assign._insert_rows)."""

    def __init__(self, monkeypatch) -> None:
        self.threads: list[str] = []
        real = assign._insert_rows

        def insert_rows(conn, head, *args, **kw):
            self.threads.append(threading.current_thread().name)
            return real(conn, head, *args, **kw)

        monkeypatch.setattr(assign, "_insert_rows", insert_rows)


def _run(tmp_path, name: str, *, threaded: bool, per_tx: int = 40) -> dict[str, list[tuple]]:
    archive = _archive(tmp_path, name, threaded=threaded)
    stream = list(enumerate(_stream()))
    try:
        for start in range(0, len(stream), per_tx):
            with archive.transaction():
                _queue(archive.incidents, stream[start:start + per_tx])
            assert not _writer_threads()  # none outlives the flush
        assert archive.incidents._state.evicted > 0 and archive.incidents._state.partial
        return _tables(archive.conn)
    finally:
        archive.close()


def test_the_writer_thread_writes_the_same_rows_as_the_flushing_thread(tmp_path, monkeypatch, small_chunks) -> None:
    spy = _Spy(monkeypatch)
    threaded = _run(tmp_path, "threaded", threaded=True)
    assert "incident-writer" in spy.threads and threading.current_thread().name in spy.threads  # (the last batch: small)
    spy.threads.clear()
    inline = _run(tmp_path, "inline", threaded=False)
    assert set(spy.threads) == {threading.current_thread().name}
    assert threaded == inline
    assert len(threaded["incident_messages"]) == len(_stream())
    assert sum(1 for r in threaded["incident_messages"] if r[10] == "forward") >= 5
    assert sum(1 for r in threaded["family_texts"] if r[1].startswith("fwd:")) >= 5
    assert len(threaded["bands"]) > 3 * BANDS  # moved to family_bands at least once on the way


def test_a_member_changed_after_its_row_was_handed_to_the_writer_is_updated(tmp_path, small_chunks) -> None:
    """A message queued again later in the same batch (new hits on it) after its row was
    written: its row gets the stronger kind, the rules and actors of both."""
    got = {}
    for threaded in (True, False):
        archive = _archive(tmp_path, f"again-{threaded}", threaded=threaded)
        stream = list(enumerate(_stream()))[:40]
        try:
            with archive.transaction():
                _queue(archive.incidents, stream)
                i, (date, ch, text, _actors, _kind, _e) = stream[2]
                archive.incidents.queue(Incoming(i + 1, "telegram", ch, str(i), date, text, None, "denial", ["r2"],
                                                 ["hamas"]), "now", new=False)
            got[threaded] = _tables(archive.conn)
            row = archive.conn.execute("SELECT kind, rules, actors FROM incident_messages WHERE message_rowid=3").fetchone()
        finally:
            archive.close()
        assert row[0] == "claim" and row[1] == '["r","r2"]' and "hamas" in row[2]
    assert got[True] == got[False]


def test_a_failed_write_rolls_the_transaction_back_and_surfaces(tmp_path, small_chunks) -> None:
    """The insert of a member of the fourth chunk fails (a trigger): the flushing thread raises
    that error, nothing of the transaction is left (the earlier chunks' rows, nor the row the
    archive wrote before: the hits' stand-in), no thread is left; the same transaction again
    then gives the rows of a run that never failed."""
    clean = _run(tmp_path, "clean", threaded=True)
    archive = _archive(tmp_path, "failing", threaded=True)
    stream = list(enumerate(_stream()))
    conn = archive.conn
    try:
        with archive.transaction():
            _queue(archive.incidents, stream[:40])
        before = _tables(conn)
        conn.execute("CREATE TEMP TRIGGER fail_member BEFORE INSERT ON incident_messages WHEN NEW.message_rowid = 70"
                     " BEGIN SELECT RAISE(FAIL, 'injected failure'); END")
        with pytest.raises(sqlite3.IntegrityError, match="injected failure"):
            with archive.transaction():
                conn.execute("INSERT INTO meta(key, value) VALUES ('stand-in for the hits', '1')")
                _queue(archive.incidents, stream[40:80])
        assert not _writer_threads()
        assert not conn.in_transaction
        assert _tables(conn) == before
        assert conn.execute("SELECT count(*) FROM meta WHERE key='stand-in for the hits'").fetchone()[0] == 0
        conn.execute("DROP TRIGGER fail_member")
        for start in range(40, len(stream), 40):
            with archive.transaction():
                _queue(archive.incidents, stream[start:start + 40])
        assert _tables(conn) == clean
    finally:
        archive.close()


def test_a_failure_while_assigning_stops_the_writer_before_the_rollback(tmp_path, monkeypatch, small_chunks) -> None:
    """The assigning thread fails with chunks handed to a (slow) writer: the writer runs no
    statement after that (one after the ROLLBACK would be committed on its own), the error is
    the assigning thread's, and the tables are as before."""
    archive = _archive(tmp_path, "abort", threaded=True)
    stream = list(enumerate(_stream()))
    conn = archive.conn
    tracker = archive.incidents
    started = threading.Event()
    release = threading.Event()
    real_insert = assign._insert_rows
    after_failure: list[str] = []
    failed = threading.Event()

    def slow_insert(c, head, *args, **kw):
        if threading.current_thread().name == "incident-writer":
            started.set()
            release.wait()
            if failed.is_set():
                after_failure.append(head)
        return real_insert(c, head, *args, **kw)

    real_assign = tracker._assign_one
    count = 0

    def failing_assign(*args, **kw):
        nonlocal count
        count += 1
        if count == 30:  # chunks 1-3 handed over; the writer is stuck in the first
            assert started.wait(10)
            failed.set()
            threading.Timer(0.05, release.set).start()  # the running job ends while abort waits
            raise RuntimeError("assignment failed")
        return real_assign(*args, **kw)

    try:
        with archive.transaction():
            _queue(tracker, stream[:40])
        before = _tables(conn)
        monkeypatch.setattr(assign, "_insert_rows", slow_insert)
        tracker._assign_one = failing_assign
        with pytest.raises(RuntimeError, match="assignment failed"):
            with archive.transaction():
                _queue(tracker, stream[40:80])
        assert len(after_failure) == 1  # the insert that was waiting: it ran no statement (nor any after it)
        assert not _writer_threads()
        assert _tables(conn) == before
    finally:
        release.set()
        archive.close()


def test_the_writer_runs_jobs_in_order_on_one_thread_and_ends_with_wait() -> None:
    w = RowWriter()
    done: list[tuple[int, str]] = []
    gate = threading.Event()
    w.submit(lambda: gate.wait(10))  # the next jobs queue up behind it
    for i in range(50):
        w.submit(lambda i=i: done.append((i, threading.current_thread().name)))
    gate.set()
    w.wait()
    assert [i for i, _ in done] == list(range(50))
    assert {name for _, name in done} == {"incident-writer"}
    assert not w.alive and not _writer_threads()


def test_a_failing_job_drops_the_later_ones_and_wait_raises_it() -> None:
    w = RowWriter()
    done: list[int] = []
    boom = ValueError("boom")

    def fail() -> None:
        raise boom

    gate = threading.Event()
    w.submit(lambda: gate.wait(10))
    w.submit(lambda: done.append(1))
    w.submit(fail)
    w.submit(lambda: done.append(3))
    gate.set()
    with pytest.raises(ValueError) as exc:
        w.wait()
    assert exc.value is boom and done == [1]
    assert not w.alive


def test_abort_drops_the_jobs_not_started_and_waits_for_the_running_one() -> None:
    w = RowWriter()
    done: list[int] = []
    running, release = threading.Event(), threading.Event()

    def first() -> None:
        running.set()
        release.wait(10)
        done.append(0)

    w.submit(first)
    for i in range(1, 6):
        w.submit(lambda i=i: done.append(i))
    assert running.wait(10)
    aborting = threading.Thread(target=w.abort)
    aborting.start()
    aborting.join(0.2)
    assert aborting.is_alive()  # waits for the running job
    release.set()
    aborting.join(10)
    assert not aborting.is_alive() and done == [0] and not w.alive
    with pytest.raises(RuntimeError):
        w.submit(lambda: None)  # stopped


def test_the_switch_interval_is_short_meanwhile_and_restored() -> None:
    before = sys.getswitchinterval()
    with short_switch_interval():
        with short_switch_interval():
            assert sys.getswitchinterval() == min(before, writer.SWITCH_INTERVAL)
        assert sys.getswitchinterval() == min(before, writer.SWITCH_INTERVAL)
    assert sys.getswitchinterval() == before


def test_sync_waits_for_the_jobs_keeps_the_thread_and_raises_a_failure() -> None:
    """(The exact-copy lookup of a batch runs on the writer while the signatures are computed:
    the tracker waits for it with sync.)"""
    w = RowWriter()
    found: dict[str, int] = {}
    gate = threading.Event()
    w.submit(lambda: gate.wait(10))
    w.submit(lambda: found.update(a=1))
    gate.set()
    w.sync()
    assert found == {"a": 1} and w.alive

    def fail() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    w.submit(fail)
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        w.sync()
    w.abort()
    assert not w.alive and not _writer_threads()


def test_no_writer_thread_while_the_process_gets_less_than_a_cpu(tmp_path, monkeypatch, small_chunks) -> None:
    """With another job on the second core the thread would wait for the GIL hand-overs: a
    big batch is written in the flushing thread while the process got less than
    CPU_SHARE_MIN CPU seconds a second in its last big flushes, and the thread comes back
    when it gets a full CPU again (the same rows either way: the first test)."""
    monkeypatch.setattr(assign, "CPU_SHARE_MIN", 0.8)
    archive = _archive(tmp_path, "share", threaded=True)
    tracker = archive.incidents
    stream = list(enumerate(_stream()))
    spy = _Spy(monkeypatch)
    shares = iter([0.3, 0.3, 1.0, 1.0, 1.0])
    monkeypatch.setattr(tracker, "_measured", lambda cpu, wall, real=tracker._measured: real(next(shares), 1.0))
    used = []
    try:
        for start in range(0, 160, 32):
            spy.threads.clear()
            with archive.transaction():
                _queue(tracker, stream[start:start + 32])
            used.append("incident-writer" in spy.threads)
    finally:
        archive.close()
    # shares measured after each: 0.65, 0.475, 0.7375, 0.86875 -> threaded, inline, inline, inline, threaded
    assert used == [True, False, False, False, True]
