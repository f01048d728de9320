"""``claimwatch rules check`` / ``rules test`` and matching during ``claimwatch import``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from monitor.archive import Archive
from monitor.cli import app
from monitor.config import default_config, load_config
from monitor.model import canonical_json
from monitor.rules.cli import matcher_for_cli

from rules_helpers import msg, write

runner = CliRunner()

CLAIM_RULE = """
id: is-claim-ar
title: IS claim (Arabic)
level: high
kind: claim
match:
  claim: ["تبنى", "أعلن مسؤوليته", "claimed responsibility"]
  group: ["الدولة الإسلامية", "Islamic State"]
  denial: [ينفي, denies]
condition: claim and group and not denial
"""


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    write(d / "claim.yml", CLAIM_RULE)
    write(d / "actors.yml", "actors:\n  - {id: islamic-state, type: group, names: [Islamic State, الدولة الإسلامية]}\n"
          "  - {id: reuters, type: media, title: Reuters, accounts: ['x:Reuters']}\n")
    return d


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write(tmp_path / "claimwatch.yaml", """
        database: db.sqlite
        alerts:
          default: [console]
          destinations:
            slack-ops: {type: file, path: alerts.jsonl}
        """)


# -- rules check ----------------------------------------------------------------------------------
def test_check_clean_rules_exits_0(rules_dir: Path) -> None:
    r = run("rules", "check", rules_dir)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("ok: 1 rule(s) and 2 actor(s) in 2 file(s)")


def test_check_reports_size_and_warnings(tmp_path: Path) -> None:
    path = write(tmp_path / "w.yml", "id: w\nmatch:\n  s: [attack, كرمان, مسؤولية, claim*]\n  r:\n    regex: ['\\bولاية']\ncondition: s or r\n")
    r = run("rules", "check", path)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith(
        "ok: 1 rule(s) in 1 file(s); 4 distinct term(s), 4 match patterns, 1 regex(es), "
        "0 rule(s) evaluated on every message; matcher ~"
    )
    assert lines[0].endswith(" MB; 2 warning(s)")
    assert lines[1].startswith(f"{path}:3:3: warning: rule 'w': selection 's' alone makes the rule true")
    assert lines[2].startswith(f"{path}:4:3: warning: selection 'r': regex " + repr("\\bولاية") + " has \\b or \\B next")
    r = run("rules", "check", path, "--json")
    assert r.exit_code == 0
    assert [json.loads(x)["level"] for x in r.stdout.splitlines()] == ["warning", "warning"]


def test_check_reports_every_problem_as_file_line_col(tmp_path: Path) -> None:
    d = tmp_path / "bad"
    write(d / "a.yml", "id: a\nlevel: hgih\nmatch:\n  s: ['']\n")
    write(d / "b.yml", "id: b\nmatch:\n  s: [x]\n  t: [y]\ncondition: s and (t\n")
    r = run("rules", "check", d)
    assert r.exit_code == 1
    assert r.stdout.splitlines() == [
        f"{d / 'a.yml'}:2:8: unknown level 'hgih' (did you mean 'high'?); use info, low, medium, high, critical",
        f"{d / 'a.yml'}:4:7: selection 's': empty term",
        f"{d / 'b.yml'}:5:18: condition: '(' is never closed",
    ]
    assert "3 problem(s) in 2 file(s)" in r.stderr


def test_check_json_lists_problems(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yml", "id: Bad\nmatch:\n  s: [x]\n")
    r = run("rules", "check", path, "--json")
    assert r.exit_code == 1
    assert [json.loads(line) for line in r.stdout.splitlines()] == [
        {"file": str(path), "line": 1, "col": 5, "message": "invalid id 'Bad': use lowercase letters, digits, '.', '_' and '-'"}
    ]


def test_check_unknown_destination_only_with_a_config(tmp_path: Path, config_file: Path) -> None:
    path = write(tmp_path / "r.yml", "id: r\nalert: [slack-opz]\nmatch:\n  s: [x]\n")
    assert run("rules", "check", path).exit_code == 0
    r = run("rules", "check", path, "--config", config_file)
    assert r.exit_code == 1
    assert r.stdout.strip() == (
        f"{path}:2:9: unknown alert destination 'slack-opz' (did you mean 'slack-ops'?); known: console, slack-ops"
    )


def test_check_defaults_to_config_rules_path(tmp_path: Path, rules_dir: Path) -> None:
    cfg = write(tmp_path / "c.yaml", f"rules: {rules_dir}\n")
    r = run("rules", "check", "--config", cfg)
    assert r.exit_code == 0 and "1 rule(s)" in r.stdout


def test_check_missing_path(tmp_path: Path) -> None:
    r = run("rules", "check", tmp_path / "nope")
    assert r.exit_code == 1
    assert r.stdout.strip() == f"{tmp_path / 'nope'}:1:1: no such file or directory"


def test_check_the_shipped_rule_pack() -> None:
    r = run("rules", "check", Path(__file__).resolve().parent.parent / "rules")
    assert r.exit_code == 0, r.output


# -- rules test over the archive ------------------------------------------------------------------
ARABIC_CLAIM = "وأعلنَ تنظيمُ الدولة الإسلامية مسؤوليتَه عن الهجوم; تبنّى"


def _archive(path: Path) -> None:
    with Archive.open(path) as a:
        a.store([
            (msg(ARABIC_CLAIM, channel="amaq_news", message_id="10"), []),
            (msg("The Islamic State claimed responsibility", platform="x", channel="Reuters", channel_id="99",
                 message_id="20", url="https://x.com/Reuters/status/20"), []),
            (msg("Islamic State denies it claimed responsibility", platform="x", channel="Reuters", channel_id="99",
                 message_id="21"), []),
            (msg("weather report", message_id="11"), []),
        ])


def test_test_over_archive_json(tmp_path: Path, rules_dir: Path) -> None:
    db = tmp_path / "a.db"
    _archive(db)
    before = db.read_bytes()
    r = run("rules", "test", rules_dir, "--db", db, "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows == [
        {
            "rule": "is-claim-ar", "level": "high", "kind": "claim", "actors": ["islamic-state"],
            "platform": "telegram", "channel_id": "-1001",
            "channel": "amaq_news", "message_id": "10", "date": "2024-01-04T15:00:00Z",
            "url": "https://t.me/amaq_news/10",
            "matches": [
                {"selection": "group", "term": "الدولة الإسلامية", "start": 14, "end": 30, "field": "text"},
                {"selection": "claim", "term": "تبنى", "start": 52, "end": 57, "field": "text"},
            ],
        },
        {
            "rule": "is-claim-ar", "level": "high", "kind": "claim", "actors": ["islamic-state", "reuters"],
            "platform": "x", "channel_id": "99", "channel": "Reuters",
            "message_id": "20", "date": "2024-01-04T15:00:00Z", "url": "https://x.com/Reuters/status/20",
            "matches": [
                {"selection": "group", "term": "Islamic State", "start": 4, "end": 17, "field": "text"},
                {"selection": "claim", "term": "claimed responsibility", "start": 18, "end": 40, "field": "text"},
            ],
        },
    ]
    assert [ARABIC_CLAIM[m["start"]:m["end"]] for m in rows[0]["matches"]] == ["الدولة الإسلامية", "تبنّى"]
    assert "4 message(s) scanned, 2 hit(s): is-claim-ar 2" in r.stderr
    # a backtest writes nothing
    assert db.read_bytes() == before
    assert sqlite3.connect(db).execute("select count(*) from hits").fetchone()[0] == 0


def test_test_over_archive_human_output(tmp_path: Path, rules_dir: Path) -> None:
    db = tmp_path / "a.db"
    _archive(db)
    r = run("rules", "test", rules_dir, "--db", db)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert lines[1] == ("2024-01-04T15:00:00Z  high     claim     is-claim-ar [islamic-state,reuters]  x/Reuters/20  "
                        "The [Islamic State] [claimed responsibility]")


def test_test_missing_archive_and_bad_rules(tmp_path: Path, rules_dir: Path) -> None:
    r = run("rules", "test", rules_dir, "--db", tmp_path / "none.db")
    assert r.exit_code == 2 and "archive not found" in r.stderr
    bad = write(tmp_path / "bad.yml", "id: x\nmatch:\n  s: ['(']\n  t: [y]\n")
    r = run("rules", "test", bad, "--db", tmp_path / "none.db")
    assert r.exit_code == 2
    assert r.stderr.splitlines()[:2] == [
        f"{bad}:2:1: 'condition' is required when 'match' has more than one selection",
        f"{bad}:3:7: selection 's': empty term: '(' has no words (only punctuation or spaces)",
    ]
    r = run("rules", "test", tmp_path / "missing-rules", "--db", tmp_path / "none.db")
    assert r.exit_code == 2 and "rules not found" in r.stderr


# -- rules test over files ------------------------------------------------------------------------
def test_test_over_canonical_jsonl(tmp_path: Path, rules_dir: Path) -> None:
    f = tmp_path / "in.jsonl"
    lines = [
        canonical_json(msg("وتبنّى تنظيم الدولة الإسلامية الهجوم", message_id="1").to_dict()),
        canonical_json(msg("ينفي تنظيم الدولة الإسلامية أنه تبنى الهجوم", message_id="2").to_dict()),
    ]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run("rules", "test", rules_dir, f, "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["message_id"], [m["term"] for m in x["matches"]]) for x in rows] == [("1", ["تبنى", "الدولة الإسلامية"])]
    text = "وتبنّى تنظيم الدولة الإسلامية الهجوم"
    assert [text[m["start"]:m["end"]] for m in rows[0]["matches"]] == ["وتبنّى", "الدولة الإسلامية"]


def test_test_escapes_terminal_controls_and_bidi_from_posts(tmp_path: Path, rules_dir: Path) -> None:
    """The channel, message id and text of a post are shown as ``incident show`` shows them
    (``\\x1b``-style escapes, bidi overrides as U+FFFD); ``--json`` keeps them as they are."""
    text = "\x1b]0;pwned\x07\x1b[2J The Islamic State \u202eclaimed responsibility\u202c \x1b[31mRED"
    f = tmp_path / "in.jsonl"
    f.write_text(canonical_json(msg(text, channel="chan\x1b[5m\u2066x", message_id="7\x1b[8m").to_dict()) + "\n",
                 encoding="utf-8")
    r = run("rules", "test", rules_dir, f)
    assert r.exit_code == 0, r.output
    [line] = r.stdout.splitlines()
    for raw in ("\x1b", "\x07", "\u202e", "\u202c", "\u2066"):
        assert raw not in line, repr(line)
    assert "telegram/chan\\x1b[5m\ufffdx/7\\x1b[8m  " in line
    assert "  \\x1b]0;pwned\\x07\\x1b[2J The [Islamic State] \ufffd[claimed responsibility" in line
    assert line.endswith(" \\x1b[31mRED")
    r = run("rules", "test", rules_dir, f, "--json")
    rec = json.loads(r.stdout)
    assert (rec["channel"], rec["message_id"]) == ("chan\x1b[5m\u2066x", "7\x1b[8m")


def test_test_highlights_end_at_the_letters_not_at_an_invisible_control(tmp_path: Path, rules_dir: Path) -> None:
    """A match the matcher ends after a bidi control or mark (RLM, ZWNJ, PDF) is bracketed
    without it: a control inside ``[…]`` turned the closing bracket the other way in an
    Arabic line. The control stays in the text, outside the brackets (bidi ones as U+FFFD)."""
    text = "أعلن تنظيم الدولة الإسلامية\u200f مسؤوليته. The Islamic State\u200c claimed responsibility\u202c here"
    f = tmp_path / "in.jsonl"
    f.write_text(canonical_json(msg(text).to_dict()) + "\n", encoding="utf-8")
    r = run("rules", "test", rules_dir, f)
    assert r.exit_code == 0, r.output
    [line] = r.stdout.splitlines()
    assert "[الدولة الإسلامية]\u200f [مسؤوليته]" in line or "[الدولة الإسلامية]\u200f مسؤوليته" in line, ascii(line)
    assert "The [Islamic State]\u200c [claimed responsibility]\ufffd here" in line, ascii(line)


def test_phrase_across_telegram_entity_boundaries(tmp_path: Path, rules_dir: Path) -> None:
    """Telegram export text is a list of plain strings and formatting entities; a phrase split
    across them (bold "Islamic", link "State") still matches, with spans in the flattened text."""
    export = {
        "name": "Amaq", "type": "public_channel", "id": 555,
        "messages": [{
            "id": 7, "type": "message", "date": "2024-01-04T16:49:30", "date_unixtime": "1704386970",
            "from": "Amaq", "from_id": "channel555",
            "text": ["Amaq: the ", {"type": "bold", "text": "Islamic"}, " ",
                     {"type": "text_link", "text": "State", "href": "https://example.org"},
                     " claimed ", {"type": "italic", "text": "responsibility"}, " for the attack"],
        }],
    }
    f = tmp_path / "result.json"
    f.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    r = run("rules", "test", rules_dir, f, "--json")
    assert r.exit_code == 0, r.output
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    flat = "Amaq: the Islamic State claimed responsibility for the attack"
    assert [flat[m["start"]:m["end"]] for m in row["matches"]] == ["Islamic State", "claimed responsibility"]
    assert row["platform"] == "telegram" and row["message_id"] == "7" and row["date"] == "2024-01-04T16:49:30Z"


def test_test_over_bad_input_file(tmp_path: Path, rules_dir: Path) -> None:
    f = tmp_path / "broken.jsonl"
    f.write_text('{"schema": "claimwatch.message/1", "platform": \n', encoding="utf-8")
    r = run("rules", "test", rules_dir, f)
    assert r.exit_code == 2 and str(f) in r.stderr


# -- import matches while importing ------------------------------------------------------------
def test_import_stores_hits_idempotently_and_new_rule_version_adds_hits(tmp_path: Path, rules_dir: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(
        canonical_json(msg("Islamic State claimed responsibility for the attack", message_id="1").to_dict()) + "\n"
        + canonical_json(msg("nothing to see", message_id="2").to_dict()) + "\n",
        encoding="utf-8",
    )
    db = tmp_path / "a.db"
    r = run("import", f, "--db", db, "--rules", rules_dir, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[0])["hits"] == 1
    r = run("import", f, "--db", db, "--rules", rules_dir, "--json")
    assert json.loads(r.stdout.splitlines()[0])["hits"] == 0
    con = sqlite3.connect(db)
    rows = con.execute("select rule_id, rule_hash, matches from hits").fetchall()
    assert len(rows) == 1 and rows[0][0] == "is-claim-ar"
    assert json.loads(rows[0][2])[0] == {"selection": "group", "term": "Islamic State", "start": 0, "end": 13, "field": "text"}
    # a new version of the rule file: same message, new hit
    (rules_dir / "claim.yml").write_text(CLAIM_RULE + "# reviewed\n", encoding="utf-8")
    r = run("import", f, "--db", db, "--rules", rules_dir, "--json")
    assert json.loads(r.stdout.splitlines()[0])["hits"] == 1
    assert con.execute("select count(distinct rule_hash) from hits").fetchone()[0] == 2


def test_import_with_bad_rules_exits_2_before_touching_the_archive(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yml", "id: x\nlevel: urgent\nmatch:\n  s: [y]\n")
    f = tmp_path / "in.jsonl"
    f.write_text(canonical_json(msg("y", message_id="1").to_dict()) + "\n", encoding="utf-8")
    r = run("import", f, "--db", tmp_path / "a.db", "--rules", bad)
    assert r.exit_code == 2
    assert f"{bad}:2:8: unknown level 'urgent'" in r.stderr
    assert not (tmp_path / "a.db").exists()


def test_matcher_for_cli(tmp_path: Path, rules_dir: Path, config_file: Path) -> None:
    cfg = default_config()
    assert matcher_for_cli(tmp_path / "absent", cfg) is None
    with pytest.raises(typer.Exit) as info:
        matcher_for_cli(tmp_path / "absent", cfg, required=True)
    assert info.value.exit_code == 2
    m = matcher_for_cli(rules_dir, cfg)
    assert m is not None and m.rule_count == 1
    hit = m.match(msg("Islamic State claimed responsibility"))[0]
    assert hit.destinations == ("console",)
    # with a config file, alert destinations are checked against it
    path = write(tmp_path / "r2" / "r.yml", "id: r\nalert: [nowhere]\nmatch:\n  s: [x]\n")
    assert matcher_for_cli(path, cfg) is not None
    with pytest.raises(typer.Exit):
        matcher_for_cli(path, load_config(config_file))
