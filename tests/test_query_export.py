"""Export on real archives: canonical JSONL re-import round-trip, CSV fidelity, filters, manifest."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.archive import Archive
from monitor.cli import app
from monitor.model import Deletion, Forward, Hit, Match, Media, Message
from monitor.query.export import CSV_COLUMNS, ExportError, export
from monitor.query.filters import Filters
from monitor.query.verify import load_manifest, verify

runner = CliRunner()
T1 = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)
T2 = datetime(2024, 2, 1, 9, 0, tzinfo=timezone.utc)
HIT = Hit("isis-claims", "h1", "high", "ISIS claims", (Match("kw", "الدولة", 0, 6),), ())
# Columns that describe the archive's own bookkeeping rather than the message.
LOCAL = {"id", "first_seen_at", "updated_at"}


def messages() -> list[tuple[Message, list[Hit]]]:
    return [
        (Message("telegram", "-1001", "1", T1, "أعلنت الدَّوْلَةُ الإسلامية\nمسؤوليتها, \"عن\" الهجوم", channel="amaq",
                 channel_title="Amaq", author="amaq", lang="ar", url="https://t.me/amaq/1",
                 media=(Media("photo", "a.jpg", 1234, "image/jpeg"),), extra={"views": 1200, "ratio": 0.5},
                 raw={"id": 1, "message": "...", "views": 1200, "ratio": 0.5, "nested": {"a": [1, 2.25, None]}}),
         [HIT]),
        (Message("telegram", "-1001", "2", T2, "=HYPERLINK(\"http://evil\") ok", channel="amaq",
                 forwarded_from=Forward("Other", "-100777", "9", T1), reply_to="1", grouped_id="55",
                 raw="not json at all: kept as received"), []),
        (Message("x", "42", "1750000000000000000", T2, "ISIS claimed responsibility 🚩", channel="newsdesk",
                 edit_date=T2, raw={"data": {"id": "1750000000000000000", "text": "ISIS claimed responsibility 🚩"}}),
         []),
        (Message("telegram", "-1002", "3", T2, "", channel="media_only", media=(Media("video"),),
                 raw={"id": 3, "media": True}), []),
    ]


@pytest.fixture
def arch(db_path):
    a = Archive.open(db_path)
    a.store(messages())
    # an edit (second version) and a deletion
    a.store([(Message("telegram", "-1001", "1", T1, "أعلنت الدولة الإسلامية مسؤوليتها (تعديل)", channel="amaq",
                      channel_title="Amaq", edit_date=T2, raw={"id": 1, "message": "edited"}), [])])
    a.mark_deleted(Deletion("telegram", "-1002", ("3",), T2))
    yield a
    a.close()


def table(path: Path, name: str) -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {name} ORDER BY id")]
    finally:
        conn.close()


def comparable(rows: list[dict], drop: set[str] = LOCAL) -> list[dict]:
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in rows), key=lambda r: r["raw_sha256"])


def counts(path: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(path)
    try:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("messages", "versions", "chain"))
    finally:
        conn.close()


def test_jsonl_lines_are_canonical_messages(arch, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    res = export(arch, out)
    assert res.count == 4
    lines = out.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["schema"] for r in records] == ["claimwatch.message/1"] * 4
    assert records[0]["text"] == "أعلنت الدولة الإسلامية مسؤوليتها (تعديل)"  # the current text
    assert records[1]["raw"] == "not json at all: kept as received"
    assert records[1]["forwarded_from"]["id"] == "-100777"
    assert records[2]["message_id"] == "1750000000000000000"
    for line, rec in zip(lines, records):
        assert Message.from_dict(rec).to_dict() == rec


def test_jsonl_reimport_into_same_archive_changes_nothing(arch, db_path, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    export(arch, out)
    before_rows, before_counts = table(db_path, "messages"), counts(db_path)
    r = runner.invoke(app, ["import", str(out), "--format", "canonical", "--no-rules", "--db", str(db_path), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.splitlines()[-1])
    assert (report["read"], report["new"], report["edited"], report["updated"], report["unchanged"]) == (4, 0, 0, 0, 4)
    assert counts(db_path) == before_counts
    assert table(db_path, "messages") == before_rows
    assert verify(arch.conn).ok


def test_jsonl_reimport_into_new_archive_gives_same_rows(arch, db_path, tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    export(arch, out)
    fresh = tmp_path / "fresh.db"
    r = runner.invoke(app, ["import", str(out), "--format", "canonical", "--no-rules", "--db", str(fresh)])
    assert r.exit_code == 0, r.output
    # same message rows (deletion marks are archive events, not part of the message record)
    assert comparable(table(fresh, "messages"), LOCAL | {"deleted_at"}) == comparable(
        table(db_path, "messages"), LOCAL | {"deleted_at"}
    )
    # and exporting the new archive gives the same file
    again = tmp_path / "again.jsonl"
    with Archive.open(fresh) as b:
        export(b, again)
        assert verify(b.conn).ok
    assert again.read_bytes() == out.read_bytes()


def test_filters_select_messages(arch, tmp_path) -> None:
    def keys(**kw) -> list[str]:
        out = tmp_path / "f.jsonl"
        export(arch, out, filters=Filters.build(**kw))
        return [f"{r['platform']}:{r['channel_id']}:{r['message_id']}" for r in map(json.loads, out.open(encoding="utf-8"))]

    assert keys(rule="isis-claims") == ["telegram:-1001:1"]
    assert keys(platform="x") == ["x:42:1750000000000000000"]
    assert keys(since="2024-02-01") == ["telegram:-1001:2", "x:42:1750000000000000000", "telegram:-1002:3"]
    assert keys(until="2024-01-31", channel="amaq") == ["telegram:-1001:1"]
    assert keys(channel="nobody") == []


def test_csv_round_trip_keeps_every_value(arch, db_path, tmp_path) -> None:
    out = tmp_path / "out.csv"
    export(arch, out, fmt="csv")
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    archived = table(db_path, "messages")
    assert len(rows) == len(archived) == 4
    assert list(rows[0]) == list(CSV_COLUMNS)
    for row, db_row in zip(rows, archived):
        assert row["key"] == f"{db_row['platform']}:{db_row['channel_id']}:{db_row['message_id']}"
        for col in CSV_COLUMNS[1:]:
            assert row[col] == ("" if db_row[col] is None else db_row[col]), col
    assert rows[1]["text"].startswith("=HYPERLINK")  # exact by default
    assert rows[3]["deleted_at"] == "2024-02-01T09:00:00Z"


def test_csv_excel_mode(arch, tmp_path) -> None:
    out = tmp_path / "out.csv"
    export(arch, out, fmt="csv", excel=True)
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(data.decode("utf-8-sig").splitlines()))
    assert rows[1]["text"].startswith("'=HYPERLINK")
    assert rows[0]["text"].startswith("أعلنت")


def test_manifest_and_verify(arch, db_path, tmp_path) -> None:
    out, man = tmp_path / "out.jsonl", tmp_path / "out.manifest.json"
    r = runner.invoke(app, ["export", "--db", str(db_path), "--out", str(out), "--manifest", str(man),
                            "--rule", "isis-claims"])
    assert r.exit_code == 0, r.output
    m = json.loads(man.read_text())
    assert m["count"] == 1 and m["chain_length"] == counts(db_path)[2] and m["filters"] == {"rules": ["isis-claims"]}
    assert m["file"] == "out.jsonl" and len(m["file_sha256"]) == 64
    assert m["chain_head"] == arch.conn.execute("SELECT link_sha256 FROM chain ORDER BY seq DESC LIMIT 1").fetchone()[0]

    r = runner.invoke(app, ["verify", "--db", str(db_path), "--manifest", str(man)])
    assert r.exit_code == 0, r.output
    assert "matches the manifest" in r.output

    # the archive grows: the pinned head is still found at its position
    arch.store([(Message("telegram", "-1001", "77", T2, "later", raw={"id": 77}), [])])
    assert verify(arch.conn, manifest=load_manifest(man)).ok

    # the exported file is altered
    out.write_text(out.read_text(encoding="utf-8").replace("الدولة", "الدوله"), encoding="utf-8")
    report = verify(arch.conn, manifest=load_manifest(man))
    assert not report.ok and report.first.table == "export"


def test_export_to_stdout_and_errors(arch, db_path, tmp_path) -> None:
    r = runner.invoke(app, ["export", "--db", str(db_path), "--out", "-", "--platform", "x"])
    assert r.exit_code == 0, r.output
    assert '"message_id":"1750000000000000000"' in r.output

    r = runner.invoke(app, ["export", "--db", str(db_path), "--out", str(tmp_path / "no" / "dir" / "x.jsonl")])
    assert r.exit_code == 2 and "cannot write" in r.output
    r = runner.invoke(app, ["export", "--db", str(db_path), "--out", str(tmp_path / "x"), "--format", "xml"])
    assert r.exit_code == 2 and "unknown format" in r.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()
    with pytest.raises(ExportError, match="--excel"):
        export(arch, tmp_path / "y.jsonl", excel=True)
