"""The near-copy index in the archive (``family_bands``, migration ``_m6_family_bands``): every
family text with a MinHash signature up to ``meta.incidents_bands_written`` has its 16 LSH band
keys there; the newest texts' keys are held in memory by the writer and written there once, in
bulk (``_m8_family_bands_once``: before, they were staged in ``family_bands_new`` and moved, each
row written twice), and a process that loads the state computes them from the stored signatures.
So a writer keeps nothing in memory for the texts it evicted and a new process finds old texts'
copies through it. An archive written before the table gets it filled from the stored
signatures, one with staged rows gets them moved; ``verify`` checks it. Real archive files, the
real import path and rules (test_incidents's Kerman scenario)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from monitor.archive import Archive
from monitor.archive.schema import MIGRATIONS, SCHEMA_VERSION, _m8_family_bands_once, _m9_short_fingerprints
from monitor.incidents import assign
from monitor.incidents.assign import IncidentTracker, Settings, bands_written
from monitor.incidents.corrections import rebuild
from monitor.incidents.families import BANDS, Signature, fingerprint, words
from monitor.query.verify import verify

from test_incidents import CLAIM_AR, KABUL, KERMAN, archive_with
from test_incidents_memory import LATE_REPOSTS, _import, _import_kerman_then_later, _members, _open, rec


def _bands(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    """The band keys in ``family_bands``."""
    return conn.execute("SELECT band_key, text_id FROM family_bands ORDER BY 1, 2").fetchall()


def _expected(conn: sqlite3.Connection, *, written: bool = True) -> list[tuple[int, int]]:
    """The band keys of the stored signatures up to the mark (``written``; else after it),
    computed from the signature itself."""
    mark = bands_written(conn)
    return sorted((k, tid) for tid, blob in conn.execute("SELECT id, signature FROM family_texts WHERE signature IS NOT NULL")
                  if (tid <= mark) == written for k in Signature.from_blob(blob).band_keys())


def _staged(st) -> list[tuple[int, int]]:
    """The band keys a writer holds for the texts not written to ``family_bands``."""
    return sorted((k, t) for k, tids in st.staged.items() for t in tids)


def _no_staging_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name='family_bands_new'").fetchone() is None


def test_every_signature_has_its_band_keys_in_the_archive(tmp_path) -> None:
    archive = archive_with(tmp_path, KERMAN + KABUL)
    try:
        conn = archive.conn
        signed = conn.execute("SELECT count(*) FROM family_texts WHERE signature IS NOT NULL").fetchone()[0]
        assert signed >= 3  # the claim, its trimmed copy, the longer reports and statements
        # a few texts: none written yet (held by the writer, from their signatures after a reload)
        assert bands_written(conn) == 0 and _bands(conn) == [] and _no_staging_table(conn)
        held = _staged(archive.incidents._state)
        assert len(held) == BANDS * signed and held == _expected(conn, written=False)
        assert verify(conn).ok
        archive.incidents.invalidate(conn)  # (reloaded: computed from the stored signatures)
        with archive.transaction():
            assert _staged(archive.incidents.state(conn)) == held
    finally:
        archive.close()


def test_the_band_keys_are_written_once_with_the_mark_of_the_last_text(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(assign, "STAGED_ROWS", 2 * BANDS)
    archive = archive_with(tmp_path, KERMAN + KABUL)
    try:
        conn = archive.conn
        signed = conn.execute("SELECT count(*) FROM family_texts WHERE signature IS NOT NULL").fetchone()[0]
        mark = bands_written(conn)
        assert 0 < mark <= conn.execute("SELECT max(id) FROM family_texts").fetchone()[0]
        rows = _bands(conn)
        assert rows and rows == _expected(conn)
        assert all(-(1 << 63) <= k < (1 << 63) for k, _t in rows)  # stored as SQLite integers
        assert _staged(archive.incidents._state) == _expected(conn, written=False)
        assert len(rows) + len(_staged(archive.incidents._state)) == BANDS * signed
        assert verify(conn).ok
    finally:
        archive.close()


def test_evicted_texts_are_held_only_in_the_archive_and_found_from_a_new_process(tmp_path) -> None:
    small, full = _open(tmp_path, "small.db", 1), _open(tmp_path, "full.db", None)
    try:
        _import_kerman_then_later((small, full), tmp_path)
        st = small.incidents._state
        claim = small.conn.execute("SELECT id FROM family_texts WHERE fingerprint=?",
                                   (fingerprint(words(CLAIM_AR)),)).fetchone()[0]
        # evicted: nothing of the claim's text is in memory (no text id, no band key, no array)
        assert st.evicted >= 2 and st.cold_texts >= 1
        assert claim not in st.sigs and all(claim not in tids for tids in st.bands.values())
        assert not any(isinstance(v, np.ndarray) for v in vars(st).values())
        assert _bands(small.conn) == _expected(small.conn)
        assert _staged(st) == _expected(small.conn, written=False)
    finally:
        small.close()
    # a new process (bounded: it loads only the last window) finds the week-old claim's copies,
    # exact and trimmed, through the archive's band keys
    again = Archive.open(tmp_path / "small.db")
    again.incidents = IncidentTracker(Settings(in_memory=1))
    try:
        _import(again, tmp_path, LATE_REPOSTS, "late")
        _import(full, tmp_path, LATE_REPOSTS, "late")
        assert again.incidents._state.partial
        got = _members(again)
        assert got == _members(full)
        assert got["telegram:604:6"][2] == "near-copy" and got["telegram:604:6"][:2] == got["telegram:500:77"][:2]
        assert verify(again.conn).ok
    finally:
        again.close()
        full.close()


def test_an_archive_from_before_the_table_gets_it_from_its_signatures(tmp_path) -> None:
    archive_with(tmp_path, KERMAN + KABUL, name="old.db").close()
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        every = _expected(conn, written=False)  # (none written: all from the signatures)
        members = conn.execute("SELECT * FROM incident_messages ORDER BY message_rowid").fetchall()
        conn.execute("DROP TABLE family_bands")  # as migration 5 left it
        conn.execute("DELETE FROM meta WHERE key='incidents_bands_written'")
        conn.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    with Archive.open(db) as a:
        assert a.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert bands_written(a.conn) == a.conn.execute("SELECT max(id) FROM family_texts").fetchone()[0]
        assert _bands(a.conn) == every == _expected(a.conn) and _no_staging_table(a.conn)
        assert a.conn.execute("SELECT * FROM incident_messages ORDER BY message_rowid").fetchall() == members
        assert verify(a.conn).ok


def _as_schema_7(db, staged_from: int) -> None:
    """Rewrite an archive as migration ``_m7_family_bands_new`` left it (schema version 6): the keys of the texts from ``staged_from`` on in
    ``family_bands_new``, the others' in ``family_bands``, no mark."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE family_bands_new (band_key INTEGER NOT NULL, text_id INTEGER NOT NULL"
                     " REFERENCES family_texts(id), PRIMARY KEY (band_key, text_id)) WITHOUT ROWID")
        rows = [(k, t) for t, blob in conn.execute("SELECT id, signature FROM family_texts WHERE signature IS NOT NULL")
                for k in Signature.from_blob(blob).band_keys()]
        conn.execute("DELETE FROM family_bands")
        conn.executemany("INSERT INTO family_bands VALUES (?, ?)", [r for r in rows if r[1] < staged_from])
        conn.executemany("INSERT INTO family_bands_new VALUES (?, ?)", [r for r in rows if r[1] >= staged_from])
        conn.execute("DELETE FROM meta WHERE key='incidents_bands_written'")
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                     (str(MIGRATIONS.index(_m8_family_bands_once)),))


def _closed_small_and_open_full(tmp_path: Path) -> tuple[Path, Archive]:
    """The Kerman imports into an evicting writer's archive (closed; its path) and into a
    writer that holds everything (still open)."""
    small, full = _open(tmp_path, "small.db", 1), _open(tmp_path, "full.db", None)
    try:
        _import_kerman_then_later((small, full), tmp_path)
    finally:
        small.close()
    return tmp_path / "small.db", full


def test_an_archive_with_staged_keys_gets_them_moved_and_goes_on_the_same(tmp_path) -> None:
    """``_m7_family_bands_new``'s rows move to ``family_bands`` (the table goes, the mark
    is the last text); later imports, with an evicting writer, group as a writer that holds
    everything and never had the staged table."""
    db, full = _closed_small_and_open_full(tmp_path)
    with sqlite3.connect(db) as conn:
        texts = [t for (t,) in conn.execute("SELECT id FROM family_texts WHERE signature IS NOT NULL ORDER BY id")]
    assert len(texts) >= 3
    _as_schema_7(db, texts[len(texts) // 2])
    again = Archive.open(db)
    again.incidents = IncidentTracker(Settings(in_memory=1))
    try:
        conn = again.conn
        assert _no_staging_table(conn)
        assert bands_written(conn) == conn.execute("SELECT max(id) FROM family_texts").fetchone()[0]
        assert _bands(conn) == _expected(conn) and len(_bands(conn)) == BANDS * len(texts)
        assert verify(conn).ok
        _import(again, tmp_path, LATE_REPOSTS, "late")
        _import(full, tmp_path, LATE_REPOSTS, "late")
        assert _members(again) == _members(full)
        assert _bands(conn) == _expected(conn) and _staged(again.incidents._state) == _expected(conn, written=False)
        assert verify(conn).ok
    finally:
        again.close()
        full.close()


def test_verify_reports_missing_and_stray_band_keys(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(assign, "STAGED_ROWS", 2 * BANDS)
    archive_with(tmp_path, KERMAN + KABUL, name="v.db").close()
    db = tmp_path / "v.db"
    with sqlite3.connect(db) as conn:
        mark = bands_written(conn)
        tid = conn.execute("SELECT min(text_id) FROM family_bands").fetchone()[0]
        conn.execute("DELETE FROM family_bands WHERE text_id=? AND band_key ="
                     " (SELECT min(band_key) FROM family_bands WHERE text_id=?)", (tid, tid))
        conn.execute("INSERT INTO family_bands(band_key, text_id) VALUES (42, 999999)")
        # the last text, as if its keys were not written yet (after the mark) ...
        after = conn.execute("SELECT max(id) FROM family_texts WHERE signature IS NOT NULL").fetchone()[0]
        if after <= mark:
            conn.execute("DELETE FROM family_bands WHERE text_id=?", (after,))
            conn.execute("UPDATE meta SET value=? WHERE key='incidents_bands_written'", (str(after - 1),))
        assert after != tid
        conn.execute("INSERT INTO family_bands(band_key, text_id) VALUES (43, ?)", (after,))  # ... has none there
    with Archive.open(db) as a:
        report = verify(a.conn)
    assert not report.ok
    found = {(p.table, p.rowid, p.detail) for p in report.problems}
    assert ("family_bands", tid, f"family text has {BANDS - 1} band key(s), not {BANDS}") in found
    assert ("family_bands", 999999, "band keys of a family text that is not in the archive") in found
    assert ("family_bands", after, "family text has 1 band key(s), not 0") in found


def test_the_newest_band_keys_are_written_in_bulk_and_found_in_the_table_and_in_memory(tmp_path, monkeypatch) -> None:
    """With a small ``STAGED_ROWS`` the keys are written to ``family_bands`` several times
    during the imports: every evicted text is then found through the table or the keys held
    (the same incidents and families as a writer that holds everything), and a text's keys are
    in the table exactly when it is at or before the mark."""
    monkeypatch.setattr(assign, "STAGED_ROWS", 3 * BANDS)
    small, full = _open(tmp_path, "small.db", 1), _open(tmp_path, "full.db", None)
    try:
        _import_kerman_then_later((small, full), tmp_path)
        _import(small, tmp_path, LATE_REPOSTS, "late")
        _import(full, tmp_path, LATE_REPOSTS, "late")
        assert small.incidents._state.evicted >= 2
        assert _members(small) == _members(full)
        got = _members(small)
        assert got["telegram:604:6"][2] == "near-copy" and got["telegram:604:6"][:2] == got["telegram:500:77"][:2]
        for a in (small, full):
            written = a.conn.execute("SELECT count(*) FROM family_bands").fetchone()[0]
            assert written >= 3 * BANDS and bands_written(a.conn) > 0  # written at least once
            assert _bands(a.conn) == _expected(a.conn)
            assert verify(a.conn).ok
            st = a.incidents._state
            assert _staged(st) == _expected(a.conn, written=False)
            assert st.staged_rows == len(_staged(st)) < 3 * BANDS
    finally:
        small.close()
        full.close()
    # a new process computes the keys not written from the signatures and finds the claim's copy
    again = Archive.open(tmp_path / "small.db")
    again.incidents = IncidentTracker(Settings(in_memory=1))
    try:
        _import(again, tmp_path, [rec("606", 2, "2024-01-13T08:00:00Z", CLAIM_AR.split(" وقال")[0] + " #عاجل",
                                      channel="repost_f")], "again")
        assert _members(again)["telegram:606:2"][:2] == _members(again)["telegram:500:77"][:2]
        assert verify(again.conn).ok
    finally:
        again.close()


def test_a_rebuild_starts_the_band_keys_again(tmp_path, monkeypatch) -> None:
    """``incident rebuild`` empties the tables and the mark: the texts it makes get their keys
    written anew (the same grouping as before), and verify holds."""
    monkeypatch.setattr(assign, "STAGED_ROWS", 2 * BANDS)
    archive = archive_with(tmp_path, KERMAN + KABUL)
    try:
        assert bands_written(archive.conn) > 0
        rebuild(archive)
        conn = archive.conn
        before = _members(archive)
        assert _bands(conn) == _expected(conn) and bands_written(conn) > 0
        assert verify(conn).ok
        monkeypatch.setattr(assign, "STAGED_ROWS", 1000 * BANDS)
        rebuild(archive)  # nothing written this time: the mark is gone with the rows
        assert bands_written(conn) == 0 and _bands(conn) == []
        assert verify(conn).ok and _members(archive) == before
    finally:
        archive.close()


def test_an_archive_with_long_fingerprints_gets_them_shortened_and_finds_old_copies(tmp_path) -> None:
    """Migration 9 (``_m9_short_fingerprints``): the exact-copy keys of ``family_texts`` were 32
    hex characters (128 bits of the SHA-256), now 16 (64 bits: the unique index they are looked
    up by is under half the size, and it was the largest part of the pages a writer's commits
    changed). An archive written with the long keys gets them cut (forward keys stay as they
    are); a copy of a text whose incident is no longer held still finds its family by the key,
    as in an archive that never had the long ones; ``verify`` passes."""
    db, full = _closed_small_and_open_full(tmp_path)
    fp = fingerprint(words(CLAIM_AR))
    assert len(fp) == 16
    with sqlite3.connect(db) as conn:
        keys = dict(conn.execute("SELECT id, fingerprint FROM family_texts"))
        assert any(k.startswith("fwd:") for k in keys.values())  # (the forward of the scenario)
        # as migration 8 left it: 32 characters (the SHA-256's first 128 bits)
        import hashlib
        long = {i: hashlib.sha256(" ".join(words(t)).encode()).hexdigest()[:32]
                for i, t in conn.execute("SELECT f.id, m.text FROM family_texts f JOIN messages m"
                                         " ON m.id = f.message_rowid WHERE f.fingerprint NOT LIKE 'fwd:%'")}
        assert all(keys[i] == v[:16] for i, v in long.items())
        conn.executemany("UPDATE family_texts SET fingerprint=? WHERE id=?", [(v, i) for i, v in long.items()])
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'",  # as before migration 9 (_m9_…)
                     (str(MIGRATIONS.index(_m9_short_fingerprints)),))
    again = Archive.open(db)
    again.incidents = IncidentTracker(Settings(in_memory=1))
    try:
        conn = again.conn
        assert dict(conn.execute("SELECT id, fingerprint FROM family_texts")) == keys
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert verify(conn).ok
        copy = [rec("605", 9, "2024-01-12T10:00:00Z", CLAIM_AR, channel="repost_later")]
        _import(again, tmp_path, LATE_REPOSTS + copy, "late")
        _import(full, tmp_path, LATE_REPOSTS + copy, "late")
        got = _members(again)
        assert got == _members(full)
        assert got["telegram:605:9"][2] == "copy" and got["telegram:605:9"][:2] == got["telegram:500:77"][:2]
        assert verify(conn).ok
    finally:
        again.close()
        full.close()
