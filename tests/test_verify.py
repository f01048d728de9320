"""Integrity: tampering with the SQLite file by hand is detected by verify (library and CLI)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.archive import Archive
from monitor.archive.chain import GENESIS, chain_link
from monitor.archive.rows import record_hash
from monitor.cli import app
from monitor.model import Message
from monitor.query.verify import ManifestError, load_manifest, verify

runner = CliRunner()
T = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)


def msg(mid: str, text: str, **kw) -> Message:
    raw = {"id": mid, "text": text, **{k: str(v) for k, v in kw.items()}}
    return Message("telegram", "-1001", mid, T, text, channel="amaq", raw=raw, **kw)


@pytest.fixture
def built(db_path: Path) -> Path:
    with Archive.open(db_path) as a:
        a.store([(msg(str(i), f"بيان رقم {i} عن الدولة"), []) for i in range(1, 6)])
        a.store([(msg("2", "بيان رقم 2 معدل", edit_date=T), [])])  # a second version
        a.store([(Message("telegram", "-1001", "3", T, "بيان رقم 3 عن الدولة", channel="amaq",
                          raw={"id": "3", "text": "بيان رقم 3 عن الدولة", "views": "900"}), [])])  # new raw, same text
        a.store([(Message("x", "42", "9", T, "ISIS claimed it", raw={"id": "9"}), [])])
    return db_path


def tamper(path: Path, *sql: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for i, statement in enumerate(sql):
            conn.execute(statement, params if i == 0 else ())
    conn.close()


def check(path: Path):
    conn = sqlite3.connect(path)
    try:
        return verify(conn)
    finally:
        conn.close()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_untouched_archive_verifies(built) -> None:
    report = check(built)
    assert report.ok, report.problems
    assert (report.messages, report.versions, report.chain) == (6, 7, 8)
    conn = sqlite3.connect(built)
    # the chain head is recomputable from genesis
    link = GENESIS
    for (rec,) in conn.execute("SELECT record_sha256 FROM chain ORDER BY seq"):
        link = chain_link(link, rec)
    assert report.head == link


def test_changed_message_text(built) -> None:
    tamper(built, "UPDATE messages SET text='بيان رقم 4 عن الحكومة' WHERE message_id='4'")
    p = check(built).first
    assert (p.kind, p.table, p.key) == ("altered", "messages", "telegram:-1001:4")


def test_changed_message_text_to_an_older_version(built) -> None:
    tamper(built, "UPDATE messages SET text='بيان رقم 2 عن الدولة' WHERE message_id='2'")
    p = check(built).first
    assert (p.kind, p.table, p.key) == ("altered", "messages", "telegram:-1001:2")


def test_changed_version_text(built) -> None:
    tamper(built, "UPDATE versions SET text='forged' WHERE id=1")
    p = check(built).first
    assert (p.kind, p.table, p.rowid, p.key) == ("altered", "versions", 1, "telegram:-1001:1")


def test_changed_version_text_with_recomputed_hashes_breaks_the_chain(built) -> None:
    key = "telegram:-1001:1"
    raw_sha = sqlite3.connect(built).execute("SELECT raw_sha256 FROM versions WHERE id=1").fetchone()[0]
    forged = record_hash(key, "forged", raw_sha)
    tamper(built, "UPDATE versions SET text='forged', text_sha256=?, record_sha256=? WHERE id=1",
           "UPDATE messages SET text='forged' WHERE id=1", params=(sha("forged"), forged, ))
    p = check(built).first
    assert (p.kind, p.key) == ("altered", key)
    # and if the chain record is rewritten too, its link no longer follows
    tamper(built, "UPDATE chain SET record_sha256=? WHERE seq=1", params=(forged,))
    p = check(built).first
    assert (p.kind, p.table, p.rowid, p.key) == ("altered", "chain", 1, key)


def test_changed_raw_record(built) -> None:
    tamper(built, """UPDATE messages SET raw='{"id":"5","text":"x"}' WHERE message_id='5'""")
    p = check(built).first
    assert (p.kind, p.table, p.key) == ("altered", "messages", "telegram:-1001:5")
    assert "raw_sha256" in p.detail


def test_raw_replaced_with_matching_hash(built) -> None:
    raw = '{"id":"3","text":"بيان رقم 3 عن الدولة","views":"1"}'
    tamper(built, "UPDATE messages SET raw=?, raw_sha256=? WHERE message_id='3'", params=(raw, sha(raw)))
    p = check(built).first
    assert (p.kind, p.table, p.key) == ("altered", "messages", "telegram:-1001:3")
    assert "not one of its chained records" in p.detail


def test_deleted_message_row(built) -> None:
    tamper(built, "DELETE FROM messages WHERE message_id='4'")
    p = check(built).first
    assert (p.kind, p.table, p.key) == ("removed", "messages", "telegram:-1001:4")


def test_deleted_message_with_its_versions(built) -> None:
    tamper(built, "DELETE FROM versions WHERE message_rowid=(SELECT id FROM messages WHERE message_id='4')",
           "DELETE FROM messages WHERE message_id='4'")
    p = check(built).first
    assert (p.kind, p.table, p.key) == ("removed", "versions", "telegram:-1001:4")


def test_deleted_message_versions_and_chain_row(built) -> None:
    tamper(built, "DELETE FROM chain WHERE msg_key='telegram:-1001:4'",
           "DELETE FROM versions WHERE message_rowid=(SELECT id FROM messages WHERE message_id='4')",
           "DELETE FROM messages WHERE message_id='4'")
    p = check(built).first
    assert (p.kind, p.table, p.rowid) == ("removed", "chain", 4)


def test_inserted_message_row(built) -> None:
    raw = '{"id":"66"}'
    tamper(built, "INSERT INTO messages(platform, channel_id, message_id, date, text, raw, raw_sha256, first_seen_at,"
           " updated_at) VALUES ('telegram','-1001','66','2024-01-04T15:00:00Z','fake claim',?,?,'x','x')",
           params=(raw, sha(raw)))
    p = check(built).first
    assert (p.kind, p.table, p.key) == ("inserted", "messages", "telegram:-1001:66")


def test_inserted_message_with_its_own_version(built) -> None:
    raw, key = '{"id":"66"}', "telegram:-1001:66"
    tamper(built, "INSERT INTO messages(id, platform, channel_id, message_id, date, text, raw, raw_sha256,"
           " first_seen_at, updated_at) VALUES (100,'telegram','-1001','66','2024-01-04T15:00:00Z','fake',?,?,'x','x')",
           params=(raw, sha(raw)))
    tamper(built, "INSERT INTO versions(message_rowid, text, text_sha256, raw, raw_sha256, record_sha256, seen_at)"
           " VALUES (100, 'fake', ?, ?, ?, ?, 'x')", params=(sha("fake"), raw, sha(raw), record_hash(key, "fake", sha(raw))))
    p = check(built).first
    assert (p.kind, p.table, p.key) == ("inserted", "versions", key)


def test_inserted_chain_row_in_the_middle(built) -> None:
    conn = sqlite3.connect(built)
    rows = conn.execute("SELECT seq, version_id, msg_key, record_sha256, link_sha256 FROM chain ORDER BY seq").fetchall()
    conn.close()
    # shift rows 3.. up by one and insert a forged record at 3 with a correct link from 2
    forged = record_hash("telegram:-1001:77", "forged", sha("{}"))
    stmts = [f"UPDATE chain SET seq = seq + 100 WHERE seq >= 3", "UPDATE chain SET seq = seq - 99 WHERE seq >= 103",
             "INSERT INTO chain(seq, version_id, msg_key, record_sha256, link_sha256) VALUES "
             f"(3, 1, 'telegram:-1001:77', '{forged}', '{chain_link(rows[1][4], forged)}')"]
    tamper(built, *stmts)
    p = check(built).first
    assert p.table == "chain" and p.rowid == 3
    assert p.kind in ("altered", "inserted")


def test_removed_newest_records_need_the_manifest(built, tmp_path) -> None:
    man = tmp_path / "m.json"
    r = runner.invoke(app, ["export", "--db", str(built), "--out", str(tmp_path / "e.jsonl"), "--manifest", str(man)])
    assert r.exit_code == 0, r.output
    # drop the newest message entirely (its row, version and chain record): consistent without the manifest
    tamper(built, "DELETE FROM chain WHERE msg_key='x:42:9'",
           "DELETE FROM versions WHERE message_rowid=(SELECT id FROM messages WHERE platform='x')",
           "DELETE FROM messages WHERE platform='x'")
    assert check(built).ok
    conn = sqlite3.connect(built)
    report = verify(conn, manifest=load_manifest(man))
    assert not report.ok and (report.first.kind, report.first.table) == ("removed", "manifest")


def test_rewritten_chain_is_caught_by_the_manifest(built, tmp_path) -> None:
    man = tmp_path / "m.json"
    runner.invoke(app, ["export", "--db", str(built), "--out", str(tmp_path / "e.jsonl"), "--manifest", str(man)])
    # forge version 1 and rebuild every hash after it: internally consistent again
    conn = sqlite3.connect(built)
    with conn:
        raw_sha = conn.execute("SELECT raw_sha256 FROM versions WHERE id=1").fetchone()[0]
        rec = record_hash("telegram:-1001:1", "forged", raw_sha)
        conn.execute("UPDATE versions SET text='forged', text_sha256=?, record_sha256=? WHERE id=1", (sha("forged"), rec))
        conn.execute("UPDATE messages SET text='forged' WHERE id=1")
        conn.execute("UPDATE chain SET record_sha256=? WHERE seq=1", (rec,))
        link = GENESIS
        for seq, r in conn.execute("SELECT seq, record_sha256 FROM chain ORDER BY seq").fetchall():
            link = chain_link(link, r)
            conn.execute("UPDATE chain SET link_sha256=? WHERE seq=?", (link, seq))
    assert verify(conn).ok  # the limit of a chain without an outside anchor
    report = verify(conn, manifest=load_manifest(man))
    assert not report.ok and (report.first.kind, report.first.table) == ("altered", "manifest")


def test_cli_reports_first_problem_with_key_and_exits_1(built) -> None:
    r = runner.invoke(app, ["verify", "--db", str(built)])
    assert r.exit_code == 0 and "OK" in r.output
    tamper(built, "UPDATE messages SET text='x' WHERE message_id='5'", "DELETE FROM messages WHERE message_id='1'")
    r = runner.invoke(app, ["verify", "--db", str(built)])
    assert r.exit_code == 1
    assert "FAILED" in r.output and "removed: messages row 1 [telegram:-1001:1]" in r.output
    assert "telegram:-1001:5" in r.output
    r = runner.invoke(app, ["verify", "--db", str(built), "--json"])
    d = json.loads(r.output)
    assert r.exit_code == 1 and d["ok"] is False and d["problem_count"] == 2
    assert d["first_problem"]["key"] == "telegram:-1001:1"


def test_bad_manifest_is_a_clear_error(built, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = runner.invoke(app, ["verify", "--db", str(built), "--manifest", str(bad)])
    assert r.exit_code == 2 and "bad.json" in r.output and "Traceback" not in r.output
    bad.write_text('{"chain_head": "00"}')
    with pytest.raises(ManifestError, match="chain_length"):
        load_manifest(bad)
    r = runner.invoke(app, ["verify", "--db", str(built), "--manifest", str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and "no such manifest" in r.output


def test_verify_does_not_write(built) -> None:
    before = built.read_bytes()
    with Archive.open(built, readonly=True) as a:
        assert verify(a.conn).ok
    assert built.read_bytes() == before
