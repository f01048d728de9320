"""Near copies among a template's siblings (monitor.incidents.assign, ``_State.near_family``):
the candidates whose incident the assignment would pass over anyway (another city: the same
template about another attack; a barred incident) are not compared on their shingles. The
grouping must be that of a tracker that compares every candidate. Real archive files; many
attacks told in one template, with copies, trimmed copies and reposts a week later (found
through evicted texts), as bench/incident_bench.py makes them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from monitor.archive import Archive
from monitor.incidents import assign
from monitor.incidents import families as fam
from monitor.incidents.assign import IncidentTracker, Incoming, Settings

CITIES = ["Kerman", "Kabul", "Mosul", "Aleppo", "Karachi", "Herat", "Basra", "Peshawar", "Homs", "Kandahar"]
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _stream() -> list[tuple[str, str, str, list[str], str, int]]:
    """(date, channel, text, actors, kind, event) of the hits, in date order."""
    rnd = random.Random(11)
    out = []
    for event in range(40):
        city = CITIES[event % len(CITIES)]
        t0 = START + timedelta(hours=9 * event)
        claim = (f"The Islamic State claimed responsibility for the attack in {city} which killed "
                 f"{rnd.randrange(5, 90)} people, its statement said, naming attacker number {rnd.randrange(10**6)}")
        out.append((t0, f"c{event % 7}", claim, ["islamic-state"], "claim", event))
        out.append((t0 + timedelta(minutes=40), "copy_a", claim, ["islamic-state"], "claim", event))
        out.append((t0 + timedelta(minutes=50), "copy_b", claim[: len(claim) * 3 // 4], ["islamic-state"], "claim", event))
        out.append((t0 + timedelta(hours=1), f"c{(event + 3) % 7}",
                    f"The government blamed Israel and the United States for the crime in {city} {rnd.randrange(10**6)}",
                    ["iran", "israel"], "statement", event))
        if event % 3 == 0:  # a repost a week later: its family is no longer held
            out.append((t0 + timedelta(days=7, minutes=5), "late", claim[: len(claim) * 4 // 5], ["islamic-state"], "claim",
                        event))
    out.sort(key=lambda r: r[0])
    return [(d.strftime("%Y-%m-%dT%H:%M:%SZ"), ch, text, actors, kind, ev) for d, ch, text, actors, kind, ev in out]


def _run(tmp_path, name: str) -> tuple[list[tuple], int]:
    """Assign the stream in transactions of 8 hits; the members' rows and the shingle
    comparisons made."""
    archive = Archive.open(tmp_path / f"{name}.db")
    conn = archive.conn
    stream = _stream()
    with archive.transaction():
        for i, (date, ch, text, _a, _k, _e) in enumerate(stream):
            conn.execute("INSERT INTO messages(id, platform, channel_id, message_id, date, text, raw, raw_sha256,"
                         " search_text, first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                         (i + 1, "telegram", ch, str(i), date, text, "{}", "0" * 64, "", date, date))
    archive.incidents = tracker = IncidentTracker(Settings(in_memory=3))
    compared = 0
    near_copy = fam.near_copy

    def counting(a, b):
        nonlocal compared
        compared += 1
        return near_copy(a, b)

    fam.near_copy = counting
    try:
        for start in range(0, len(stream), 8):
            with archive.transaction():
                for i, (date, ch, text, actors, kind, _e) in enumerate(stream[start:start + 8], start):
                    tracker.queue(Incoming(i + 1, "telegram", ch, str(i), date, text, None, kind, ["r"], actors),
                                  "now", new=True)
    finally:
        fam.near_copy = near_copy
    rows = conn.execute("SELECT message_rowid, incident_id, family_id, how FROM incident_messages ORDER BY 1").fetchall()
    assert tracker._state is not None and tracker._state.evicted > 0  # the late reposts met evicted texts
    archive.close()
    return rows, compared


def test_candidates_of_other_cities_are_not_compared_and_the_grouping_is_the_same(tmp_path, monkeypatch) -> None:
    rows, compared = _run(tmp_path, "skip")
    monkeypatch.setattr(assign._State, "_passed_over", lambda self, fid, cities, barred: False)
    every_rows, every_compared = _run(tmp_path, "every")
    assert rows == every_rows
    assert compared < every_compared * 0.7  # many candidates are the template's siblings about other cities
    stream = _stream()
    how = {r[0]: r[3] for r in rows}
    fam_of = {r[0]: r[2] for r in rows}
    inc_of = {r[0]: r[1] for r in rows}
    claim_of = {r[5]: i for i, r in enumerate(stream, 1) if r[4] == "claim" and r[1].startswith("c")}
    for i, (_d, ch, text, _a, kind, event) in enumerate(stream, 1):
        if ch == "copy_a":  # the exact copy: the claim's family
            assert how[i] == "copy" and fam_of[i] == fam_of[claim_of[event]]
        if ch in ("copy_b", "late"):  # a trimmed copy, in time or a week later: in its claim's family (a near
            # copy; or an exact one of an earlier attack's in the same city with the same toll, whose family the claim joined)
            claim = claim_of[event]
            assert how[i] in ("near-copy", "copy") and fam_of[i] == fam_of[claim] and inc_of[i] == inc_of[claim], (ch, text, how[i])
    # the same template about different cities never shares a family
    city_of = {i: next(c for c in CITIES if f" {c} " in r[2] or r[2].endswith(c)) for i, r in enumerate(stream, 1)
               if r[4] == "claim"}
    by_family: dict[int, set[str]] = {}
    for i, city in city_of.items():
        by_family.setdefault(fam_of[i], set()).add(city)
    assert all(len(cities) == 1 for cities in by_family.values())
