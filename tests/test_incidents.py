"""Incidents (issue 10) on a Kerman scenario written for these tests: official statements, an
X post, a denial, the claim a day later, reposts in several channels (a forward, a trimmed copy,
one a week later), and a second attack the same day in another country. Real archive files,
real rules and actors, the real import path and CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from monitor.archive import Archive
from monitor.cli import app
from monitor.incidents import configure
from monitor.incidents.corrections import rebuild
from monitor.incidents.query import incident_detail, list_incidents, public, timeline
from monitor.timefmt import offset
from monitor.ingest import import_file
from monitor.rules import Matcher, load_rules

from rules_helpers import write

ACTORS = """
actors:
  - id: islamic-state
    type: group
    title: Islamic State
    names:
      en: [Islamic State, ISIS]
      ar: [الدولة الإسلامية, داعش]
      fa: [داعش]
  - id: iran
    type: government
    title: Iran
    names:
      en: [Iran, Iranian President]
      fa: [رئیس جمهور]
  - id: israel
    type: government
    title: Israel
    names:
      en: [Israel, Zionist regime]
      fa: [رژیم صهیونیستی]
  - id: united-states
    type: government
    title: United States
    names:
      en: [United States, State Department]
      fa: [آمریکا]
  - id: taliban
    type: group
    title: Taliban
    names:
      en: [Taliban]
"""

RULES = {
    "claim.yml": """
        id: claim
        title: Claim of responsibility
        level: high
        kind: claim
        match:
          claim:
            any: [claimed responsibility, claims responsibility, أعلن مسؤوليته, تبنى]
    """,
    "statement.yml": """
        id: statement
        title: Official blame
        level: high
        kind: statement
        match:
          blame:
            any: [blamed, will pay the price, محکوم, مسئول]
    """,
    "denial.yml": """
        id: denial
        title: Denial
        level: low
        kind: denial
        match:
          deny:
            any: [ridiculous, had no involvement, denies]
    """,
    "report.yml": """
        id: report
        title: Explosion report
        level: medium
        kind: report
        match:
          boom:
            any: [explosion, explosions, انفجار, blast]
    """,
}

T = "2024-01-03T"


def rec(channel_id: str, mid: int, date: str, text: str, *, platform: str = "telegram", channel: str | None = None,
        fwd: dict | None = None) -> dict:
    return {
        "schema": "claimwatch.message/1", "platform": platform, "channel_id": channel_id, "message_id": str(mid), "date": date, "text": text,
        "channel": channel or f"chan{channel_id}", "forwarded_from": fwd,
    }


CLAIM_AR = ("تبنى تنظيم الدولة الإسلامية الهجوم المزدوج في مدينة كرمان الذي استهدف تجمعا قرب قبر "
            "قاسم سليماني وقال إن اثنين من عناصره فجرا حزامين ناسفين")

KERMAN = [
    rec("100", 1, T + "11:58:00Z", "فوری: دو انفجار در مسیر گلزار شهدای کرمان"),
    rec("200", 1, T + "12:05:00Z", "Two explosions near the Soleimani tomb in Kerman, Iran; dozens killed"),
    rec("100", 2, T + "14:08:00Z", "رئیس جمهور: رژیم صهیونیستی و آمریکا مسئول جنایت کرمان هستند و تاوان آن را خواهند داد"),
    rec("300", 5, T + "14:20:00Z", "The Iranian President blamed Israel and the United States: they will pay the price for the crime in Kerman",
        platform="x", channel="president_aide"),
    rec("400", 9, T + "18:00:00Z", "State Department: suggestions that the United States was involved in the Kerman explosion are ridiculous; we had no involvement",
        platform="x", channel="statedept"),
    # the claim, a day later, then its reposts
    rec("500", 77, "2024-01-04T13:49:00Z", CLAIM_AR, channel="amaq_mirror"),
    rec("600", 3, "2024-01-04T13:52:00Z", CLAIM_AR, channel="repost_a"),
    rec("601", 4, "2024-01-04T14:01:00Z", "", channel="repost_b", fwd={"name": "amaq_mirror", "id": "channel500", "message_id": "77"}),
    rec("602", 8, "2024-01-04T14:30:00Z", CLAIM_AR.split(" وقال")[0] + " #عاجل", channel="repost_c"),
    rec("603", 2, "2024-01-11T10:00:00Z", CLAIM_AR, channel="repost_late"),  # a week later
]
# The same day, another attack in another country
KABUL = [
    rec("700", 1, T + "12:30:00Z", "Blast in Kabul: a suicide bomber targeted a crowd near the ministry"),
    rec("701", 1, T + "16:00:00Z", "The Taliban blamed Islamic State for the Kabul blast and said the attacker was killed"),
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    # The forward carries no text of its own: give it the claim's text as Telegram shows it.
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            r = dict(r)
            if r["forwarded_from"] and not r["text"]:
                r["text"] = CLAIM_AR
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def matcher(tmp_path: Path, extra: str = "") -> Matcher:
    d = tmp_path / f"rules{extra}"
    write(d / "actors.yml", ACTORS)
    for name, body in RULES.items():
        write(d / name, body.replace("title: ", f"title: {extra}") if extra else body)
    return Matcher(load_rules([d]))


def archive_with(tmp_path: Path, records: list[dict], name: str = "a.db") -> Archive:
    archive = Archive.open(tmp_path / name)
    import_file(archive, write_jsonl(tmp_path / f"{name}.jsonl", records), fmt="canonical", matcher=matcher(tmp_path),
                prepare_process=False)
    return archive


def keys(detail: dict) -> list[str]:
    return [f"{m['platform']}:{m['channel_id']}:{m['message_id']}" for m in detail["messages"]]


def test_kerman_is_one_incident_with_an_ordered_timeline_and_the_right_first_seen(tmp_path) -> None:
    archive = archive_with(tmp_path, KERMAN + KABUL)
    rows = list_incidents(archive.conn)
    assert len(rows) == 2  # Kerman and Kabul, the same day, stay apart
    kerman = next(r for r in rows if "Kerman" in r["places"])
    kabul = next(r for r in rows if "Kabul" in r["places"])
    assert kerman["title"] == "Kerman, Iran · 2024-01-03"
    assert kerman["first_seen"] == {"platform": "telegram", "channel_id": "100", "message_id": "1",
                                    "date": "2024-01-03T11:58:00Z", "url": "https://t.me/chan100/1"}
    assert kerman["counts"]["messages"] == len(KERMAN) and kerman["counts"]["channels"] == 9
    assert kerman["counts"]["claim"] == 5 and kerman["counts"]["denial"] == 1 and kerman["counts"]["statement"] == 2
    assert {"islamic-state", "iran", "israel", "united-states"} <= set(kerman["actors"])
    assert kerman["end"] == "2024-01-11T10:00:00Z"  # the repost a week later joined
    assert kabul["counts"]["messages"] == 2 and kabul["places"][0] == "Kabul"
    assert rows[0]["id"] == kerman["id"]  # newest first

    d = incident_detail(archive.conn, kerman["id"])
    dates = [m["date"] for m in d["messages"]]
    assert dates == sorted(dates)
    assert keys(d)[0] == "telegram:100:1"
    assert set(public(d)) == {"id", "title", "places", "actors", "start", "end", "first_seen", "counts", "messages"}
    assert set(d["messages"][0]) == {"platform", "channel_id", "message_id", "date", "kind", "rules", "actors",
                                     "family", "first_in_family", "lag_seconds", "origin"}
    # the claim's family: first seen in the Amaq mirror; forward, exact copy, trimmed copy, late repost
    claim = next(m for m in d["messages"] if m["channel_id"] == "500")
    assert claim["first_in_family"] and claim["kind"] == "claim"
    family = [m for m in d["messages"] if m["family"] == claim["family"]]
    assert {m["channel_id"] for m in family} == {"500", "600", "601", "602", "603"}
    assert [m["first_in_family"] for m in family].count(True) == 1
    # provenance: each copy's lag after the first, and the forward's origin as Telegram gives it
    assert [(m["channel_id"], m["lag_seconds"], m["origin"]) for m in family] == [
        ("500", 0, None), ("600", 180, None), ("601", 720, "telegram:500:77"), ("602", 2460, None),
        ("603", 7 * 86400 - 13 * 3600 - 49 * 60 + 10 * 3600, None)]
    entries = timeline(d)
    head = next(e for e in entries if e["channel_id"] == "500")
    assert head["offset"] == "T+1d1h51m"
    assert head["family_note"] == "first seen in amaq_mirror, reposted by 3 channels within 41m"
    late = next(e for e in entries if e["channel_id"] == "603")
    assert late["repost_of"] is head and "6d20h" in late["family_note"]
    assert offset("2024-01-03T11:58:00Z", "2024-01-03T14:08:00Z") == "T+2h10m"


def test_same_day_attack_in_another_country_and_a_later_unrelated_message_stay_apart(tmp_path) -> None:
    archive = archive_with(tmp_path, KERMAN[:3] + KABUL + [
        rec("800", 1, "2024-01-09T09:00:00Z", "Explosion reported in Kerman market, cause unknown"),  # > 72 h later
    ])
    rows = list_incidents(archive.conn)
    assert len(rows) == 3
    kabul = next(r for r in rows if "Kabul" in r["places"])
    d = incident_detail(archive.conn, kabul["id"])
    assert keys(d) == ["telegram:700:1", "telegram:701:1"]  # the Taliban statement joined by place
    assert [r["counts"]["messages"] for r in rows] == [1, 2, 3]


def test_window_is_configurable(tmp_path) -> None:
    from monitor.config import Config

    archive = Archive.open(tmp_path / "w.db")
    configure(archive, Config.model_validate({"incidents": {"window": "1h"}}))
    import_file(archive, write_jsonl(tmp_path / "w.jsonl", KERMAN[:3]), fmt="canonical", matcher=matcher(tmp_path),
                prepare_process=False)
    # the statement came 2 h after the last report: a second incident with a 1 h window
    assert len(list_incidents(archive.conn)) == 2


def test_merge_and_detach_hold_across_a_reimport_and_a_rebuild(tmp_path) -> None:
    db = tmp_path / "c.db"
    runner = CliRunner()
    archive = archive_with(tmp_path, KERMAN + KABUL, name="c.db")
    kerman = next(r for r in list_incidents(archive.conn) if "Kerman" in r["places"])["id"]
    kabul = next(r for r in list_incidents(archive.conn) if "Kabul" in r["places"])["id"]
    archive.close()
    # detach the State Department's denial, then merge Kabul into Kerman (an analyst's call)
    res = runner.invoke(app, ["incident", "detach", str(kerman), "x:400:9", "--db", str(db)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["incident", "merge", str(kerman), str(kabul), "--db", str(db)])
    assert res.exit_code == 0, res.output
    bad = runner.invoke(app, ["incident", "merge", str(kerman), str(kabul), "--db", str(db)])
    assert bad.exit_code == 2 and "already one incident" in bad.output

    def state() -> tuple[int, set[str], set[str]]:
        with Archive.open(db) as ar:
            rows = list_incidents(ar.conn)
            merged = next(r for r in rows if "Kerman" in r["places"])
            d = incident_detail(ar.conn, merged["id"])
            alone = [r for r in rows if r["id"] != merged["id"]]
            return len(rows), set(keys(d)), {r["first_seen"]["channel_id"] for r in alone}

    n, members, alone = state()
    assert n == 2 and {"telegram:700:1", "telegram:701:1"} <= members and "x:400:9" not in members
    assert alone == {"400"}
    # a re-import with changed rules: new hits on every message, nothing moves
    with Archive.open(db) as ar:
        before = ar.conn.execute("SELECT count(*) FROM hits").fetchone()[0]
        import_file(ar, write_jsonl(tmp_path / "again.jsonl", KERMAN + KABUL), fmt="canonical",
                    matcher=matcher(tmp_path, extra="v2 "), prepare_process=False)
        assert ar.conn.execute("SELECT count(*) FROM hits").fetchone()[0] > before
    assert state() == (n, members, alone)
    # a rebuild from scratch applies the recorded corrections again
    with Archive.open(db) as ar:
        res = rebuild(ar)
        assert res["corrections"] == 2
    assert state() == (n, members, alone)
    # merged ids lead to the incident they were merged into
    show = runner.invoke(app, ["incident", "show", str(kabul), "--json", "--db", str(db)])
    assert show.exit_code == 0 and json.loads(show.output)["counts"]["messages"] == len(members)


def test_corrections_name_what_is_wrong_with_their_arguments(tmp_path) -> None:
    db = tmp_path / "bad.db"
    runner = CliRunner()
    archive = archive_with(tmp_path, KERMAN, name="bad.db")
    kerman = list_incidents(archive.conn)[0]["id"]
    archive.close()

    def err(*args: str) -> str:
        res = runner.invoke(app, ["incident", *args, "--db", str(db)])
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output
        return " ".join(res.output.split())

    assert "Invalid value for 'A'" in err("merge", "x", str(kerman))
    assert "Invalid value for 'B'" in err("merge", str(kerman), "y")
    assert "'garbage' is not a message key (PLATFORM:CHANNEL_ID:MESSAGE_ID)" in err("detach", str(kerman), "garbage")
    assert "no message telegram:999:1 in the archive" in err("detach", str(kerman), "telegram:999:1")
    assert "no incident 999" in err("detach", "999", "x:400:9")
    # nothing was changed by the refused corrections
    with Archive.open(db) as ar:
        assert len(list_incidents(ar.conn)) == 1
        assert ar.conn.execute("SELECT count(*) FROM incident_corrections").fetchone()[0] == 0


def test_cli_listing_filters_show_and_markdown(tmp_path) -> None:
    archive_with(tmp_path, KERMAN + KABUL, name="cli.db").close()
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    res = runner.invoke(app, ["incidents", "--json", "--db", db])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert len(rows) == 2
    for args, expect in ((["--place", "كرمان"], 1), (["--place", "Kabul"], 1), (["--place", "Iran"], 1),
                         (["--actor", "taliban"], 1), (["--kind", "denial"], 1), (["--kind", "report"], 2),
                         (["--since", "2024-01-10"], 1), (["--until", "2024-01-02"], 0)):
        out = runner.invoke(app, ["incidents", "--json", "--db", db, *args])
        assert out.exit_code == 0, out.output
        assert len(out.output.splitlines()) == expect, (args, out.output)
    table = runner.invoke(app, ["incidents", "--db", db], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    for r in rows:  # on 80 columns the day of start and end is shown whole, not cut to "2024-01-…"
        assert r["start"][:10] in table.output and r["end"][:10] in table.output, table.output
        assert r["start"][11:16] in table.output
    bad = runner.invoke(app, ["incidents", "--kind", "rumour", "--db", db])
    assert bad.exit_code == 2 and "unknown kind" in bad.output
    kerman = next(r for r in rows if "Kerman" in r["places"])
    md = runner.invoke(app, ["incident", "show", str(kerman["id"]), "--markdown", "--db", db])
    assert md.exit_code == 0
    assert md.output.startswith(f"## Incident {kerman['id']}: Kerman, Iran · 2024-01-03")
    assert "| T+2h10m | 2024-01-03 14:08 | statement |" in md.output
    assert "reposted by 3 channels within 41m" in md.output
    text = runner.invoke(app, ["incident", "show", str(kerman["id"]), "--db", db])
    assert text.exit_code == 0 and "T+1d1h51m" in text.output
    missing = runner.invoke(app, ["incident", "show", "999", "--db", db])
    assert missing.exit_code == 1


def test_show_on_a_wide_console_keeps_the_timeline_and_escapes_hostile_text(tmp_path) -> None:
    """On a console of 120 columns or more the actors and channel columns are cut, never the
    offsets, kinds and text; text from a post reaches the terminal without its escape
    sequences or bidi overrides."""
    hostile = [dict(r) for r in KERMAN]
    hostile[1]["text"] = "Two explosions near the Soleimani tomb \x1b[2Jin Kerman, Iran; \u202edozens killed"
    archive_with(tmp_path, hostile, name="wide.db").close()
    db = str(tmp_path / "wide.db")
    runner = CliRunner()
    for width in ("80", "150", "220"):
        out = runner.invoke(app, ["incident", "show", "1", "--db", db], env={"COLUMNS": width})
        assert out.exit_code == 0, out.output
        assert "\x1b" not in out.output and "\u202e" not in out.output, width
        if width != "80":  # at 80 columns the text wraps anywhere
            assert "\\x1b[2J" in out.output, width
        for seen in ("T+0m", "T+1d1h51m", "statement", "claim", "Soleimani"):
            assert seen in out.output, (width, seen)
        # the speaker/actor of each message, at any width (a column when wide, under the text else)
        table = out.output[out.output.index("T+0m"):]
        assert "united-states" in table and "Islamic State" in table, width


def test_verify_and_export_include_incidents(tmp_path) -> None:
    archive_with(tmp_path, KERMAN + KABUL, name="v.db").close()
    db = str(tmp_path / "v.db")
    runner = CliRunner()
    assert runner.invoke(app, ["incident", "detach", "1", "x:400:9", "--db", db]).exit_code == 0
    res = runner.invoke(app, ["verify", "--json", "--db", db])
    assert res.exit_code == 0, res.output
    assert "3 incident(s), 1 analyst correction(s) checked" in json.loads(res.output)["notes"]
    res = runner.invoke(app, ["export", "-o", str(tmp_path / "out.jsonl"), "--manifest", str(tmp_path / "m.json"),
                              "--db", db])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["incidents"] == 3
    assert [(c["action"], c["message_key"]) for c in manifest["incident_corrections"]] == [("detach", "x:400:9")]
    # a tampered incident table is a problem
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE incidents SET messages = messages + 1 WHERE id = 1")
    res = runner.invoke(app, ["verify", "--json", "--db", db])
    assert res.exit_code == 1


def test_listing_on_80_columns_keeps_each_kind_count_whole(tmp_path) -> None:
    """On 80 columns every line of the counts is whole ("12 statement", never cut to
    "stateme…"), next to the whole start and end days; a wide console keeps its columns."""
    more = [rec(str(800 + i), 1, f"{T}15:{i:02d}:00Z",
                f"Official {i}: the Zionist regime and America will pay the price for the crime in Kerman")
            for i in range(10)]
    archive_with(tmp_path, KERMAN + KABUL + more, name="wide80.db").close()
    db = str(tmp_path / "wide80.db")
    runner = CliRunner()
    rows = [json.loads(line) for line in runner.invoke(app, ["incidents", "--json", "--db", db]).output.splitlines()]
    kerman = next(r for r in rows if "Kerman" in r["places"])
    assert kerman["counts"]["statement"] == 12 and kerman["counts"]["claim"] == 5
    table = runner.invoke(app, ["incidents", "--db", db], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    assert max(len(line) for line in table.output.splitlines()) <= 80, table.output
    assert "statem…" not in table.output and "stateme…" not in table.output, table.output
    for seen in ("12 statement", "5 claim", "1 denial", "1 report", "1 statement", "20 msgs", "19 chans"):
        assert seen in table.output, (seen, table.output)
    for r in rows:
        assert r["start"][:10] in table.output and r["end"][:10] in table.output, table.output
    wide = runner.invoke(app, ["incidents", "--db", db], env={"COLUMNS": "160"})
    assert wide.exit_code == 0 and "chans" in wide.output and "12 statement" in wide.output, wide.output


def test_markdown_timeline_keeps_hostile_posts_inert(tmp_path) -> None:
    """A post's text, channel and url are hostile: `incident show --markdown` must not turn them
    into live links, HTML or reordered lines when the report is pasted and rendered."""
    hostile = [
        dict(rec("800", 1, T + "12:00:00Z",
                 "Blast in Kerman <script>alert(1)</script> [click](javascript:alert(2)) \u202eevil\u202c",
                 channel="evil_chan"), url="javascript:alert(3)"),
        dict(rec("801", 2, T + "12:30:00Z", "The Iranian President blamed Israel for the Kerman blast"),
             url="https://t.me/ok_chan/2?x=(y)"),
    ]
    archive_with(tmp_path, hostile, name="md.db").close()
    db = str(tmp_path / "md.db")
    runner = CliRunner()
    rows = [json.loads(line) for line in runner.invoke(app, ["incidents", "--json", "--db", db]).output.splitlines()]
    md = runner.invoke(app, ["incident", "show", str(rows[0]["id"]), "--markdown", "--db", db])
    assert md.exit_code == 0, md.output
    out = md.output
    assert "javascript:alert(3)" not in out  # the record's own url is no link target
    assert "\\[click\\](javascript:alert(2))" in out  # the post's link syntax is shown, not made a link
    assert "<script>" not in out and "\\<script\\>" in out
    assert "\\[click\\]" in out
    assert "\u202e" not in out and "\u202c" not in out
    assert "[chan801](https://t.me/ok_chan/2?x=%28y%29)" in out
    assert "[evil\\_chan](" not in out and "evil\\_chan" in out
