"""A hit naming places elsewhere does not join an incident by actor + time (issue 10; the
ISWAP post of ``make demo`` that joined the Kerman incident). The Kerman bombing of 3 January
2024 as tests/test_incidents.py tells it, and in the same week Islamic State's claims and
releases from Nigeria (its West Africa Province, Borno) and Syria (Homs): they name the same
actor, Islamic State, within its window, but other countries, so they start incidents of their
own (or join one where their places fit). A message naming no place still joins by actor +
time, and a repost of the Kerman claim still joins its family whatever else it names."""

from __future__ import annotations

from pathlib import Path

from monitor.archive import Archive
from monitor.incidents.gazetteer import load
from monitor.incidents.query import incident_detail, list_incidents
from monitor.ingest import import_file
from monitor.rules import Matcher, load_rules

from rules_helpers import write
from test_incidents import ACTORS, CLAIM_AR, KERMAN, RULES, keys, rec, write_jsonl

# Islamic State's names as the shipped actors list has them (its provinces and media), and
# ISWAP as a member
IS_ACTORS = ACTORS.replace(
    "ar: [الدولة الإسلامية, داعش]",
    "ar: [الدولة الإسلامية, داعش, ولاية غرب أفريقيا, ولاية غرب إفريقية, ولاية الشام, مؤسسة الفرقان, جنود الخلافة]",
).replace(
    "en: [Islamic State, ISIS]", "en: [Islamic State, ISIS, ISWAP, West Africa Province, Al-Furqan, Amaq]",
) + """
  - id: iswap
    type: group
    title: Islamic State West Africa Province (ISWAP)
    member_of: islamic-state
    names:
      en: [ISWAP, Islamic State West Africa Province]
      ar: [ولاية غرب إفريقيا, ولاية غرب أفريقيا]
"""
MEDIA_RULE = """
    id: is-media
    title: Islamic State media release
    level: low
    kind: watch
    match:
      media:
        any: [مؤسسة الفرقان, Al-Furqan, Amaq, الإصدار]
"""

# the same week, elsewhere: Islamic State in Nigeria (West Africa Province, Borno) and Syria
ISWAP_EN = rec("900", 11, "2024-01-05T09:10:00Z",
               "ISWAP claimed responsibility for an attack on an army base in Borno state, saying its fighters killed "
               "five soldiers", channel="naba_watch")
FURQAN_ISWAP = rec("500", 24, "2024-01-05T15:18:00Z",
                   "مؤسسة الفرقان: الإصدار المرئي الجديد من ولاية غرب أفريقيا بعنوان «ملاحم المجاهدين» قريباً",
                   channel="amaq_mirror")
NIGERIA_AR = rec("901", 3, "2024-01-05T16:00:00Z",
                 "تبنى جنود الخلافة الهجوم على ثكنة للجيش في ولاية برنو وقالوا إنهم قتلوا خمسة جنود",
                 channel="nashir_ng")
HOMS = rec("500", 19, "2024-01-04T23:30:44Z",
           "ولاية الشام: تبنى مقاتلو الدولة الإسلامية استهداف حاجز للجيش في ريف حمص الشرقي", channel="amaq_mirror")
SYRIA_ONLY = rec("902", 7, "2024-01-06T08:00:00Z",
                 "ولاية الشام: تبنى جنود الخلافة تفجير عبوة ناسفة على رتل للجيش", channel="nashir_sy")
# naming no place: joins Kerman by actor + time
NO_PLACE = rec("903", 1, "2024-01-04T18:10:02Z", "مؤسسة الفرقان تقدم: كلمة صوتية جديدة للمتحدث الرسمي للدولة الإسلامية",
               channel="furqan_relay")
# a repost of the Kerman claim that adds a line about West Africa: a near copy, it joins its family
REPOST_ELSEWHERE = rec("904", 2, "2024-01-04T15:00:00Z", CLAIM_AR + " وتابعوا إصدارات ولاية غرب أفريقيا",
                       channel="repost_wa")
SAME_WEEK = [ISWAP_EN, FURQAN_ISWAP, NIGERIA_AR, HOMS, SYRIA_ONLY, NO_PLACE, REPOST_ELSEWHERE]


def _matcher(tmp_path: Path) -> Matcher:
    d = tmp_path / "rules"
    write(d / "actors.yml", IS_ACTORS)
    for name, body in {**RULES, "media.yml": MEDIA_RULE}.items():
        write(d / name, body)
    return Matcher(load_rules([d]))


def _archive(tmp_path: Path, records: list[dict]) -> Archive:
    archive = Archive.open(tmp_path / "w.db")
    import_file(archive, write_jsonl(tmp_path / "w.jsonl", records), fmt="canonical", matcher=_matcher(tmp_path),
                prepare_process=False)
    return archive


def _key(r: dict) -> str:
    return f"{r['platform']}:{r['channel_id']}:{r['message_id']}"


def _incident_of(archive: Archive, r: dict) -> int:
    return archive.conn.execute(
        "SELECT im.incident_id FROM incident_messages im JOIN messages m ON m.id = im.message_rowid"
        " WHERE m.platform=? AND m.channel_id=? AND m.message_id=?", (r["platform"], r["channel_id"], r["message_id"]),
    ).fetchone()[0]


def test_the_provinces_islamic_state_names_are_places_in_their_country() -> None:
    gaz = load()
    for text, country in (
        (FURQAN_ISWAP["text"], "country:NG"), (ISWAP_EN["text"], "country:NG"), (NIGERIA_AR["text"], "country:NG"),
        ("ولاية سيناء: تبنى جنود الخلافة الهجوم", "country:EG"), ("Sinai Province claimed the attack", "country:EG"),
        (SYRIA_ONLY["text"], "country:SY"), ("Attack in Cabo Delgado", "country:MZ"),
    ):
        assert [p.id for p in gaz.find(text)] == [country], text
    # words that are not places stay so: Sina is a Persian name, Sinai lower-case is no name
    assert gaz.find("ابن سینا") == [] and gaz.find("the sinai of it") == [] and gaz.find("فيلم بورنو") == []


def test_a_same_week_islamic_state_claim_elsewhere_does_not_join_kerman_by_actor(tmp_path) -> None:
    archive = _archive(tmp_path, KERMAN + SAME_WEEK)
    kerman = _incident_of(archive, KERMAN[0])
    d = incident_detail(archive.conn, kerman)
    # Kerman: its own messages, the message naming no place (actor + time) and the repost
    assert set(keys(d)) == {_key(r) for r in KERMAN + [NO_PLACE, REPOST_ELSEWHERE]}
    assert d["places"][:2] == ["Kerman", "Iran"] and "Nigeria" not in d["places"]
    # Nigeria: the ISWAP claim, the Al-Furqan release and the Borno claim, one incident
    nigeria = {_incident_of(archive, r) for r in (ISWAP_EN, FURQAN_ISWAP, NIGERIA_AR)}
    assert len(nigeria) == 1 and kerman not in nigeria
    ng = incident_detail(archive.conn, nigeria.pop())
    assert ng["places"] == ["Nigeria"] and ng["title"] == "Nigeria · 2024-01-05"
    assert "islamic-state" in ng["actors"] and "iswap" in ng["actors"]
    # Syria: Homs, and a claim naming only the Syria province joins it by country
    syria = {_incident_of(archive, r) for r in (HOMS, SYRIA_ONLY)}
    assert len(syria) == 1 and kerman not in syria
    assert len(list_incidents(archive.conn)) == 3
    hows = dict(archive.conn.execute(
        "SELECT m.channel_id || ':' || m.message_id, im.how FROM incident_messages im JOIN messages m"
        " ON m.id = im.message_rowid"))
    assert hows["903:1"] == "actor" and hows["904:2"] == "near-copy" and hows["902:7"] == "place"

