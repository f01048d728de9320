"""A statement or denial that names countries but no city (issue 10): the countries it names are
the governments that speak, blame or are blamed ("Iran blamed Israel and the United States for
the attack"), not where it happened. Before, every country it named was *located* in the
incident it joined (Kerman became an incident "in" Israel and the United States too), so the
next statement naming Israel joined Kerman rather than the same day's attack in Israel, and it
joined the incident sharing most of its countries whichever spoke. Now:

* it joins the active incident located in the country that speaks: a speaker's demonym
  ("Iranian officials"), else the first country it names ("Iran blamed ...", "Israel blamed
  Iran ..."), then the next one named; the countries it names count as mentions there, not
  where it happened;
* a denial names the accused ("the United States had no involvement"): it joins first the
  incident active within ``actor_window`` that names its actors (where the blame was), as a
  message naming no place would, else as a statement;
* with no incident of its countries active it opens one located in the first country it names.

The Kerman scenario of tests/test_incidents.py, with the same day's rocket strike in Ashkelon
and an explosion in Houston."""

from __future__ import annotations

from monitor.incidents.query import incident_detail, list_incidents

from test_incidents import KERMAN, keys, rec
from test_incidents_places import _archive, _incident_of, _key

ASHKELON = rec("800", 1, "2024-01-03T10:00:00Z", "Rocket explosion in Ashkelon; Hamas claimed responsibility",
               channel="il_news")
HOUSTON = rec("801", 1, "2024-01-03T09:00:00Z", "Explosion at a refinery in Houston, Texas", channel="us_news")
IRAN_BLAMES = rec("810", 1, "2024-01-03T20:00:00Z", "Iran blamed Israel and the United States for the terrorist attack",
                  channel="irna")
ISRAEL_BLAMES = rec("811", 1, "2024-01-04T08:00:00Z", "Israel blamed Iran for the rocket explosion", channel="idf")
US_DENIES = rec("812", 1, "2024-01-03T21:00:00Z",
                "The United States had no involvement, it is ridiculous to suggest so", channel="state")
# in Persian the subject comes first too: Iran holds Israel responsible (Kerman, not Ashkelon)
IRAN_BLAMES_FA = rec("814", 1, "2024-01-04T09:30:00Z", "ایران اسرائیل را مسئول حمله دانست", channel="irna_fa")
# no incident of its countries is active: opens one, located where the first country named is
PAKISTAN_BLAMES = rec("813", 1, "2024-01-05T12:00:00Z", "Pakistan blamed India for the attack", channel="ispr")


def _places(archive, iid: int) -> dict[str, int]:
    """place facet -> located (0 or 1)."""
    return dict(archive.conn.execute(
        "SELECT value, located FROM incident_facets WHERE incident_id=? AND facet='place'", (iid,)))


def test_a_statement_naming_only_countries_joins_the_speakers_incident_and_locates_nothing_else(tmp_path) -> None:
    archive = _archive(tmp_path, KERMAN + [ASHKELON, HOUSTON, IRAN_BLAMES, ISRAEL_BLAMES, US_DENIES, PAKISTAN_BLAMES,
                                           IRAN_BLAMES_FA])
    kerman, ashkelon, houston = (_incident_of(archive, r) for r in (KERMAN[0], ASHKELON, HOUSTON))
    assert len({kerman, ashkelon, houston}) == 3
    # Iran speaks: Kerman; Israel and the United States are mentions there, not where it happened
    assert _incident_of(archive, IRAN_BLAMES) == kerman
    d = incident_detail(archive.conn, kerman)
    assert d["places"] == ["Kerman", "Iran"] and d["title"] == "Kerman, Iran · 2024-01-03"
    facets = _places(archive, kerman)
    assert facets["country:IL"] == 0 and facets["country:US"] == 0 and facets["country:IR"] == 1
    # Israel speaks about the rocket: Ashkelon (not Kerman, which names Iran and Israel too)
    assert _incident_of(archive, ISRAEL_BLAMES) == ashkelon
    assert incident_detail(archive.conn, ashkelon)["places"] == ["Ashkelon", "Israel"]
    assert _incident_of(archive, IRAN_BLAMES_FA) == kerman
    # the accused denies: where it was blamed (Kerman), not the refinery in Houston
    assert _incident_of(archive, US_DENIES) == kerman
    assert set(keys(incident_detail(archive.conn, houston))) == {_key(HOUSTON)}
    assert incident_detail(archive.conn, houston)["places"] == ["Houston", "United States"]
    # nothing active in Pakistan or India: a new incident, in Pakistan only
    pk = _incident_of(archive, PAKISTAN_BLAMES)
    assert pk not in (kerman, ashkelon, houston)
    assert incident_detail(archive.conn, pk)["places"] == ["Pakistan"]
    assert _places(archive, pk) == {"country:PK": 1, "country:IN": 0}
    assert len(list_incidents(archive.conn)) == 4
    hows = dict(archive.conn.execute(
        "SELECT m.channel_id || ':' || m.message_id, im.how FROM incident_messages im JOIN messages m"
        " ON m.id = im.message_rowid"))
    assert hows["810:1"] == "place" and hows["811:1"] == "place" and hows["812:1"] == "actor"
    assert hows["813:1"] == "new"
