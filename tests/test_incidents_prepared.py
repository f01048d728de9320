"""Texts prepared for incident assignment where the hits are produced (``prepare_texts``,
``IncidentTracker.give``; the import's preparer process does it): the writer applies them and
leaves the rows it leaves when it computes them itself. Real archive files, the real import path
(forked preparer and inline) and rules (test_incidents's Kerman scenario)."""

from __future__ import annotations

import sqlite3

from monitor.archive import Archive
from monitor.incidents import assign
from monitor.incidents.assign import IncidentTracker, Incoming, Settings, prepare_texts, text_facts
from monitor.incidents.families import MIN_WORDS, shingles, signatures
from monitor.incidents.gazetteer import load
from monitor.ingest import import_file

from test_incidents import CLAIM_AR, KABUL, KERMAN, matcher, write_jsonl
from test_incidents_memory import LATE_REPOSTS, LATER

TABLES = {
    "incidents": "SELECT id, title, start_at, end_at, first_message_rowid, places, actors, counts, messages, channels,"
                 " merged_into FROM incidents ORDER BY id",
    "families": "SELECT * FROM families ORDER BY id",
    "incident_messages": "SELECT message_rowid, incident_id, family_id, date, platform, channel_id, kind, rules, actors,"
                         " places, how, origin FROM incident_messages ORDER BY message_rowid",
    "family_texts": "SELECT * FROM family_texts ORDER BY id",
    "incident_facets": "SELECT * FROM incident_facets ORDER BY incident_id, facet, value",
}


def _tables(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    return {name: conn.execute(sql).fetchall() for name, sql in TABLES.items()}


def _import_all(tmp_path, name: str, *, preparer: bool, in_memory: int | None = None) -> tuple[Archive, list[int]]:
    """The Kerman week (the Kerman and Kabul messages, later attacks elsewhere, the late
    reposts), file by file; returns the archive and, per file, the texts its writer computed."""
    archive = Archive.open(tmp_path / name)
    tracker = archive.incidents = IncidentTracker(Settings() if in_memory is None else Settings(in_memory=in_memory))
    computed: list[int] = []
    own = tracker._words

    def counted(text):
        computed[-1] += 1
        return own(text)

    tracker._words = counted  # type: ignore[method-assign]
    for i, batch in enumerate([KERMAN[:9] + KABUL, *LATER, LATE_REPOSTS]):
        computed.append(0)
        path = write_jsonl(tmp_path / f"{name}-{i}.jsonl", batch)
        import_file(archive, path, fmt="canonical", matcher=matcher(tmp_path), prepare_process=preparer)
    return archive, computed


def test_an_import_with_the_texts_prepared_in_the_preparer_leaves_the_same_rows(tmp_path) -> None:
    for in_memory in (None, 1):  # (1: the Kerman incident is evicted before its late reposts)
        inline, computed_inline = _import_all(tmp_path, f"inline{in_memory}.db", preparer=False, in_memory=in_memory)
        forked, computed_forked = _import_all(tmp_path, f"forked{in_memory}.db", preparer=True, in_memory=in_memory)
        try:
            a, b = _tables(inline.conn), _tables(forked.conn)
            assert a == b
            assert len(a["incidents"]) >= 5 and len(a["family_texts"]) >= 10
            kerman = [r for r in a["incidents"] if "Kerman" in r[1]]
            assert len(kerman) == 1 and kerman[0][8] >= 10  # the week's messages and reposts: one incident
            # inline, the writer computed every text; with the preparer, none (each was given)
            assert sum(computed_inline) >= 10
            assert computed_forked == [0] * len(computed_forked)
            assert not forked.incidents._given  # each given text taken once
        finally:
            inline.close()
            forked.close()


def test_prepared_texts_are_the_writers_own_values() -> None:
    gaz = load()
    texts = [r["text"] for r in KERMAN + KABUL] + [CLAIM_AR, "", "short text in Kerman"]
    prepared = prepare_texts(texts, gaz)
    sigs = signatures([text_facts(t, gaz)[0] for t in texts])
    for text, prep, sig in zip(texts, prepared, sigs):
        ws, fp, places, others = text_facts(text, gaz)
        assert prep[:5] == (ws, fp, [tuple(p) for p in places], assign._jl([p.id for p in places]), others)
        if len(ws) < MIN_WORDS:
            assert prep[5:] == (None, None, None) and sig is None
        else:
            assert prep[5:] == (sig.to_blob(), sig.band_keys(), shingles(ws))
    # and through the writer: what _words and the signature give
    tracker = IncidentTracker(gazetteer=gaz)
    for text, prep in zip(texts, prepared):
        got, sig = tracker._from_prepared(text, prep)
        assert got == IncidentTracker(gazetteer=gaz)._words(text)
        if sig is not None:
            assert sig.band_keys() == sig.band_keys() and sig.to_blob() == prep[5]


def test_given_texts_are_bounded_and_taken_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(assign, "GIVEN_TEXTS", 3)
    texts = [r["text"] for r in KERMAN[:5]]
    tracker = IncidentTracker()
    tracker.give(zip(texts, prepare_texts(texts)))
    assert list(tracker._given) == texts[:3]  # full: the others are computed by the writer
    archive = Archive.open(tmp_path / "a.db")
    try:
        archive.incidents = tracker
        with archive.transaction():
            for i, text in enumerate(texts):
                tracker.queue(Incoming(1000 + i, "telegram", "100", str(i), KERMAN[i]["date"], text, None, "report",
                                       ["r"], []), "now", new=True)
        assert not tracker._given
    finally:
        archive.close()
