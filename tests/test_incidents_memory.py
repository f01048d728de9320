"""The incident tracker's memory is bounded (monitor.incidents.assign, ``Settings.in_memory``):
incidents past the window are evicted with their families and texts once more than the bound
are held, and read back from the tables when a later message needs them. Forced here with a
tiny bound; the results must be those of a tracker that keeps everything. Real archive files,
the real import path and rules (test_incidents's Kerman scenario)."""

from __future__ import annotations

from monitor.archive import Archive
from monitor.incidents import assign, corrections
from monitor.incidents.assign import IncidentTracker, Settings
from monitor.incidents.families import fingerprint, words
from monitor.incidents.query import list_incidents
from monitor.ingest import import_file

from test_incidents import CLAIM_AR, KABUL, KERMAN, matcher, rec, write_jsonl


def _open(tmp_path, name: str, in_memory: int | None) -> Archive:
    archive = Archive.open(tmp_path / name)
    archive.incidents = IncidentTracker(Settings() if in_memory is None else Settings(in_memory=in_memory))
    return archive


def _import(archive, tmp_path, records, name) -> None:
    import_file(archive, write_jsonl(tmp_path / f"{name}.jsonl", records), fmt="canonical", matcher=matcher(tmp_path),
                prepare_process=False)


def _import_kerman_then_later(archives, tmp_path) -> None:
    """The first batch (Kerman and Kabul), then each of LATER, into every archive."""
    for archive in archives:
        _import(archive, tmp_path, KERMAN[:9] + KABUL, "first")
        for i, batch in enumerate(LATER):
            _import(archive, tmp_path, batch, f"later{i}")


def _summary(archive) -> list[tuple]:
    rows = list_incidents(archive.conn, limit=1000)
    return sorted((r["start"], r["end"], r["counts"]["messages"], tuple(r["places"])) for r in rows)


def _members(archive) -> dict[str, tuple[int, int, str]]:
    """message key -> (incident, family, how)."""
    return {f"{p}:{c}:{m}": (i, f, how) for p, c, m, i, f, how in archive.conn.execute(
        "SELECT ms.platform, ms.channel_id, ms.message_id, im.incident_id, im.family_id, im.how"
        " FROM incident_messages im JOIN messages ms ON ms.id = im.message_rowid")}


# attacks elsewhere in the following days: they push the Kerman incident out of the window
LATER = [
    [rec("800", 1, "2024-01-08T09:00:00Z", "Explosion in Mosul: several killed near the old market")],
    [rec("801", 1, "2024-01-09T09:00:00Z", "Explosion in Aleppo: a car bomb near the citadel")],
    [rec("802", 1, "2024-01-10T09:00:00Z", "Explosion in Karachi: a blast near the port")],
]
LATE_REPOSTS = [
    # a trimmed, lightly edited copy eight days later (found through the evicted texts' band
    # keys), the exact copy a week later (2024-01-11) and a forward of the original
    rec("604", 6, "2024-01-12T08:00:00Z", CLAIM_AR.split(" وقال")[0] + " #عاجل #کرمان", channel="repost_d"),
    KERMAN[9],
    rec("605", 1, "2024-01-12T09:00:00Z", "", channel="repost_e", fwd={"name": "amaq_mirror", "id": "channel500",
                                                                       "message_id": "77"}),
]


def test_a_repost_a_week_later_joins_its_evicted_incident(tmp_path, monkeypatch) -> None:
    small, full = _open(tmp_path, "small.db", 1), _open(tmp_path, "full.db", None)
    try:
        _import_kerman_then_later((small, full), tmp_path)
        kerman = next(r["id"] for r in list_incidents(small.conn) if "Kerman" in r["places"])
        st = small.incidents._state
        # Kerman (last message 2024-01-04) is past the window: gone from memory, texts and all
        assert kerman not in st.incidents and st.partial and st.evicted >= 2
        assert fingerprint(words(CLAIM_AR)) not in st.texts
        assert all(f.incident != kerman for f in st.families.values())
        assert st.cold_texts >= 1  # the claim's band keys (in family_bands, not in memory)
        assert kerman in full.incidents._state.incidents  # the default bound keeps everything here

        for archive in (small, full):
            _import(archive, tmp_path, LATE_REPOSTS, "late")
        got = _members(small)
        assert got == _members(full)
        claim = got["telegram:500:77"]
        assert got["telegram:603:2"] == (kerman, claim[1], "copy")
        assert got["telegram:604:6"][:2] == (kerman, claim[1]) and got["telegram:604:6"][2] == "near-copy"
        assert got["telegram:605:1"] == (kerman, claim[1], "forward")
        assert _summary(small) == _summary(full)
        kerman_row = next(r for r in list_incidents(small.conn) if r["id"] == kerman)
        assert kerman_row["counts"]["messages"] == len(KERMAN) + 2 and kerman_row["end"] == "2024-01-12T09:00:00Z"
        assert kerman in small.incidents._state.incidents  # read back when its repost came
        # a rebuild (date order, evicting as it goes) gives the same incidents
        before = _summary(small)
        monkeypatch.setattr(corrections, "REBUILD_FLUSH", 2)
        evictions = []
        real_evict = assign._State.evict
        monkeypatch.setattr(assign._State, "evict", lambda st, settings: evictions.append(real_evict(st, settings)))
        corrections.rebuild(small)
        assert _summary(small) == before and sum(evictions) >= 1
    finally:
        small.close()
        full.close()


CITIES = ["Mosul", "Aleppo", "Karachi", "Kandahar", "Kirkuk", "Homs", "Peshawar", "Sanaa"]


def _day(i: int) -> list[dict]:
    """An attack a day, cycling through the cities (a city comes back after 8 days: outside the
    window, another incident), each with a report and a longer statement (a near-copy
    candidate of the same template elsewhere)."""
    city = CITIES[i % len(CITIES)]
    date = f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}T"
    return [
        rec(str(900 + i), 1, date + "08:00:00Z", f"Explosion in {city}: casualties feared ({i})"),
        rec(str(950 + i), 1, date + "10:00:00Z",
            f"Officials in {city} said the explosion near the market killed {10 + i} people and wounded {40 + i} more"),
    ]


def test_the_state_stays_bounded_as_the_archive_grows(tmp_path) -> None:
    small, full = _open(tmp_path, "small.db", 3), _open(tmp_path, "full.db", None)
    try:
        held = []
        for i in range(40):
            for archive in (small, full):
                _import(archive, tmp_path, _day(i), f"day{i}")
            held.append(small.incidents._state.size())
        n = small.conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
        assert n == 40  # one incident a day
        assert _summary(small) == _summary(full) and _members(small) == _members(full)
        # the bound (3) plus the incidents of the last 72 h and the last two transactions
        assert max(h["incidents"] for h in held) <= 7
        assert max(h["families"] for h in held) <= 2 * 7 and max(h["signatures"] for h in held) <= 7
        assert max(h["texts"] for h in held[20:]) <= max(h["texts"] for h in held[:20])  # no growth
        assert held[-1]["evicted"] >= 30 and held[-1]["cold_texts"] >= 30
        assert full.incidents._state.size()["incidents"] == 40  # without the bound: everything
    finally:
        small.close()
        full.close()
