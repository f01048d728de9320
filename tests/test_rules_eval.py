"""`claimwatch rules eval` and monitor.rules.evaluate on a small corpus of its own.

tests/eval_corpus/small.jsonl (12 items) against tests/eval_corpus/rules.yml. What each item
gets (alert level medium):

    c1 claim/houthis       claim-en (claim, high)                 alerted, claim found
    c2 claim/hamas   test  -                                      miss
    c3 claim/is (ar)       claim-ar (claim, high)                 alerted, claim found
    s1 statement/iran      statement-en (statement, medium)       alerted, statement found
    s2 statement/iran      claim-en (claim, high)                 alerted; miss + false alert (wrong kind)
    s3 statement/iran (fa) test  -                                miss
    d1 denial/hamas        denial-en (low), watch-blast (medium)  denial found; false alert (alerted negative)
    d2 denial              denial-en (low)                        denial found
    r1 report/is           claim-en (high), report-en (low)       report found; false alert
    n1 none                claim-en (high)                        false alert
    n2 none          test  -
    n3 none (ar)           -
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.rules import Matcher, load_rules
from monitor.rules.evaluate import CorpusError, evaluate, one_line, read_corpus, split_for

HERE = Path(__file__).parent / "eval_corpus"
CORPUS = HERE / "small.jsonl"
RULES = HERE / "rules.yml"
runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, ["rules", "eval", *(str(a) for a in args)])


def figures(d: dict) -> tuple:
    return d["relevant"], d["predicted"], d["true"], d["precision"], d["recall"], d["f1"]


def test_library_figures_by_hand() -> None:
    ev = evaluate(Matcher(load_rules([RULES])), read_corpus([CORPUS]))
    d = ev.to_dict()
    assert d["items"] == 12 and d["alert_level"] == "medium" and d["split"] == "all"
    # alerted: c1 c3 s1 s2 d1 r1 n1 (7); positives 6; alerted positives c1 c3 s1 s2 (4)
    assert figures(d["overall"]) == (6, 7, 4, round(4 / 7, 4), round(4 / 6, 4), round(16 / 26, 4))
    # claim: labelled c1 c2 c3; alert-level claim hits c1 c3 s2 r1 n1; true c1 c3
    assert figures(d["labels"]["claim"]) == (3, 5, 2, 0.4, round(2 / 3, 4), 0.5)
    # statement: labelled s1 s2 s3; statement hits s1
    assert figures(d["labels"]["statement"]) == (3, 1, 1, 1.0, round(1 / 3, 4), 0.5)
    # denial and report count at any level (their rules are low)
    assert figures(d["labels"]["denial"]) == (2, 2, 2, 1.0, 1.0, 1.0)
    assert figures(d["labels"]["report"]) == (1, 1, 1, 1.0, 1.0, 1.0)
    assert (d["labels"]["none"]["n"], d["labels"]["none"]["predicted"]) == (3, 1)
    # per language (alerts): en 9 items, positives c1 c2 s1 s2, alerted c1 s1 s2 d1 r1 n1
    assert figures(d["languages"]["en"]) == (4, 6, 3, 0.5, 0.75, round(2 * 0.5 * 0.75 / 1.25, 4))
    assert figures(d["languages"]["ar"]) == (1, 1, 1, 1.0, 1.0, 1.0)
    assert figures(d["languages"]["fa"]) == (1, 0, 0, None, 0.0, None)
    # per actor: positives found with their own kind
    assert {a: (f["relevant"], f["true"], f["recall"]) for a, f in d["actors"].items()} == {
        "hamas": (1, 0, 0.0), "houthis": (1, 1, 1.0), "iran": (3, 1, round(1 / 3, 4)), "islamic-state": (1, 1, 1.0)}
    # per rule: hits, alerts, true/false of the counted ones (alerts; hits for denial/report)
    assert {r: (v["kind"], v["hits"], v["alerts"], v["true"], v["false"]) for r, v in d["rules"].items()} == {
        "claim-en": ("claim", 4, 4, 1, 3),
        "claim-ar": ("claim", 1, 1, 1, 0),
        "statement-en": ("statement", 1, 1, 1, 0),
        "denial-en": ("denial", 2, 0, 2, 0),
        "report-en": ("report", 1, 0, 1, 0),
        "watch-blast": ("watch", 1, 1, 0, 1),
    }
    assert [m["id"] for m in d["misses"]] == ["c2", "s2", "s3"]
    assert [m["id"] for m in d["false_alerts"]] == ["s2", "d1", "r1", "n1"]
    s2 = d["misses"][1]
    assert s2["rules"] == [{"rule": "claim-en", "kind": "claim", "level": "high"}] and s2["actor"] == "iran"
    n1 = d["false_alerts"][3]
    assert len(n1["text"]) == 160 and n1["text"].endswith("…")
    assert "\u202e" not in n1["text"] and "firm \\u202eclaimed responsibility" in n1["text"]
    assert ev.gate(0.3, 0.5) == []
    assert ev.gate(0.5, None) == ["statement recall 0.333 < 0.5"]
    assert ev.gate(None, 0.6) == ["alert precision 0.571 < 0.6"]


def test_alert_level_low_counts_the_low_hits_as_alerts() -> None:
    ev = evaluate(Matcher(load_rules([RULES])), read_corpus([CORPUS]), alert_level="low")
    o = ev.overall()
    assert (o.relevant, o.predicted, o.true) == (6, 8, 4)  # d2 (denial-en, low) now alerts too
    assert [m["id"] for m in ev.false_alerts()] == ["s2", "d1", "d2", "r1", "n1"]


def test_cli_json_and_exit_codes() -> None:
    r = run(RULES, CORPUS, "--json", "--min-recall", "0.3", "--min-precision", "0.5")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["overall"]["precision"] == round(4 / 7, 4) and d["labels"]["claim"]["recall"] == round(2 / 3, 4)
    assert d["thresholds"] == {"min_recall": 0.3, "min_precision": 0.5, "failed": []}
    r = run(RULES, CORPUS, "--json", "--min-recall", "0.5")
    assert r.exit_code == 1 and "statement recall 0.333 < 0.5" in r.stderr
    r = run(RULES, CORPUS, "--min-precision", "0.6")
    assert r.exit_code == 1 and "alert precision 0.571 < 0.6" in r.stderr


def test_cli_split_test() -> None:
    r = run(RULES, CORPUS, "--split", "test", "--json", "--min-recall", "0.1", "--min-precision", "0.9")
    d = json.loads(r.stdout)
    assert d["items"] == 3 and d["split"] == "test"
    assert figures(d["overall"]) == (2, 0, 0, None, 0.0, None)
    assert [m["id"] for m in d["misses"]] == ["c2", "s3"]
    # recall below the threshold fails; precision with no alerts is undefined and not gated
    assert r.exit_code == 1 and d["thresholds"]["failed"] == ["claim recall 0.000 < 0.1", "statement recall 0.000 < 0.1"]


def test_cli_tables_for_humans() -> None:
    r = runner.invoke(app, ["rules", "eval", str(RULES), str(CORPUS)], terminal_width=200)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "12 item(s) (split all), alerts at medium and above: precision 57.1%, recall 66.7%, F1 61.5%" in out
    for expected in ("By label", "By language", "By actor", "By rule", "Misses (3)", "False alerts (4)", "watch-blast"):
        assert expected in out, expected
    assert "\u202e" not in out
    r = runner.invoke(app, ["rules", "eval", str(RULES), str(CORPUS), "--no-show-misses"], terminal_width=200)
    assert "Misses" not in r.stdout and "By rule" in r.stdout


@pytest.mark.parametrize(
    "line, error",
    [
        ('{"id": "x1", "text": "t", "lang": "en", "label": "claims", "actor": null, "source": "https://a.example/1", "split": "dev"}',
         "field 'label': 'claims' is not one of claim, statement, denial, report, none"),
        ('{"id": "x1", "text": "t", "lang": "en", "label": "claim", "source": "https://a.example/1", "split": "dev"}',
         "field 'actor': missing (an actor id, or null)"),
        ('{"id": "x1", "text": "t", "lang": "english", "label": "claim", "actor": null, "source": "https://a.example/1", "split": "dev"}',
         "field 'lang': 'english' is not a language code (e.g. en, ar, fa)"),
        ('{"id": "x1", "text": "t", "lang": "en", "label": "claim", "actor": null, "source": "a.example/1", "split": "dev"}',
         "field 'source': 'a.example/1' is not an http(s) URL"),
        ('{"id": "x1", "text": "t", "lang": "en", "label": "claim", "actor": null, "source": "https://a.example/1", "split": "train"}',
         "field 'split': 'train' is not one of dev, test"),
        ('{"id": "x1", "text": 5, "lang": "en", "label": "claim", "actor": null, "source": "https://a.example/1", "split": "dev"}',
         "field 'text': must be a string, not int"),
        ('{"id": "c1", "text": "t", "lang": "en", "label": "claim", "actor": null, "source": "https://a.example/1", "split": "dev"}',
         "field 'id': duplicate id 'c1' (first at {corpus}:1)"),
        ('{"id": "x1", "text": "t",', "not valid JSON: "),
        ("[" * 100_000 + "]" * 100_000, "JSON nested deeper than 100 levels"),  # was a RecursionError traceback
    ],
)
def test_a_bad_corpus_line_is_a_one_line_error(tmp_path, line: str, error: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(CORPUS.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        read_corpus([bad])
    assert str(info.value).startswith(f"{bad}:14: " + error.replace("{corpus}", str(bad)))
    r = run(RULES, bad)
    assert r.exit_code == 2
    assert "Traceback" not in r.output and f"{bad}:14: " in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2  # one error (rich may wrap a long path once)


def test_usage_errors() -> None:
    r = run(RULES, CORPUS, "--split", "train")
    assert r.exit_code == 2 and "unknown split 'train'" in r.stderr
    r = run(RULES, CORPUS, "--alert-level", "urgent")
    assert r.exit_code == 2 and "unknown level 'urgent'" in r.stderr
    r = run(RULES, HERE / "missing.jsonl")
    assert r.exit_code == 2 and "no such file" in r.stderr


def test_a_corpus_folder_means_its_jsonl_files(tmp_path) -> None:
    lines = CORPUS.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "a.jsonl").write_text("".join(lines[:5]), encoding="utf-8")
    (tmp_path / "b.jsonl").write_text("".join(lines[5:]), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a corpus file", encoding="utf-8")
    assert [i.id for i in read_corpus([tmp_path])] == [i.id for i in read_corpus([CORPUS])]
    one, split = run(RULES, CORPUS, "--json"), run(RULES, tmp_path, "--json")
    assert split.exit_code == one.exit_code
    assert json.loads(split.stdout)["overall"] == json.loads(one.stdout)["overall"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run(RULES, empty)
    assert r.exit_code == 2 and "no *.jsonl file" in r.stderr


def test_items_are_messages_from_their_source_host() -> None:
    (item,) = [i for i in read_corpus([CORPUS]) if i.id == "s3"]
    m = item.message()
    assert (m.platform, m.channel, m.channel_id, m.lang, m.url) == ("corpus", "fa.example.ir", "fa.example.ir", "fa",
                                                                    "https://fa.example.ir/6")


def test_split_by_source_hash_and_one_line() -> None:
    import hashlib

    for url in ("https://a.example/1", "https://b.example/2", "https://c.example/3", "https://d.example/4"):
        expected = "test" if int(hashlib.sha256(url.encode()).hexdigest(), 16) % 10 < 3 else "dev"
        assert split_for(url) == expected
    assert one_line("a\n\tb \u2067c\u2069 \x1b[2J") == "a b \\u2067c\\u2069 \\x1b[2J"
