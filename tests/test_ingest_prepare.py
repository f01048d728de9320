"""Imports with the rows prepared in a forked process give the archive an inline import gives."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from monitor.archive import Archive
from monitor.ingest import import_file
from monitor.model import Message
from monitor.query.verify import verify
from monitor.sources.files import InputError, canonical_line
from rules_helpers import matcher_for

UTC = timezone.utc
MESSAGE_COLUMNS = ("platform, channel_id, message_id, channel, channel_title, date, edit_date, author, text, lang,"
                   " url, reply_to, forwarded_from, media, grouped_id, extra, raw, raw_sha256, search_text")


def tg(mid: int, text: Any, **kw: Any) -> dict[str, Any]:
    return {"id": mid, "type": "message", "date": "2024-01-04T16:49:30", "date_unixtime": str(1704373770 + mid),
            "from": "Test Channel", "from_id": "channel555", **kw, "text": text}


def export(path: Path, messages: list[dict]) -> Path:
    doc = {"name": "Test Channel", "type": "public_channel", "id": 555, "messages": messages}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def content(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        return {
            "messages": conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY id").fetchall(),
            "versions": conn.execute("SELECT message_rowid, text, text_sha256, edit_date, raw, raw_sha256,"
                                     " record_sha256 FROM versions ORDER BY id").fetchall(),
            "chain": conn.execute("SELECT version_id, msg_key, record_sha256, link_sha256 FROM chain ORDER BY seq").fetchall(),
            "hits": conn.execute("SELECT message_rowid, rule_id, text_sha256 FROM hits ORDER BY id").fetchall(),
            "fts": conn.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'statement' ORDER BY rowid").fetchall(),
        }
    finally:
        conn.close()


def files(tmp_path: Path) -> list[Path]:
    msgs = [tg(i, f"statement number {i}" if i % 3 else [f"claim {i} ", {"type": "bold", "text": "bold"}, " tail"],
               **({"photo": f"photos/p{i}.jpg", "width": 10, "height": 5} if i % 7 == 0 else {}))
            for i in range(1, 1200)]
    msgs.insert(100, {"id": 5000, "type": "service", "date": "2024-01-04T16:49:30", "date_unixtime": "1704373770",
                      "actor": "Test Channel", "action": "pin_message", "message_id": 3, "text": ""})
    first = export(tmp_path / "result.json", msgs)
    t = datetime(2024, 1, 4, tzinfo=UTC)
    lines = [canonical_line(Message("x", "9", str(i), t, f"statement x{i}", raw={"i": i})) for i in range(1, 1200)]
    # an edit (new text) and a metadata change (same text, new raw) of earlier lines, and a repeat
    lines.append(canonical_line(Message("x", "9", "5", t, "statement x5 edited", edit_date=t, raw={"i": 5, "e": 1})))
    lines.append(canonical_line(Message("x", "9", "6", t, "statement x6", raw={"i": 6, "views": 3})))
    lines.append(lines[10])
    # more new messages, one of them twice close together (same chunk)
    more = [canonical_line(Message("x", "9", str(i), t, f"statement x{i}", raw={"i": i})) for i in range(1200, 1700)]
    lines += more[:300] + [more[250]] + more[300:]
    second = tmp_path / "more.jsonl"
    second.write_text("".join(lines), encoding="utf-8")
    return [first, second]


RULE = "id: claims\ntitle: Claim\nlevel: high\nmatch:\n  sel:\n    any: [\"claim\"]\n"


def test_same_archive_with_and_without_the_preparer(tmp_path: Path) -> None:
    paths = files(tmp_path)
    matcher = matcher_for(tmp_path, RULE)
    reports = {}
    for mode in (False, True):
        db = tmp_path / f"{mode}.db"
        with Archive.open(db) as archive:
            reports[mode] = [import_file(archive, p, matcher=matcher, prepare_process=mode).as_dict() for p in paths]
            reports[mode] += [import_file(archive, p, matcher=matcher, prepare_process=mode).as_dict() for p in paths]
            report = verify(archive.conn)
            assert report.ok, report.problems
    assert reports[True] == reports[False]
    first = reports[True][0]
    assert (first["read"], first["skipped_service"], first["new"]) == (1199, 1, 1199)
    assert first["hits"] == 399  # every third message has "claim"
    assert (reports[True][1]["new"], reports[True][1]["edited"], reports[True][1]["updated"]) == (1699, 1, 1)
    assert reports[True][1]["unchanged"] == 2
    assert reports[True][2]["unchanged"] == 1199 and reports[True][2]["new"] == 0
    a, b = content(tmp_path / "False.db"), content(tmp_path / "True.db")
    assert a == b
    assert len(a["fts"]) == 1199 - 399 + 1699  # the "statement" texts (x5's edit included)


def test_an_error_rolls_the_whole_file_back_and_names_the_position(tmp_path: Path) -> None:
    msgs = [tg(i, f"statement {i}") for i in range(1, 2501)]
    del msgs[2200]["date_unixtime"]
    p = export(tmp_path / "result.json", msgs)
    with Archive.open(tmp_path / "a.db") as archive:
        with pytest.raises(InputError, match=r"messages\[2200\] \(id 2201\): missing required field 'date_unixtime'"):
            import_file(archive, p, prepare_process=True)
        c = archive.conn
        assert [c.execute(f"select count(*) from {t}").fetchone()[0] for t in ("messages", "versions", "chain")] == [0, 0, 0]
        seen: list[int] = []
        report = import_file(archive, p, skip_bad=True, prepare_process=True, progress=seen.append)
        assert (report.read, report.bad, report.result.new) == (2499, 1, 2499)
        assert "id 2201" in report.bad_examples[0]
        assert seen == sorted(seen) and seen[-1] == p.stat().st_size
        assert verify(c).ok


def test_an_unreadable_file_is_reported_as_by_the_inline_reader(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('{"name": "x", "id": 1, "messages": [{"id": 1, "type": "message"', encoding="utf-8")
    with Archive.open(tmp_path / "a.db") as archive:
        with pytest.raises(InputError) as inline:
            import_file(archive, p, prepare_process=False)
        with pytest.raises(InputError) as forked:
            import_file(archive, p, prepare_process=True)
        assert str(forked.value) == str(inline.value) and "broken.json" in str(forked.value)
        with pytest.raises(InputError, match="no such file"):
            import_file(archive, tmp_path / "missing.json", prepare_process=True)


def test_reimport_with_stored_records_changing_inside_the_file(tmp_path: Path) -> None:
    """The preparer leaves out work for records it sees stored already; a record the same
    file changes again before it comes by still gets its search column and version."""
    t = datetime(2024, 1, 4, tzinfo=UTC)

    def line(mid: int, text: str, v: int) -> str:
        return canonical_line(Message("x", "9", str(mid), t, text, raw={"i": mid, "v": v}))

    first = tmp_path / "first.jsonl"
    first.write_text("".join(line(i, f"statement two {i}", 2) for i in range(1, 1500)), encoding="utf-8")
    again = tmp_path / "again.jsonl"
    again.write_text("".join([line(7, "statement one 7", 1), line(7, "statement two 7", 2)]
                             + [line(i, f"statement two {i}", 2) for i in range(1, 1500)]), encoding="utf-8")
    reports, contents = [], []
    for mode in (False, True):
        db = tmp_path / f"{mode}.db"
        with Archive.open(db) as archive:
            reports.append([import_file(archive, p, prepare_process=mode).as_dict() for p in (first, again)])
            assert verify(archive.conn).ok
            hits = archive.conn.execute(
                "SELECT m.message_id FROM messages_fts f JOIN messages m ON m.id = f.rowid"
                " WHERE messages_fts MATCH '\"two 7\"'").fetchall()
            assert hits == [("7",)]
        contents.append(content(db))
    assert reports[0] == reports[1]
    assert contents[0] == contents[1]
