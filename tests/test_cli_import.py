"""`claimwatch import` end to end: real files, a real SQLite archive, typer's CliRunner
(and one real subprocess). Input errors: one line naming file and position, exit code 2."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from monitor.cli import app

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
TG = SAMPLES / "telegram" / "result.json"
TG_ACCOUNT = SAMPLES / "telegram" / "account-export.json"
X = SAMPLES / "x" / "tweets.jsonl"

runner = CliRunner()


def run(db: Path, *args: str) -> Any:
    return runner.invoke(app, ["import", *args, "--db", str(db), "--no-rules", "--json"], env={"COLUMNS": "300"})


def reports(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def counts(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(db) as c:
        return tuple(c.execute(f"select count(*) from {t}").fetchone()[0] for t in ("messages", "versions", "chain"))  # type: ignore[return-value]


def error_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_import_samples_then_reimport_is_idempotent(db_path: Path) -> None:
    r = run(db_path, str(TG), str(TG_ACCOUNT), str(X))
    assert r.exit_code == 0, r.stderr
    first = reports(r)
    assert [(d["format"], d["read"], d["new"], d["skipped_service"], d["bad"]) for d in first] == [
        ("telegram", 22, 22, 4, 0), ("telegram", 12, 12, 2, 0), ("x", 14, 14, 0, 0)]
    assert counts(db_path) == (48, 48, 48)
    r2 = run(db_path, str(TG), str(TG_ACCOUNT), str(X))
    assert r2.exit_code == 0, r2.stderr
    again = reports(r2)
    assert [(d["read"], d["new"], d["edited"], d["updated"], d["unchanged"]) for d in again] == [
        (22, 0, 0, 0, 22), (12, 0, 0, 0, 12), (14, 0, 0, 0, 14)]
    assert counts(db_path) == (48, 48, 48)  # no duplicate rows, no new versions


def test_reimport_with_a_changed_text_adds_a_version(tmp_path: Path, db_path: Path) -> None:
    export = tmp_path / "result.json"
    export.write_bytes(TG.read_bytes())
    assert run(db_path, str(export)).exit_code == 0
    doc = json.loads(export.read_text(encoding="utf-8"))
    target = next(m for m in doc["messages"] if m["id"] == 9)
    old_text = "".join(p if isinstance(p, str) else p["text"] for p in target["text"])
    target["text"] = old_text.replace("كرمان", "كرمان الإيرانية")
    target["edited_unixtime"] = str(int(target["edited_unixtime"]) + 600)
    export.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    r = run(db_path, str(export))
    assert r.exit_code == 0, r.stderr
    (d,) = reports(r)
    assert (d["new"], d["edited"], d["unchanged"]) == (0, 1, 21)
    with sqlite3.connect(db_path) as c:
        texts = [t for (t,) in c.execute(
            "select v.text from versions v join messages m on m.id = v.message_rowid where m.message_id='9' order by v.id")]
        current = c.execute("select text from messages where message_id='9'").fetchone()[0]
    assert texts == [old_text, current] and "كرمان الإيرانية" in current
    assert counts(db_path) == (22, 23, 23)


def test_table_output_and_stats(db_path: Path) -> None:
    r = runner.invoke(app, ["import", str(TG), "--db", str(db_path), "--no-rules"], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.stderr
    assert "result.json" in r.stdout and "telegram" in r.stdout
    s = runner.invoke(app, ["stats", "--db", str(db_path), "--json"])
    assert json.loads(s.stdout)["messages"] == 22


def broken(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A bad input file and the error line it must produce."""
    data = TG.read_bytes()
    p = tmp_path / f"{kind}.json"
    if kind == "malformed":
        pos = data.index(b'"from_id"', data.index(b'"id": 7,'))
        p.write_bytes(data[:pos] + b"," + data[pos:])
        line = data[:pos].count(b"\n") + 1
        col = pos - data.rfind(b"\n", 0, pos)
        return p, f"{p}: invalid JSON at byte offset {pos} (line {line}, column {col}), in messages[6] (after message id 6): invalid object key (must be a string)"
    if kind == "truncated":
        cut = data.index(b'"id": 12,')
        p.write_bytes(data[:cut])
        return p, f"{p}: truncated JSON: the file ends at byte {cut}, in messages[11] (after message id 11)"
    if kind == "utf8":
        pos = data.index("تبنى".encode())
        p.write_bytes(data[:pos] + b"\xc3\x28" + data[pos:])  # a lead byte without its continuation
        line = data[:pos].count(b"\n") + 1
        col = pos - data.rfind(b"\n", 0, pos)
        return p, f"{p}: invalid UTF-8 at byte offset {pos} (line {line}, column {col}), in messages[9] (after message id 9)"
    if kind == "unknown":
        p.write_text('{"rows": [{"a": 1}]}\n', encoding="utf-8")
        return p, f"{p}: unknown format: a record with keys rows (expected a Telegram Desktop export, X API v2 JSONL or claimwatch canonical JSONL)"
    if kind == "missing_field":
        doc = json.loads(data)
        del doc["messages"][9]["date_unixtime"]  # message id 10
        p.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        return p, f"{p}: messages[9] (id 10): missing required field 'date_unixtime'"
    if kind == "jsonl_line":
        lines = X.read_text(encoding="utf-8").splitlines()
        lines[3] = lines[3][:40]
        try:
            json.loads(lines[3])
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} (column {exc.colno})"
        p = tmp_path / "tweets.jsonl"
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return p, f"{p}:4: invalid JSON: {problem}"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["malformed", "truncated", "utf8", "unknown", "missing_field", "jsonl_line"])
def test_bad_input_one_line_error_exit_2_and_nothing_half_imported(tmp_path: Path, db_path: Path, kind: str) -> None:
    bad, expected = broken(tmp_path, kind)
    r = run(db_path, str(bad), str(TG_ACCOUNT))
    assert r.exit_code == 2
    errors = error_lines(r)
    assert len(errors) == 1 and errors[0].startswith(f"error: {expected}"), r.stderr
    assert "Traceback" not in r.stderr
    # the good file given after the bad one is imported; nothing from the bad one
    assert [d["path"] for d in reports(r)] == [str(TG_ACCOUNT)]
    with sqlite3.connect(db_path) as c:
        channels = {cid for (cid,) in c.execute("select distinct channel_id from messages")}
    assert "1234500000" not in channels and "1188000000000000001" not in channels
    assert counts(db_path)[0] == 12


def test_missing_path_is_a_usage_error(tmp_path: Path, db_path: Path) -> None:
    r = run(db_path, str(tmp_path / "nope.json"))
    assert r.exit_code == 2
    assert error_lines(r) == [f"error: {tmp_path / 'nope.json'}: no such file"]


def test_unknown_format_option(db_path: Path) -> None:
    r = run(db_path, str(TG), "--format", "csv")
    assert r.exit_code == 2 and "--format: unknown format 'csv'" in r.stderr


def test_format_override_on_the_wrong_file(db_path: Path) -> None:
    r = run(db_path, str(X), "--format", "telegram")
    assert r.exit_code == 2
    assert error_lines(r)[0].startswith(f"error: {X}: not a Telegram export")


def test_skip_bad_counts_reports_and_keeps_the_rest(tmp_path: Path, db_path: Path) -> None:
    bad, expected = broken(tmp_path, "missing_field")
    lines = X.read_text(encoding="utf-8").splitlines()
    lines.insert(2, '{"id": "1", "text": "orphan", "edit_history_tweet_ids": ["1"]}')
    lines.insert(4, "not json at all")
    x_bad = tmp_path / "tweets.jsonl"
    x_bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run(db_path, str(bad), str(x_bad), "--skip-bad")
    assert r.exit_code == 0, r.stderr
    tg, x = reports(r)
    assert (tg["read"], tg["new"], tg["bad"]) == (21, 21, 1)
    assert (x["read"], x["new"], x["bad"]) == (14, 14, 2)
    skipped = [line for line in r.stderr.splitlines() if line.startswith("skipped:")]
    assert skipped == [
        f"skipped: {expected}",
        f"skipped: {x_bad}:3: missing required field 'author_id'",
        f"skipped: {x_bad}:5: invalid JSON: Expecting value (column 1)",
    ]
    assert counts(db_path)[0] == 35


def test_skip_bad_still_fails_a_wholly_unparseable_file(tmp_path: Path, db_path: Path) -> None:
    truncated, expected = broken(tmp_path, "truncated")
    r = run(db_path, str(truncated), "--skip-bad")
    assert r.exit_code == 2 and error_lines(r) == [f"error: {expected}"]
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"data": [\n{"data": [\n', encoding="utf-8")
    r = run(db_path, str(junk), "--format", "x", "--skip-bad")
    assert r.exit_code == 2 and error_lines(r)[0].startswith(f"error: {junk}: no readable record (2 bad lines")
    assert not db_path.exists()  # nothing imported: the archive this import created is removed again


def test_real_subprocess(tmp_path: Path, db_path: Path) -> None:
    bad, expected = broken(tmp_path, "truncated")
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT)}
    env.pop("CLAIMWATCH_CONFIG", None)
    p = subprocess.run(
        [sys.executable, "-m", "monitor", "import", str(TG), str(bad), "--db", str(db_path), "--no-rules"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert p.returncode == 2
    assert [line for line in p.stderr.splitlines() if line.startswith("error:")] == [f"error: {expected}"]
    assert counts(db_path)[0] == 22


def _at_80_columns(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "80"}, cwd=ROOT)


def test_import_and_stats_on_80_columns_cut_no_path_or_channel(tmp_path: Path) -> None:
    """On 80 columns the import table showed each path as "samples/…" and stats showed both
    "PayamMellat_FA" and "PayamMellat_EN" as "PayamMella…" (and cut X's 19-digit ids)."""
    db = tmp_path / "a.db"
    res = _at_80_columns("import", "samples/telegram/account-export.json", "samples/x/tweets.jsonl", "--db", str(db),
                         "--no-rules")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "…" not in out and all(len(line) <= 80 for line in out.splitlines()), out
    flat = " ".join(out.split())
    assert "samples/telegram/account-export.json (telegram): read 12, new 12" in flat, out
    assert "samples/x/tweets.jsonl (x): read 14, new 14, edited 0, unchanged 0, service 0, bad 0, hits 0" in flat
    wide = subprocess.run([sys.executable, "-m", "monitor", "import", "samples/x/tweets.jsonl", "--db", str(db),
                           "--no-rules"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"}, cwd=ROOT)
    assert "┃ file " in wide.stdout and "│ samples/x/tweets.jsonl " in wide.stdout, wide.stdout  # the table when it fits
    res = _at_80_columns("stats", "--db", str(db))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "…" not in out and all(len(line) <= 80 for line in out.splitlines()), out
    assert all(line.rstrip().endswith(("┓", "┃", "┩", "│", "┘")) for line in out.splitlines() if line[:1] in "┏┃┡│└")
    for name in ("PayamMellat_FA", "PayamMellat_EN", "KermanGov_IR", "خبرگزاری پیام ملت"):
        assert name in out, out
    # an X id folds onto the next line, whole
    rows = [[c.strip() for c in line.split("│")] for line in out.splitlines() if line.startswith("│")]
    ids = []
    for row in rows:
        if row[1]:
            ids.append(row[3])
        else:
            ids[-1] += row[3]
    assert "1188000000000000001" in ids and "1188000000000000002" in ids, out


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        # a unix time past year 9999, and a date past it in UTC, ended the import in a traceback
        ("date", 99999999999999, "date: not a date: unix time 99999999999999 is out of range"),
        ("date", "99999999999999", "date: not a date: unix time 99999999999999 is out of range"),
        ("date", "9999-12-31T23:59:59-01:00", "date: not a date: '9999-12-31T23:59:59-01:00' is out of range in UTC"),
        ("date", True, "date: unsupported date value True"),
        # a platform no command can list was archived
        ("platform", "facebook", "platform: unknown platform 'facebook' (one of telegram, x)"),
    ],
)
def test_canonical_records_with_impossible_dates_or_platforms_are_one_line_errors(
        tmp_path: Path, db_path: Path, field: str, value: Any, expected: str) -> None:
    record = {"schema": "claimwatch.message/1", "platform": "telegram", "channel_id": "555", "message_id": "1",
              "date": "2024-01-04T14:00:00Z", "text": "x", field: value}
    p = tmp_path / "c.jsonl"
    p.write_text(json.dumps(record) + "\n", encoding="utf-8")
    r = run(db_path, str(p))
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r.stderr
    assert error_lines(r) == [f"error: {p}:1: {expected}"], r.stderr
    assert not db_path.exists() or counts(db_path)[0] == 0


@pytest.mark.parametrize(
    ("field", "raw", "shown"),
    [
        # stored as message "12.5" / "1000.0" / "True": ids no source has, and a later import of
        # the same message with the integer id was a second message
        ("message_id", "12.5", "12.5"), ("message_id", "1e3", "1000.0"), ("message_id", "true", "True"),
        ("message_id", "[7]", "[7]"), ("channel_id", "555.0", "555.0"), ("reply_to", "3.5", "3.5"),
    ],
)
def test_canonical_ids_that_are_not_integers_or_strings_are_one_line_errors(
        tmp_path: Path, db_path: Path, field: str, raw: str, shown: str) -> None:
    good = {"schema": "claimwatch.message/1", "platform": "telegram", "channel_id": "555", "message_id": 1,
            "date": "2024-01-04T14:00:00Z", "text": "x"}
    bad = json.dumps({**good, "message_id": "2", field: "@@"}).replace('"@@"', raw)
    p = tmp_path / "c.jsonl"
    p.write_text(json.dumps(good) + "\n" + bad + "\n", encoding="utf-8")
    r = run(db_path, str(p))
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r.stderr
    assert error_lines(r) == [f"error: {p}:2: {field}: must be an integer or a string, not {shown}"], r.stderr
    assert not db_path.exists() or counts(db_path)[0] == 0  # the good first line is not kept either
    r = run(db_path, str(p), "--skip-bad")
    assert r.exit_code == 0, r.stderr
    with sqlite3.connect(db_path) as c:
        assert c.execute("select channel_id, message_id from messages").fetchall() == [("555", "1")]


def test_an_early_year_is_stored_with_four_digits_and_x_in_any_case(tmp_path: Path, db_path: Path) -> None:
    # "0001-01-01" was stored "1-01-01T…", which sorts after "2024-…" as text
    base = {"schema": "claimwatch.message/1", "platform": "telegram", "channel_id": "555", "text": "x"}
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({**base, **r}) + "\n" for r in (
        {"message_id": "1", "date": "2024-01-04T14:00:00Z"}, {"message_id": "2", "date": "0001-01-01T00:00:00Z"},
        {"message_id": "3", "date": "2024-01-04T15:00:00Z", "platform": "X"})), encoding="utf-8")
    assert run(db_path, str(p)).exit_code == 0
    with sqlite3.connect(db_path) as c:
        assert c.execute("select platform, message_id, date from messages order by date").fetchall() == [
            ("telegram", "2", "0001-01-01T00:00:00Z"), ("telegram", "1", "2024-01-04T14:00:00Z"),
            ("x", "3", "2024-01-04T15:00:00Z")]


def test_x_post_whose_id_or_date_is_past_year_9999_is_a_one_line_error(tmp_path: Path, db_path: Path) -> None:
    # the time in a 26-digit id (a post without created_at) ended the import in a traceback
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"id": "9" * 26, "text": "x", "author_id": "1"}) + "\n", encoding="utf-8")
    r = run(db_path, str(p))
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r.stderr
    assert error_lines(r) == [f"error: {p}:1: id '{'9' * 26}': not an X post id (its time is out of range)"]
