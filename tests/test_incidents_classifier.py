"""Incidents for a learned classifier's hits (no terms, often no actors) on the Kerman scenario of
tests/test_incidents.py: such a message is assigned as any other by the rules of
docs/incidents.md that need no actor — its family (forward, copy, near-copy: text similarity),
then place + time — and otherwise opens an incident of its own, whose actor is unknown (the title
says "incident"); it never joins an incident by actor, having none. Real rules and actors, the
real import path; the classifier's hits come from tests/classifier_support.py."""

from __future__ import annotations

from pathlib import Path

from classifier_support import ClassifierMatcher
from monitor.archive import Archive
from monitor.incidents.query import incident_detail, list_incidents
from monitor.ingest import import_file
from test_incidents import CLAIM_AR, KABUL, KERMAN, keys, matcher, rec, write_jsonl

# a report naming Kerman that no rule matches (no term of the report rule), no actor
PLACE_ONLY = "Witnesses in Kerman said two men wearing belts walked into the crowd near the cemetery"
# the claim cut to its second half: no rule term (تبنى), no city, no actor named: only its
# words tie it to the claim (a trimmed copy, contained in it: a near copy)
REWORDED = CLAIM_AR.split("كرمان ", 1)[1]
# names no place, no actor, copies nothing: an incident of its own
ALONE = "Two of our brothers carried out the operation yesterday, and they were not the last"
SCORES = {PLACE_ONLY: ("report", 0.71), REWORDED: ("claim", 0.88), ALONE: ("claim", 0.93), KERMAN[1]["text"]: ("report", 0.6)}

EXTRA = [
    rec("900", 1, "2024-01-03T13:00:00Z", PLACE_ONLY, channel="witness"),
    rec("901", 1, "2024-01-04T15:10:00Z", REWORDED, channel="reworded"),
    rec("902", 1, "2024-01-04T15:30:00Z", ALONE, channel="alone"),
]


def _matcher(tmp_path: Path) -> ClassifierMatcher:
    return ClassifierMatcher(matcher(tmp_path), decide=SCORES.get)


def _import(tmp_path: Path, records: list[dict], name: str, m) -> Archive:
    archive = Archive.open(tmp_path / name)
    import_file(archive, write_jsonl(tmp_path / f"{name}.jsonl", records), fmt="canonical", matcher=m,
                prepare_process=False)
    return archive


def _member(archive: Archive, key: str) -> tuple:
    platform, channel_id, message_id = key.split(":")
    return archive.conn.execute(
        "SELECT im.incident_id, im.kind, im.rules, im.actors, im.how FROM incident_messages im JOIN messages m"
        " ON m.id = im.message_rowid WHERE m.platform=? AND m.channel_id=? AND m.message_id=?",
        (platform, channel_id, message_id)).fetchone()


def test_classifier_hits_join_by_place_and_text_or_open_an_incident_of_unknown_actor(tmp_path: Path) -> None:
    archive = _import(tmp_path, KERMAN + KABUL + EXTRA, "a.db", _matcher(tmp_path))
    rows = list_incidents(archive.conn)
    kerman = next(r for r in rows if "Kerman" in r["places"])
    assert kerman["title"] == "Kerman, Iran · 2024-01-03"
    # by place + time: the witness report naming Kerman (its only hit is the classifier's)
    assert _member(archive, "telegram:900:1") == (kerman["id"], "report", '["classifier"]', "[]", "place")
    # by text: the reworded claim is a near copy of the Amaq claim, in its family
    inc, kind, rules, actors, how = _member(archive, "telegram:901:1")
    assert (inc, kind, rules, actors, how) == (kerman["id"], "claim", '["classifier"]', "[]", "near-copy")
    d = incident_detail(archive.conn, kerman["id"])
    claim = next(m for m in d["messages"] if m["channel_id"] == "500")
    assert next(m for m in d["messages"] if m["channel_id"] == "901")["family"] == claim["family"]
    # naming no place and no actor, copying nothing: its own incident, actor unknown; it does not
    # join Kerman (active, with claims) for lack of an actor to share
    alone = _member(archive, "telegram:902:1")
    assert alone[0] != kerman["id"] and alone[1:] == ("claim", '["classifier"]', "[]", "new")
    inc = next(r for r in rows if r["id"] == alone[0])
    assert inc["title"] == "incident · 2024-01-04" and inc["actors"] == [] and inc["places"] == []
    assert len(rows) == 3  # Kerman, Kabul and the lone claim
    # the rule hits' incidents are as without the classifier (the English report got its hit too)
    plain = _import(tmp_path, KERMAN + KABUL, "plain.db", matcher(tmp_path, ""))
    p_kerman = next(r for r in list_incidents(plain.conn) if "Kerman" in r["places"])
    assert [k for k in keys(d) if k.split(":")[1] not in ("900", "901")] == keys(incident_detail(plain.conn, p_kerman["id"]))
    assert "classifier" in _member(archive, "telegram:200:1")[2]
    assert _member(archive, "telegram:200:1")[0] == kerman["id"]
    archive.close()
    plain.close()


def test_a_classifier_hit_on_a_member_updates_it_and_never_moves_it(tmp_path: Path) -> None:
    archive = _import(tmp_path, KERMAN, "b.db", matcher(tmp_path))
    before = _member(archive, "telegram:200:1")
    assert before[2] == '["report"]'
    # the same messages again with the classifier beside the rules (its hits are new hits)
    import_file(archive, write_jsonl(tmp_path / "again.jsonl", KERMAN), fmt="canonical", matcher=_matcher(tmp_path),
                prepare_process=False)
    after = _member(archive, "telegram:200:1")
    assert after[0] == before[0] and after[2] == '["classifier","report"]' and after[4] == before[4]
    assert archive.conn.execute("SELECT count(*) FROM hits WHERE rule_id='classifier'").fetchone() == (1,)
    assert len(list_incidents(archive.conn)) == 1
    archive.close()


def test_an_actorless_first_claim_gets_the_incident_note_without_claimants(tmp_path: Path) -> None:
    """The classifier's claim naming Kerman but no actor, after the officials blamed others: the
    alert's note says "claim, …; officials blamed …" (no "by …": nobody is named)."""
    from monitor.incidents.alerting import alert_incident, note_text

    text = "Two of our brothers carried out the operation in Kerman, praise be to God"
    m = ClassifierMatcher(matcher(tmp_path), decide={text: ("claim", 0.9)}.get)
    archive = _import(tmp_path, KERMAN[:5] + [rec("950", 1, "2024-01-04T13:00:00Z", text, channel="brothers")], "n.db", m)
    inc, kind, rules, actors, how = _member(archive, "telegram:950:1")
    assert (kind, rules, actors, how) == ("claim", '["classifier"]', "[]", "place")
    hit_id = archive.conn.execute("SELECT id FROM hits WHERE rule_id='classifier'").fetchone()[0]
    got = alert_incident(archive.conn, hit_id)
    assert got["id"] == inc and got["note"]["claimants"] == []
    assert note_text(got["note"], {"israel": "Israel", "united-states": "United States"}) == (
        "claim, 25h2m after the first report; officials blamed Israel, United States at T+2h10m")
    archive.close()
