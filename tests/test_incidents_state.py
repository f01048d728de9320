"""The incident tracker's in-memory state (monitor.incidents.assign): what a second writer
stored is seen, a rolled-back transaction leaves nothing behind, the gazetteer is read only
when a hit is stored and its compiled form is cached on disk. Real archive files, the real
import path (test_incidents's Kerman scenario)."""

from __future__ import annotations

import json

import pytest

from monitor.archive import Archive
from monitor.incidents import gazetteer
from monitor.incidents.query import list_incidents
from monitor.ingest import import_file

from test_incidents import KABUL, KERMAN, matcher, write_jsonl


def _import(archive, tmp_path, records, name):
    import_file(archive, write_jsonl(tmp_path / f"{name}.jsonl", records), fmt="canonical", matcher=matcher(tmp_path),
                prepare_process=False)


def _consistent(conn) -> None:
    """Every incident's stored counts match its members (what `verify` checks too)."""
    for iid, n, channels in conn.execute("SELECT id, messages, channels FROM incidents WHERE merged_into IS NULL"):
        members = conn.execute("SELECT count(*), count(DISTINCT platform || ':' || channel_id) FROM incident_messages"
                               " WHERE incident_id=?", (iid,)).fetchone()
        assert (n, channels) == members, iid
    fam = conn.execute("SELECT f.id, f.members, (SELECT count(*) FROM incident_messages im WHERE im.family_id = f.id)"
                       " FROM families f").fetchall()
    assert all(a == b for _id, a, b in fam)


def test_a_second_writer_sees_the_first_writers_incidents_and_back(tmp_path) -> None:
    db = tmp_path / "shared.db"
    a, b = Archive.open(db), Archive.open(db)
    try:
        _import(a, tmp_path, KERMAN[:2], "a1")  # reports: one incident
        _import(b, tmp_path, KERMAN[2:5], "b1")  # statements, X post, denial: B's tracker reads A's incident
        _import(a, tmp_path, KERMAN[5:], "a2")  # the claim and reposts: A's tracker reloads B's changes
        _import(b, tmp_path, KABUL, "b2")
        rows = list_incidents(a.conn)
        assert len(rows) == 2
        kerman = next(r for r in rows if "Kerman" in r["places"])
        assert kerman["counts"]["messages"] == len(KERMAN) and kerman["counts"]["claim"] == 5
        assert a.conn.execute("SELECT count(DISTINCT id) FROM incidents").fetchone()[0] == 2  # no id taken twice
        _consistent(a.conn)
    finally:
        a.close()
        b.close()
    # the same as one writer storing it all
    one = Archive.open(tmp_path / "one.db")
    try:
        _import(one, tmp_path, KERMAN + KABUL, "all")
        assert sorted(json.dumps(r["counts"], sort_keys=True) for r in list_incidents(one.conn)) == \
            sorted(json.dumps(r["counts"], sort_keys=True) for r in rows)
    finally:
        one.close()


def test_a_rolled_back_transaction_leaves_no_incident_behind(tmp_path) -> None:
    archive = Archive.open(tmp_path / "a.db")
    try:
        _import(archive, tmp_path, KERMAN[:2], "first")
        with pytest.raises(RuntimeError):
            with archive.lock, archive.transaction():
                _import(archive, tmp_path, KABUL, "rolled-back")  # joins the outer transaction
                raise RuntimeError("disk full")
        assert len(list_incidents(archive.conn)) == 1
        _import(archive, tmp_path, KABUL + KERMAN[2:], "again")
        rows = list_incidents(archive.conn)
        assert len(rows) == 2 and sum(r["counts"]["messages"] for r in rows) == len(KERMAN) + len(KABUL)
        _consistent(archive.conn)
    finally:
        archive.close()


def test_the_gazetteer_is_not_read_when_no_hit_is_stored(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gazetteer, "_cached", None)
    calls = []
    real = gazetteer._load_cached
    monkeypatch.setattr(gazetteer, "_load_cached", lambda: calls.append(1) or real())
    archive = Archive.open(tmp_path / "a.db")
    try:
        quiet = [dict(r, text="markets and weather today") for r in KERMAN]
        _import(archive, tmp_path, quiet, "quiet")
        assert archive.conn.execute("SELECT count(*) FROM messages").fetchone()[0] == len(KERMAN)
        assert calls == []
        _import(archive, tmp_path, KABUL, "hits")
        assert calls == [1] and len(list_incidents(archive.conn)) == 1
    finally:
        archive.close()


def test_the_compiled_gazetteer_is_cached_on_disk(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CLAIMWATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gazetteer, "_cached", None)
    built = gazetteer.load()
    path = gazetteer.cache_path()
    assert path.exists() and path.parent == tmp_path / "cache"
    # read back without building: the same places, the same answers
    monkeypatch.setattr(gazetteer, "_cached", None)
    monkeypatch.setattr(gazetteer, "build", lambda *a, **k: pytest.fail("built again instead of reading the cache"))
    cached = gazetteer.load()
    assert cached.places == built.places
    for text in ("Two explosions near the Soleimani tomb in Kerman, Iran", "فوری: دو انفجار در مسیر گلزار شهدای کرمان",
                 "Blast in Kabul near the ministry"):
        assert cached.find(text) == built.find(text)
    # a damaged cache is rebuilt (and rewritten)
    path.write_text("{not json", encoding="utf-8")
    monkeypatch.undo()
    monkeypatch.setenv("CLAIMWATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gazetteer, "_cached", None)
    assert gazetteer.load().places == built.places
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == gazetteer.CACHE_FORMAT
    # an empty CLAIMWATCH_CACHE_DIR: no cache at all
    monkeypatch.setenv("CLAIMWATCH_CACHE_DIR", "")
    assert gazetteer.cache_path() is None
    # 'off' switches it off as it does the rules cache (it made a folder named off/)
    for off in ("off", "OFF", "none", "0"):
        monkeypatch.setenv("CLAIMWATCH_CACHE_DIR", off)
        assert gazetteer.cache_path() is None, off


def test_signatures_are_datasketchs_minhash() -> None:
    """Signatures are exactly datasketch's MinHash (affine32, seed 1) values, computed without
    importing datasketch (it imports scipy): the stored signatures stay datasketch's."""
    from datasketch import MinHash

    from monitor.incidents import families as fam

    for text in ("The Islamic State claimed responsibility for the attack in Kerman which killed 95 people",
                 "تبنى تنظيم الدولة الإسلامية الهجوم المزدوج في مدينة كرمان الذي استهدف تجمعا قرب قبر قاسم سليماني"):
        ws = fam.words(text)
        m = MinHash(num_perm=fam.NUM_PERM, seed=1, scheme=fam.SCHEME)
        m.update_batch(fam.shingles(ws))
        sig = fam.signature(ws)
        assert sig.values == m.hashvalues.tolist()
        assert fam.Signature.from_blob(sig.to_blob()).values == sig.values
        assert sig.to_blob() == fam._BLOB.pack(sig.shingles, *sig.values)  # the batch's numpy-packed blob
        again = fam.signatures([ws, fam.words("a short text")])  # the shingles' hashes kept from the first
        assert again[0].values == sig.values and again[1] is None


def test_the_ascii_fast_paths_read_the_same_words_and_capitals() -> None:
    """Words (a translation table and a split) and capitalised names (of an ASCII text: runs of
    letters and digits) are those of the general (Unicode) patterns: a word starts at a letter
    (not after digits glued to a letter), ``_`` separates words."""
    from monitor.incidents import families as fam
    from monitor.text import WORD_RE, normalize

    for text in ("The Islamic State claimed it in Kerman, 95 killed", "12Abc a1B foo_Bar 9News X", "_Kabul__ (Herat) x2Y",
                 "ALL CAPS Town", "tab\tNew\nYork's mayor", "", "123 456", "A", "12ab3Cd 0Z9 7 -Q- \x1cRi\x0bGa\x00Xy",
                 "x\u00e9 Caf\u00e9 \u0627\u0644\u0642\u062f\u0633 Ab\u00b2"):
        assert fam.words(text) == WORD_RE.findall(normalize(text))
        general = [w for w in gazetteer._CAP_WORD.findall(text) if w[0].isupper()]
        assert gazetteer._capitalised(text) == set(WORD_RE.findall(normalize(" ".join(general))))
        if text.isascii():
            assert gazetteer._cap_words_ascii(text) == general
    # the ASCII path's lower case for the normalised form, on random ASCII texts
    import random
    rnd = random.Random(5)
    alphabet = [chr(c) for c in range(128)] + list("AZaz09 Kk") * 8
    for _ in range(3000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 24)))
        general = [w for w in gazetteer._CAP_WORD.findall(text) if w[0].isupper()]
        assert gazetteer._capitalised(text) == set(WORD_RE.findall(normalize(" ".join(general)))), repr(text)
        # one form asked about (Gazetteer.find on an ASCII text) as the whole set answers it
        caps = gazetteer._capitalised(text)
        for form in set(fam.words(text)) | caps | {"a", "k", "z", "0a", "ka", "kk"}:
            assert gazetteer._capital_ascii(text, text.lower(), form) == (form in caps), (text, form)


def test_the_cyclic_collector_pauses_for_a_batch_only(tmp_path, monkeypatch) -> None:
    """flush() assigns a transaction's hits with the cyclic collector paused (a speed measure)
    and leaves it as it found it afterwards: on, off, and when the batch fails."""
    import gc

    from monitor.incidents.assign import IncidentTracker

    seen: list[bool] = []
    real = IncidentTracker._assign_one
    fail = {"on": False}

    def spy(self, *args, **kwargs):
        seen.append(gc.isenabled())
        if fail["on"]:
            raise RuntimeError("assignment failed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(IncidentTracker, "_assign_one", spy)
    archive = Archive.open(tmp_path / "a.db")
    was = gc.isenabled()
    try:
        gc.enable()
        _import(archive, tmp_path, KERMAN[:2], "first")
        assert seen and not any(seen) and gc.isenabled()
        fail["on"] = True
        with pytest.raises(RuntimeError, match="assignment failed"):
            _import(archive, tmp_path, KABUL, "fails")
        assert gc.isenabled()  # restored although the batch raised
        assert len(list_incidents(archive.conn)) == 1  # the failed transaction left nothing
        fail["on"] = False
        gc.disable()
        _import(archive, tmp_path, KABUL, "again")
        assert not gc.isenabled()  # a caller's choice is kept
        assert len(list_incidents(archive.conn)) == 2
        _consistent(archive.conn)
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()
        archive.close()


def test_rows_written_as_new_and_old_end_as_an_upsert_would_leave_them(tmp_path) -> None:
    """``_upsert_rows``: new rows inserted, old ones updated from one VALUES list; a row passed
    as new that is in the table already (not what the tracker does) is updated, not lost."""
    import sqlite3

    from monitor.incidents.assign import _upsert_rows

    conn = sqlite3.connect(tmp_path / "u.db", isolation_level=None)
    conn.execute("CREATE TABLE t (a INTEGER NOT NULL, b TEXT NOT NULL, m INTEGER NOT NULL, n TEXT, PRIMARY KEY (a, b))"
                 " WITHOUT ROWID")
    conn.execute("INSERT INTO t VALUES (1, 'x', 1, 'keep'), (2, 'y', 2, 'keep')")
    conn.execute("BEGIN")
    _upsert_rows(conn, "t", ("a", "b"), ("m", "n"), [3, "z", 3, "new"], [1, "x", 10], ("m",))
    assert conn.execute("SELECT * FROM t ORDER BY a").fetchall() == [(1, "x", 10, "keep"), (2, "y", 2, "keep"),
                                                                      (3, "z", 3, "new")]
    _upsert_rows(conn, "t", ("a", "b"), ("m", "n"), [4, "w", 4, "new", 2, "y", 20, "again"], [])
    conn.execute("COMMIT")
    assert conn.execute("SELECT * FROM t ORDER BY a").fetchall() == [(1, "x", 10, "keep"), (2, "y", 20, "again"),
                                                                      (3, "z", 3, "new"), (4, "w", 4, "new")]


def test_an_earlier_message_moves_a_stored_incidents_start_and_a_later_one_leaves_it(tmp_path) -> None:
    """A stored incident's row is rewritten without ``start_at`` unless its first message
    changed (its index entry is then left alone); a backfilled earlier message moves it."""
    archive = Archive.open(tmp_path / "w.db")
    try:
        _import(archive, tmp_path, KERMAN[1:3], "first")  # 12:05 and 14:08
        row = lambda: archive.conn.execute(  # noqa: E731
            "SELECT start_at, end_at, first_message_rowid, messages FROM incidents").fetchall()
        (start, end, first, n), = row()
        assert (start, end, n) == ("2024-01-03T12:05:00Z", "2024-01-03T14:08:00Z", 2)
        _import(archive, tmp_path, KERMAN[3:4], "later")  # 14:20: the end moves, the start stays
        assert row() == [(start, "2024-01-03T14:20:00Z", first, 3)]
        _import(archive, tmp_path, KERMAN[:1], "earlier")  # 11:58, backfilled: the start moves
        (start2, end2, first2, n2), = row()
        assert (start2, end2, n2) == ("2024-01-03T11:58:00Z", "2024-01-03T14:20:00Z", 4) and first2 != first
        assert archive.conn.execute("SELECT id FROM incidents WHERE start_at = ?", (start2,)).fetchone() is not None
        _consistent(archive.conn)
    finally:
        archive.close()
