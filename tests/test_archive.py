"""Archive on real SQLite files: idempotent upsert, versions, hits, outbox, checkpoints."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime, timezone

from monitor.archive import Archive
from monitor.archive.schema import SCHEMA_VERSION
from monitor.model import Deletion, Hit, Match, Message

T0 = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)


def msg(mid: str = "1", text: str = "hello world", **kw) -> Message:
    raw = {"id": mid, "text": text, **{k: str(v) for k, v in kw.items()}}
    return Message("telegram", "100", mid, T0, text, channel="chan", raw=raw, **kw)


HIT = Hit("rule-a", "h1", "high", "Rule A", (Match("sel", "hello", 0, 5),), ("console", "slack"))


def test_store_is_idempotent(archive: Archive) -> None:
    r1 = archive.store([(msg("1"), [HIT]), (msg("2"), [])])
    assert (r1.new, r1.hits, r1.outbox) == (2, 1, 2)
    r2 = archive.store([(msg("1"), [HIT]), (msg("2"), [])])
    assert (r2.new, r2.unchanged, r2.hits, r2.outbox) == (0, 2, 0, 0)
    c = archive.conn
    assert c.execute("select count(*) from messages").fetchone()[0] == 2
    assert c.execute("select count(*) from versions").fetchone()[0] == 2
    assert c.execute("select count(*) from hits").fetchone()[0] == 1
    assert c.execute("select count(*) from outbox").fetchone()[0] == 2


def test_changed_text_adds_version_and_keeps_old(archive: Archive) -> None:
    archive.store([(msg("1", "first text"), [])])
    r = archive.store([(msg("1", "second text", edit_date=T0), [])])
    assert r.edited == 1
    texts = [t for (t,) in archive.conn.execute("select text from versions order by id")]
    assert texts == ["first text", "second text"]
    assert archive.get_message("telegram", "100", "1")["text"] == "second text"


def test_new_rule_version_adds_hit(archive: Archive) -> None:
    archive.store([(msg("1"), [HIT])])
    r = archive.store([(msg("1"), [dataclasses.replace(HIT, rule_hash="h2")])])
    assert r.hits == 1


def test_failed_transaction_leaves_nothing(archive: Archive) -> None:
    def gen():
        yield msg("1"), []
        raise ValueError("broken input")

    try:
        archive.store(gen())
    except ValueError:
        pass
    assert archive.conn.execute("select count(*) from messages").fetchone()[0] == 0
    # The chain head is re-read after a rollback, so the next store links correctly.
    archive.store([(msg("2"), [])])
    assert archive.conn.execute("select count(*) from chain").fetchone()[0] == 1


def test_checkpoint_committed_with_messages(archive: Archive) -> None:
    archive.store([(msg("5"), [])], checkpoints={("telegram", "100"): "5"})
    assert archive.get_checkpoint("telegram", "100") == "5"


def test_mark_deleted_keeps_message(archive: Archive) -> None:
    archive.store([(msg("1"), [])])
    assert len(archive.mark_deleted(Deletion("telegram", "100", ("1",)))) == 1
    row = archive.get_message("telegram", "100", "1")
    assert row["deleted_at"] is not None and row["text"] == "hello world"


def test_fts_search_column_is_normalised_with_proclitic_stems(archive: Archive) -> None:
    archive.store([(msg("1", "وأعلنَت والدولة الإسلامية"), [])])
    rows = archive.conn.execute(
        "select rowid from messages_fts where messages_fts match ?", ('"الدوله"',)
    ).fetchall()
    assert len(rows) == 1


def test_wal_and_schema_version(db_path) -> None:
    Archive.open(db_path).close()
    conn = sqlite3.connect(db_path)
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert conn.execute("select value from meta where key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
