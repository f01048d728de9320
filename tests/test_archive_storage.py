"""Storage layout: a version shares its message row's raw record (schema 2), migration of
schema-1 archives, and the lone-surrogate fast path of JSONL lines."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from monitor.archive import Archive
from monitor.archive.schema import MIGRATIONS, SCHEMA_VERSION
from monitor.archive.chain import GENESIS, chain_link
from monitor.archive.rows import record_hash
from monitor.model import Message, canonical_json
from monitor.query.verify import verify
from monitor.sources.files import canonical_line, parse_jsonl_record
from monitor.sources.surrogates import json_may_have_surrogates

T = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)


def msg(mid: str, text: str, **raw_extra: str) -> Message:
    return Message("telegram", "-1001", mid, T, text, channel="amaq", raw={"id": mid, "text": text, **raw_extra})


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def version_raws(a: Archive, mid: str) -> list[str | None]:
    return [r for (r,) in a.conn.execute(
        "SELECT v.raw FROM versions v JOIN messages m ON m.id = v.message_rowid WHERE m.message_id=? ORDER BY v.id",
        (mid,))]


def test_raw_record_is_stored_once_and_kept_when_replaced(db_path: Path) -> None:
    with Archive.open(db_path) as a:
        first = msg("1", "بيان رقم 1")
        a.store([(first, [])])
        assert version_raws(a, "1") == [None]  # the message row holds it
        assert verify(a.conn).ok
        # same text, new metadata: the message row's raw changes, the version keeps the old one
        a.store([(msg("1", "بيان رقم 1", views="900"), [])])
        assert version_raws(a, "1") == [first.raw_json()]
        assert verify(a.conn).ok
        # an edit: a second version with its own raw; the first keeps its record
        edited = msg("1", "بيان رقم 1 معدل")
        a.store([(edited, [])])
        assert version_raws(a, "1") == [first.raw_json(), edited.raw_json()]
        assert verify(a.conn).ok
        # unchanged re-store of a new message: still shared
        a.store([(msg("2", "بيان رقم 2"), [])])
        a.store([(msg("2", "بيان رقم 2"), [])])
        assert version_raws(a, "2") == [None]
        report = verify(a.conn)
        assert report.ok, report.problems


def test_a_removed_version_raw_is_detected(db_path: Path) -> None:
    with Archive.open(db_path) as a:
        a.store([(msg("1", "نص"), [])])
        a.store([(msg("1", "نص", views="5"), [])])  # version 1 now holds its own raw
        a.conn.execute("UPDATE versions SET raw=NULL")
        p = verify(a.conn).first
        assert p is not None and (p.kind, p.table, p.key) == ("altered", "versions", "telegram:-1001:1")


def test_a_forged_shared_raw_is_detected(db_path: Path) -> None:
    with Archive.open(db_path) as a:
        a.store([(msg("1", "نص"), [])])
        raw = '{"id":"1","text":"نص","views":"1"}'
        a.conn.execute("UPDATE messages SET raw=?, raw_sha256=?", (raw, sha(raw)))
        report = verify(a.conn)
        assert not report.ok
        assert {(p.table, p.key) for p in report.problems} >= {("messages", "telegram:-1001:1")}


def _schema1_archive(path: Path) -> None:
    """A schema-1 archive written the old way (the raw record in both rows)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    MIGRATIONS[0](conn)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    link = GENESIS
    for mid, raws in (("1", ['{"id":"1"}']), ("2", ['{"id":"2"}', '{"id":"2","views":"3"}'])):
        key, text = f"telegram:-1001:{mid}", f"text {mid}"
        current = raws[-1]
        rowid = conn.execute(
            "INSERT INTO messages(platform, channel_id, message_id, date, text, raw, raw_sha256, search_text,"
            " first_seen_at, updated_at) VALUES ('telegram','-1001',?,'2024-01-04T15:00:00Z',?,?,?,?,'x','x')",
            (mid, text, current, sha(current), text),
        ).lastrowid
        rec = record_hash(key, text, sha(raws[0]))
        vid = conn.execute(
            "INSERT INTO versions(message_rowid, text, text_sha256, raw, raw_sha256, record_sha256, seen_at)"
            " VALUES (?,?,?,?,?,?,'x')", (rowid, text, sha(text), raws[0], sha(raws[0]), rec),
        ).lastrowid
        for raw in raws:
            rec = record_hash(key, text, sha(raw))
            link = chain_link(link, rec)
            conn.execute("INSERT INTO chain(version_id, msg_key, record_sha256, link_sha256) VALUES (?,?,?,?)",
                         (vid, key, rec, link))
    conn.close()


def test_schema1_archive_is_migrated_and_verifies(db_path: Path) -> None:
    _schema1_archive(db_path)
    with Archive.open(db_path) as a:
        version = a.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        assert version == str(SCHEMA_VERSION)
        # the duplicate (message 1) is dropped, the replaced one (message 2) kept
        assert version_raws(a, "1") == [None]
        assert version_raws(a, "2") == ['{"id":"2"}']
        report = verify(a.conn)
        assert report.ok, report.problems
        assert (report.messages, report.versions, report.chain) == (2, 2, 3)
        # and it keeps working: an edit of message 1
        a.store([(Message("telegram", "-1001", "1", T, "text 1 edited", raw={"id": "1", "e": 1}), [])])
        assert version_raws(a, "1") == ['{"id":"1"}', canonical_json({"id": "1", "e": 1})]
        assert verify(a.conn).ok


def test_surrogate_scan_of_json_lines() -> None:
    assert not json_may_have_surrogates(b'{"text":"\\u0627 plain \xd8\xa7"}')
    assert json_may_have_surrogates(b'{"text":"cut \\ud83d"}')
    assert json_may_have_surrogates(b'{"text":"cut \\uDE00"}')
    assert json_may_have_surrogates('{"t":"\ud83d"}'.encode("utf-8", "surrogatepass"))


def test_canonical_line_with_lone_surrogate_is_scrubbed_and_plain_line_is_unchanged() -> None:
    line = canonical_line(msg("7", "cut here")).replace("cut here", "cut \\ud83d").encode()
    assert json_may_have_surrogates(line)
    (m,) = parse_jsonl_record(json.loads(line), scrub=json_may_have_surrogates(line))
    assert m.text == "cut \ufffd"
    m.text.encode("utf-8")  # storable
    plain = msg("8", "نص عادي")
    line = canonical_line(plain).encode()
    assert not json_may_have_surrogates(line)
    assert parse_jsonl_record(json.loads(line), scrub=False) == [plain]


def test_a_big_store_call_inside_an_outer_transaction_matches_one_by_one(tmp_path: Path) -> None:
    """The daemon's writer stores batches of new messages in its own transaction: the bulk
    path (one executemany per table, trigger swapped) gives the rows, hits, outbox rows and
    outcomes that storing them one by one gives, and leaves the triggers and index intact."""
    from monitor.model import Hit, Match

    def batch() -> list[tuple[Message, list[Hit]]]:
        out = []
        for i in range(300):
            m = Message("telegram", "-1002", str(i), T, f"claim number {i}", channel="c", raw={"i": i})
            hit = Hit("r1", "h1", "high", "Claim", (Match("sel", "claim", 0, 5),), ("slack",), kind="claim",
                      actors=("houthis", "iran") if i % 20 == 0 else ())
            hits = [hit] if i % 10 == 0 else []
            out.append((m, hits))
        return out

    results, contents = [], []
    for name, size in (("bulk", 300), ("single", 1)):
        db = tmp_path / f"{name}.db"
        with Archive.open(db) as a:
            triggers = a.conn.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' ORDER BY name").fetchall()
            items = batch()
            with a.lock, a.transaction():
                res = [a.store(items[k:k + size]) for k in range(0, len(items), size)]
            results.append(([(o.key, o.status, o.message_rowid, len(o.new_hit_ids), len(o.new_outbox_ids))
                             for r in res for o in r.outcomes], sum(r.new for r in res), sum(r.outbox for r in res)))
            assert a.conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type='trigger' ORDER BY name").fetchall() == triggers
            a.conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)")
            assert a.conn.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH '\"number 250\"'").fetchone() == (1,)
            assert verify(a.conn).ok
            contents.append((
                a.conn.execute("SELECT platform, channel_id, message_id, text, raw, search_text FROM messages ORDER BY id").fetchall(),
                a.conn.execute("SELECT message_rowid, text, raw, record_sha256 FROM versions ORDER BY id").fetchall(),
                a.conn.execute("SELECT version_id, msg_key, link_sha256 FROM chain ORDER BY seq").fetchall(),
                a.conn.execute("SELECT message_rowid, rule_id, kind, actors FROM hits ORDER BY id").fetchall(),
                a.conn.execute("SELECT hit_id, destination, kind FROM outbox ORDER BY id").fetchall(),
            ))
    assert results[0] == results[1]
    assert results[0][1:] == (300, 30)
    assert contents[0][3][:2] == [(1, "r1", "claim", '["houthis","iran"]'), (11, "r1", "claim", None)]
    assert contents[0] == contents[1]


def test_new_archives_use_8k_pages_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    with Archive.open(tmp_path / "new.db") as a:
        assert a.conn.execute("PRAGMA page_size").fetchone() == (8192,)
    old = tmp_path / "old.db"
    # 4 kB pages: an archive begun before 8 kB pages (claimwatch's first table is meta; a
    # file with only other programs' tables is refused, see test_cli_errors)
    sqlite3.connect(old).execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)").connection.close()
    with Archive.open(old) as a:
        assert a.conn.execute("PRAGMA page_size").fetchone() == (4096,)
        a.store([(msg("1", "نص"), [])])
        assert verify(a.conn).ok


def test_schema2_archive_gets_hit_kind_and_actors(db_path: Path) -> None:
    """Migration 3: existing hits become kind 'watch' with no actors; new hits store both."""
    from monitor.model import Hit, Match

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    MIGRATIONS[0](conn)
    MIGRATIONS[1](conn)
    if conn.in_transaction:  # migration 2 opens its own transaction
        conn.execute("COMMIT")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    rowid = conn.execute(
        "INSERT INTO messages(platform, channel_id, message_id, date, text, raw, raw_sha256, search_text,"
        " first_seen_at, updated_at) VALUES ('telegram','-1001','1','2024-01-04T15:00:00Z','old',"
        " '{}', 'x', 'old', 'x', 'x')").lastrowid
    conn.execute("INSERT INTO hits(message_rowid, rule_id, rule_hash, level, matches, text_sha256, created_at)"
                 " VALUES (?, 'old-rule', 'h', 'high', '[]', 's', '2024-01-04T15:00:00Z')", (rowid,))
    conn.close()
    with Archive.open(db_path) as a:
        assert a.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert a.conn.execute("SELECT rule_id, kind, actors FROM hits").fetchall() == [("old-rule", "watch", None)]
        plan = a.conn.execute("EXPLAIN QUERY PLAN SELECT id FROM hits WHERE kind='claim' ORDER BY created_at DESC").fetchall()
        assert any("idx_hits_kind" in str(row) for row in plan)
        hit = Hit("new-rule", "h2", "high", "New", (Match("sel", "claim", 0, 5),), (), kind="statement", actors=("iran",))
        a.store([(msg("2", "claim"), [hit])])
        assert a.conn.execute("SELECT kind, actors FROM hits WHERE rule_id='new-rule'").fetchall() == [("statement", '["iran"]')]
