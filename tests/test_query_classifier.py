"""A learned classifier's hits in the archive and everything that reads it: ``hits.score``
(migration 9: an archive from before it gets the column, NULL for its hits; one opened read-only
without migrating still answers every query), ``claimwatch verify`` and ``export`` unaffected,
``hits`` (``--kind claim`` includes them, ``--rule classifier`` picks them, ``--json``/``--csv``
carry score), ``show`` ("no terms (classifier)") and the web view (its pages on a real server)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from classifier_support import CLF_HASH, classifier_hit
from monitor.archive import Archive
from monitor.archive.schema import MIGRATIONS, SCHEMA_VERSION, _m10_hit_score
from monitor.cli import app
from monitor.model import Hit, Match, Message
from monitor.query.hits import HIT_COLUMNS, list_hits
from monitor.query.show import message_detail
from monitor.query.verify import verify

runner = CliRunner()
T1 = datetime(2024, 1, 4, 15, 0, tzinfo=timezone.utc)
RULE_HIT = Hit("isis-claims", "h1", "high", "ISIS claims", (Match("kw", "الدولة", 6, 12),), ("slack",),
               kind="claim", actors=("islamic-state",))


def _store(path: Path) -> None:
    with Archive.open(path) as a:
        a.store([
            (Message("telegram", "-1001", "1", T1, "أعلنت الدولة الإسلامية مسؤوليتها", channel="amaq", raw={"id": 1}),
             [RULE_HIT, classifier_hit(score=0.9312)]),
            (Message("telegram", "-1002", "2", T1, "Our fighters carried out the operation", channel="front",
                     raw={"id": 2}), [classifier_hit(score=0.7701)]),
            (Message("x", "42", "3", T1, "The ministry condemned the attack", channel="mfa", raw={"id": 3}),
             [classifier_hit("statement", 0.64, actors=("iran",))]),
        ], alerts=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "clf.db"
    _store(path)
    return path


def test_score_column_stored_and_old_archives_migrate(db: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT rule_id, score FROM hits ORDER BY id").fetchall() == [
        ("isis-claims", None), ("classifier", 0.9312), ("classifier", 0.7701), ("classifier", 0.64)]
    assert ("score", "REAL") in [(r[1], r[2]) for r in conn.execute("PRAGMA table_info(hits)")]
    conn.close()

    # an archive of schema 8: no score column (rule hits only), migrated on open; verify passes
    old = tmp_path / "old.db"
    with Archive.open(old) as a:
        a.store([(Message("telegram", "-1001", "1", T1, "أعلنت الدولة", raw={"id": 1}), [RULE_HIT])], alerts=False)
    conn = sqlite3.connect(old)
    conn.execute("ALTER TABLE hits DROP COLUMN score")
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(MIGRATIONS.index(_m10_hit_score)),))
    conn.commit()
    conn.close()
    # read-only (queries, the web view, verify do not migrate): score reads as null
    with Archive.open(old, readonly=True) as a:
        assert [h["score"] for h in list_hits(a.conn)] == [None]
        assert message_detail(a.conn, "telegram:-1001:1")["hits"][0]["score"] is None
        assert verify(a.conn).ok
    r = runner.invoke(app, ["hits", "--db", str(old), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["score"] is None
    with Archive.open(old) as a:  # migrated
        assert a.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert a.conn.execute("SELECT score FROM hits").fetchall() == [(None,)]
        a.store([(Message("telegram", "-1001", "2", T1, "Our fighters", raw={"id": 2}), [classifier_hit()])],
                alerts=False)
        assert verify(a.conn).ok
    # migration 9 again (the version set back) keeps the column and its values
    conn = sqlite3.connect(old)
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(MIGRATIONS.index(_m10_hit_score)),))
    conn.commit()
    conn.close()
    with Archive.open(old) as a:
        assert a.conn.execute("SELECT score FROM hits ORDER BY id").fetchall() == [(None,), (0.83,)]


def test_verify_and_export_are_unaffected(db: Path, tmp_path: Path) -> None:
    out, manifest = tmp_path / "out.jsonl", tmp_path / "out.manifest.json"
    r = runner.invoke(app, ["export", "--db", str(db), "--out", str(out), "--manifest", str(manifest),
                            "--rule", "classifier"])
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["message_id"] for x in out.read_text(encoding="utf-8").splitlines()] == ["1", "2", "3"]
    r = runner.invoke(app, ["verify", "--db", str(db), "--manifest", str(manifest)])
    assert r.exit_code == 0, r.output


def test_hits_kind_rule_json_csv(db: Path) -> None:
    r = runner.invoke(app, ["hits", "--db", str(db), "--json", "--kind", "claim"])
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert sorted((x["rule_id"], x["score"]) for x in rows) == [
        ("classifier", 0.7701), ("classifier", 0.9312), ("isis-claims", None)]
    clf = next(x for x in rows if x["score"] == 0.7701)
    assert clf["matches"] == [] and clf["actors"] == [] and clf["rule_hash"] == CLF_HASH and clf["tags"] == ["classifier"]
    assert list(clf) == list(HIT_COLUMNS)

    r = runner.invoke(app, ["hits", "--db", str(db), "--json", "--rule", "classifier"])
    assert [json.loads(x)["key"] for x in r.stdout.splitlines()] == [
        "x:42:3", "telegram:-1002:2", "telegram:-1001:1"]
    assert "warning" not in r.output
    r = runner.invoke(app, ["hits", "--db", str(db), "--json", "--rule", "classifier", "--kind", "statement",
                            "--actor", "iran"])
    assert [json.loads(x)["score"] for x in r.stdout.splitlines()] == [0.64]

    r = runner.invoke(app, ["hits", "--db", str(db), "--csv", "--rule", "classifier"])
    table = list(csv.reader(io.StringIO(r.stdout)))
    assert table[0] == list(HIT_COLUMNS)
    col = table[0].index("score")
    assert [row[col] for row in table[1:]] == ["0.64", "0.7701", "0.9312"]
    assert {row[table[0].index("matches")] for row in table[1:]} == {"[]"}
    r = runner.invoke(app, ["hits", "--db", str(db), "--csv", "--rule", "isis-claims"])
    assert list(csv.reader(io.StringIO(r.stdout)))[1][col] == ""

    for width in (200, 80):  # the table and the narrow list: the probability after the rule id
        r = runner.invoke(app, ["hits", "--db", str(db), "--rule", "classifier"], terminal_width=width)
        assert r.exit_code == 0 and "classifier 0.77" in r.stdout and "classifier 0.64" in r.stdout


def test_search_by_rule_classifier(db: Path) -> None:
    r = runner.invoke(app, ["search", "operation OR condemned OR الدولة", "--db", str(db), "--rule", "classifier", "--json"])
    assert r.exit_code == 0, r.output
    assert sorted(json.loads(x)["key"] for x in r.stdout.splitlines()) == [
        "telegram:-1001:1", "telegram:-1002:2", "x:42:3"]
    r = runner.invoke(app, ["search", "operation OR الدولة", "--db", str(db), "--rule", "isis-claims", "--json"])
    assert [json.loads(x)["key"] for x in r.stdout.splitlines()] == ["telegram:-1001:1"]


def test_show_says_no_terms_for_the_classifier(db: Path) -> None:
    r = runner.invoke(app, ["show", "telegram:-1001:1", "--db", str(db)], terminal_width=220)
    assert r.exit_code == 0
    # (the table wraps "no terms (classifier)" in its column at 80 columns)
    assert "no terms" in r.stdout and "(classifier)" in r.stdout and "kw: الدولة" in r.stdout
    assert "score" in r.stdout and "0.93" in r.stdout
    from monitor.query.cli import matched_text

    assert matched_text({"matches": [], "score": 0.5}) == "no terms (classifier)"
    assert matched_text({"matches": [], "score": None}) == ""
    r = runner.invoke(app, ["show", "telegram:-1001:1", "--db", str(db), "--json"])
    hits = json.loads(r.stdout)["hits"]
    assert [(h["rule_id"], h["score"], h["matches"] == []) for h in hits] == [
        ("isis-claims", None, False), ("classifier", 0.9312, True)]


def test_web_pages_show_the_probability_and_no_terms(db: Path) -> None:
    pytest.importorskip("datasette")
    from web_support import Server

    with Server(db) as srv, httpx.Client(base_url=srv.base, timeout=30) as client:
        page = client.get("/message/telegram:-1002:2")
        assert page.status_code == 200
        assert "no terms (classifier)</span> probability 0.77" in page.text
        page = client.get("/message/telegram:-1001:1")
        assert "<mark dir=\"auto\">الدولة</mark>" in page.text and "probability 0.93" in page.text
        home = client.get("/")
        assert home.status_code == 200 and "Learned classifier: claim" in home.text and "probability 0.77" in home.text
        chan = client.get("/channel/telegram/-1001")
        assert chan.status_code == 200 and "mean probability 0.93" in chan.text
        search = client.get("/search", params={"rule": "classifier", "kind": "statement"})
        assert search.status_code == 200
        rows = client.get("/clf/hits.json", params={"_shape": "objects", "rule_id": "classifier"}).json()["rows"]
        assert sorted(r["score"] for r in rows) == [0.64, 0.7701, 0.9312]
