"""The near-copy index in the archive (``family_bands``, migration ``_m6_family_bands``; the
newest texts' keys in ``family_bands_new``, ``_m7_family_bands_new``, moved in bulk): every
family text with a MinHash signature has its 16 LSH band keys there, so a writer keeps nothing
in memory for the texts it evicted and a new process finds old texts' copies through it. An
archive written before the table gets it filled from the stored signatures; ``verify`` checks
it. Real archive files, the real import path and rules (test_incidents's Kerman scenario)."""

from __future__ import annotations

import sqlite3

import numpy as np

from monitor.archive import Archive
from monitor.archive.schema import SCHEMA_VERSION
from monitor.incidents import assign
from monitor.incidents.assign import IncidentTracker, Settings
from monitor.incidents.families import BANDS, Signature, fingerprint, words
from monitor.query.verify import verify

from test_incidents import CLAIM_AR, KABUL, KERMAN, archive_with
from test_incidents_memory import LATE_REPOSTS, _import, _import_kerman_then_later, _members, _open, rec


def _bands(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    """The band keys of both tables (a text's are in one of them)."""
    rows = conn.execute("SELECT band_key, text_id, 0 FROM family_bands UNION ALL"
                        " SELECT band_key, text_id, 1 FROM family_bands_new ORDER BY 1, 2").fetchall()
    assert len({(k, t) for k, t, _new in rows}) == len(rows)  # none in both
    return [(k, t) for k, t, _new in rows]


def _expected(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    """The band keys of every stored signature, computed from the signature itself."""
    return sorted((k, tid) for tid, blob in conn.execute("SELECT id, signature FROM family_texts WHERE signature IS NOT NULL")
                  for k in Signature.from_blob(blob).band_keys())


def test_every_signature_has_its_band_keys_in_the_archive(tmp_path) -> None:
    archive = archive_with(tmp_path, KERMAN + KABUL)
    try:
        conn = archive.conn
        signed = conn.execute("SELECT count(*) FROM family_texts WHERE signature IS NOT NULL").fetchone()[0]
        assert signed >= 3  # the claim, its trimmed copy, the longer reports and statements
        rows = _bands(conn)
        assert len(rows) == BANDS * signed and rows == _expected(conn)
        assert all(-(1 << 63) <= k < (1 << 63) for k, _t in rows)  # stored as SQLite integers
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
        before = _bands(conn)
        members = conn.execute("SELECT * FROM incident_messages ORDER BY message_rowid").fetchall()
        conn.execute("DROP TABLE family_bands")  # as schema 4 left it
        conn.execute("DROP TABLE family_bands_new")
        conn.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    with Archive.open(db) as a:
        assert a.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert _bands(a.conn) == before == _expected(a.conn)
        assert a.conn.execute("SELECT * FROM incident_messages ORDER BY message_rowid").fetchall() == members
        assert verify(a.conn).ok


def test_verify_reports_missing_and_stray_band_keys(tmp_path) -> None:
    archive_with(tmp_path, KERMAN + KABUL, name="v.db").close()
    db = tmp_path / "v.db"
    with sqlite3.connect(db) as conn:
        tid = conn.execute("SELECT min(text_id) FROM family_bands_new").fetchone()[0]
        conn.execute("DELETE FROM family_bands_new WHERE text_id=? AND band_key ="
                     " (SELECT min(band_key) FROM family_bands_new WHERE text_id=?)", (tid, tid))
        conn.execute("INSERT INTO family_bands(band_key, text_id) VALUES (42, 999999)")
    with Archive.open(db) as a:
        report = verify(a.conn)
    assert not report.ok
    found = {(p.table, p.rowid, p.detail) for p in report.problems}
    assert ("family_bands", tid, f"family text has {BANDS - 1} band key(s), not {BANDS}") in found
    assert ("family_bands", 999999, "band keys of a family text that is not in the archive") in found


def test_the_newest_band_keys_move_to_the_large_table_in_bulk_and_are_found_in_both(tmp_path, monkeypatch) -> None:
    """With a small ``STAGED_ROWS`` the keys move to ``family_bands`` several times during the
    imports: every evicted text is then found through one table or the other (the same
    incidents and families as a writer that holds everything), and each key is in one table."""
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
            moved = a.conn.execute("SELECT count(*) FROM family_bands").fetchone()[0]
            staged = a.conn.execute("SELECT count(*) FROM family_bands_new").fetchone()[0]
            assert moved >= 3 * BANDS  # moved at least once
            assert _bands(a.conn) == _expected(a.conn)
            assert verify(a.conn).ok
            st = a.incidents._state
            assert st.staged_rows == staged == sum(len(v) for v in st.staged.values())
    finally:
        small.close()
        full.close()
    # a new process reads the keys still staged back into memory and finds the claim's copy
    again = Archive.open(tmp_path / "small.db")
    again.incidents = IncidentTracker(Settings(in_memory=1))
    try:
        _import(again, tmp_path, [rec("606", 2, "2024-01-13T08:00:00Z", CLAIM_AR.split(" وقال")[0] + " #عاجل",
                                      channel="repost_f")], "again")
        assert _members(again)["telegram:606:2"][:2] == _members(again)["telegram:500:77"][:2]
        assert verify(again.conn).ok
    finally:
        again.close()
