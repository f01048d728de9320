"""Demonyms and adjectival place names are not places (issue 10): "the Nigerian army",
"Pakistani officials", "the Iranian foreign ministry", الجيش النيجيري, الخارجية الإيرانية,
ارتش نیجریه‌ای, مقامات پاکستانی. A speaker's nationality is not where it happened, but "an Iranian
city" or "Pakistani soldiers were killed" usually is. The Kerman bombing and the same week's
Islamic State claims in Nigeria and Syria (tests/test_incidents_places.py), with the messages
that name only a demonym: each joins its country's incident, or opens one where the demonym says
where it happened, or falls back to actor + time when it only names a speaker; Kerman, Nigeria
and Syria stay apart."""

from __future__ import annotations

from monitor.incidents.gazetteer import load
from monitor.incidents.query import incident_detail, list_incidents

from test_incidents import KERMAN, keys
from test_incidents_places import (
    FURQAN_ISWAP, HOMS, ISWAP_EN, NIGERIA_AR, NO_PLACE, REPOST_ELSEWHERE, SAME_WEEK, SYRIA_ONLY, _archive, _incident_of,
    _key,
)
from test_incidents import rec


def test_demonyms_are_not_places_and_say_where_or_who() -> None:
    gaz = load()
    for text, country, role in (
        ("The Nigerian army said troops repelled the attack", "country:NG", "who"),
        ("Pakistani officials said five were killed", "country:PK", "who"),
        ("the Iranian foreign ministry condemned it", "country:IR", "who"),
        ("قال الجيش النيجيري إن الهجوم فشل", "country:NG", "who"),
        ("نقلت الخارجية الإيرانية", "country:IR", "who"),
        ("أكد المسؤولون الباكستانيون", "country:PK", "who"),
        ("ارتش نیجریه‌ای اعلام کرد", "country:NG", "who"),
        ("مقامات پاکستانی گفتند", "country:PK", "who"),
        ("an Iranian city was hit", "country:IR", "where"),
        ("Pakistani soldiers were killed in the attack", "country:PK", "where"),
        ("قتل ثلاثة جنود باكستانيين", "country:PK", "where"),
        ("انفجار في مدينة إيرانية", "country:IR", "where"),
        ("انفجار در یک شهر ایرانی", "country:IR", "where"),
        ("سربازان پاکستانی کشته شدند", "country:PK", "where"),
        ("Israeli agents were behind it", "country:IL", "mention"),
        # the soldiers and bases of a power whose forces serve abroad are not where it happened
        ("the Resistance struck an American base with drones", "country:US", "mention"),
        ("پهپادها پایگاه آمریکایی را هدف قرار دادند", "country:US", "mention"),
    ):
        places, dems = gaz.find_all(text)
        assert places == [] and gaz.find(text) == [], text  # not places
        assert [(d.country.id, d.role) for d in dems] == [(country, role)], text
    # a place's own name stays a place (Saudi Arabia, السعودية), and a demonym next to a place
    # leaves the place as it was
    assert [p.id for p in gaz.find("Saudi Arabia condemned the attack")] == ["country:SA"]
    assert [p.id for p in gaz.find("القوات السعودية")] == ["country:SA"]
    assert [p.id for p in gaz.find("انفجاران في كرمان الإيرانية")] == ["city:128234"]
    # lower case is no name; Islamic, Arab are no country's
    assert gaz.find_all("the iranian side")[1] == [] and gaz.find_all("The Islamic State and Arab media")[1] == []


# The same week, messages naming only demonyms
IRAN_OFFICIALS = rec("910", 1, "2024-01-03T20:00:00Z",
                     "Iranian officials blamed Israel and the United States for the bombing", channel="irna_en",
                     platform="x")
IRAN_MEDIA_FA = rec("911", 4, "2024-01-04T09:00:00Z",
                    "رسانه‌های ایرانی: مقامات رژیم صهیونیستی را مسئول انفجار دانستند", channel="tasnim_fa")
NIGERIAN_ARMY = rec("912", 2, "2024-01-05T18:00:00Z",
                    "The Nigerian army said an Islamic State blast killed five soldiers at the base", channel="ng_army")
NIGERIAN_ARMY_AR = rec("913", 5, "2024-01-05T19:00:00Z",
                       "قال الجيش النيجيري إن انفجار عبوة ناسفة زرعها تنظيم داعش قتل خمسة جنود", channel="ng_ar")
# where it happened, in a country with no incident: opens its own (not Kerman, not Nigeria)
PAKISTAN_WHERE = rec("914", 8, "2024-01-05T20:00:00Z",
                     "Islamic State claimed responsibility for the blast that killed Pakistani soldiers",
                     channel="claims_pk")
# a speaker of a country with no incident: not a place, the actor rule decides (as before)
TURKISH_OFFICIALS = rec("915", 1, "2024-01-04T19:00:00Z",
                        "Turkish officials blamed Islamic State for the blast", channel="trt_watch")
DEMONYMS_ONLY = [IRAN_OFFICIALS, IRAN_MEDIA_FA, NIGERIAN_ARMY, NIGERIAN_ARMY_AR, PAKISTAN_WHERE, TURKISH_OFFICIALS]


def test_a_hit_naming_only_a_demonym_joins_its_countrys_incident(tmp_path) -> None:
    archive = _archive(tmp_path, KERMAN + SAME_WEEK + DEMONYMS_ONLY)
    kerman = _incident_of(archive, KERMAN[0])
    nigeria = _incident_of(archive, ISWAP_EN)
    syria = _incident_of(archive, HOMS)
    pakistan = _incident_of(archive, PAKISTAN_WHERE)
    assert len({kerman, nigeria, syria, pakistan}) == 4
    # Kerman: its messages as before, and the Iranian speakers naming no place (or only the
    # countries they blame)
    d = incident_detail(archive.conn, kerman)
    assert set(keys(d)) == {_key(r) for r in KERMAN + [NO_PLACE, REPOST_ELSEWHERE, IRAN_OFFICIALS, IRAN_MEDIA_FA,
                                                        TURKISH_OFFICIALS]}
    assert d["places"][:2] == ["Kerman", "Iran"] and "Israel" not in d["places"]
    # Nigeria: the army's statements in English and Arabic join it (by actor they would join
    # Kerman, whose latest message is newer)
    assert {_incident_of(archive, r) for r in (FURQAN_ISWAP, NIGERIA_AR, NIGERIAN_ARMY, NIGERIAN_ARMY_AR)} == {nigeria}
    assert _incident_of(archive, SYRIA_ONLY) == syria
    # Pakistani soldiers killed: where it happened, an incident located in Pakistan
    pk = incident_detail(archive.conn, pakistan)
    assert pk["places"] == ["Pakistan"] and set(keys(pk)) == {_key(PAKISTAN_WHERE)}
    assert len(list_incidents(archive.conn)) == 4
    hows = dict(archive.conn.execute(
        "SELECT m.channel_id || ':' || m.message_id, im.how FROM incident_messages im JOIN messages m"
        " ON m.id = im.message_rowid"))
    assert hows["910:1"] == "demonym" and hows["911:4"] == "demonym"
    assert hows["912:2"] == "demonym" and hows["913:5"] == "demonym"
    assert hows["914:8"] == "new" and hows["915:1"] == "actor"
    assert hows["903:1"] == "actor" and hows["904:2"] == "near-copy" and hows["902:7"] == "place"
