"""One alert per message and destination, however many rules hit it: the alert lists every
rule, kind and actor; the highest level leads (level, title, kind, routing of the lead);
throttle windows, incident threads and "a repost of an alerted text is not alerted again" as
before; outbox rows queued one per hit (before this) are still delivered as they were. Real
archive, the loopback Slack Web API server and the aiosmtpd sink of the other alert tests."""

from __future__ import annotations

import dataclasses
import json

from alerts_support import desk_config, drain
from alerts_support import hit_for, message, outbox_rows, slack, slack_text, smtp  # noqa: F401

from monitor.config import Config

TEXT = "The group claimed responsibility for the attack; two explosions shook the city"


def _cfg(slack, smtp) -> Config:  # noqa: F811
    return desk_config(slack, smtp)


async def _drain(archive, cfg) -> int:
    return await drain(archive, cfg)


def _hits(msg, dests=("slack", "mail"), report_dests=None):
    """A low `report` hit first in rule order, then the high `claim` hit: the claim leads."""
    report = dataclasses.replace(
        hit_for(msg, "explosions", rule_id="explosion-report", title="Explosion report", level="low",
                destinations=report_dests or dests),
        kind="report", actors=("city-police",))
    claim = dataclasses.replace(hit_for(msg, destinations=dests), kind="claim", actors=("islamic-state",))
    return [report, claim]


def _subject(mail) -> str:
    return " ".join(mail["msg"]["Subject"].split())


def _posts(slack):  # noqa: F811
    return [r for r in slack.requests if r["path"] == "/api/chat.postMessage"]


async def test_one_alert_per_destination_lists_every_rule_the_highest_level_leads(archive, slack, smtp):  # noqa: F811
    msg = message(TEXT)
    result = archive.store([(msg, _hits(msg))])
    assert result.hits == 2 and result.outbox == 2
    rows = outbox_rows(archive)
    report_id, claim_id = result.outcomes[0].new_hit_ids
    assert [(r["kind"], r["destination"], r["hit_id"]) for r in rows] == [
        ("alert", "slack", claim_id), ("alert", "mail", claim_id)]
    assert all(json.loads(r["payload"]) == {"hit_ids": [claim_id, report_id]} for r in rows)

    assert await _drain(archive, _cfg(slack, smtp)) == 2
    [post] = _posts(slack)
    text = slack_text(post)
    assert "*HIGH* · `claim` · *Claim of responsibility* (+1 rule)" in text
    assert "*Rules*\n• HIGH claim · Claim of responsibility (claims)\n• LOW report · Explosion report (explosion-report)" in text
    assert "*Actors*\nislamic-state, city-police" in text
    assert "*claimed responsibility*" in text and "*explosions*" in text  # both rules' matches in bold
    assert f"hit #{claim_id} rule `claims` · hit #{report_id} rule `explosion-report`" in text
    assert post["json"]["text"].startswith("[HIGH][claim] Claim of responsibility (+1 rule) · islamic-state, city-police")

    [mail] = smtp.wait_for(1)
    # (a long Subject is folded; the stdlib's unfolding may double a space at the fold)
    assert _subject(mail) == ("[claimwatch][HIGH][claim] Claim of responsibility (+1 rule) · islamic-state, "
                                      "city-police · Amaq Example (@amaq_example)")
    plain = mail["msg"].get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = mail["msg"].get_body(("html",)).get_content()
    assert ("Rules:\n  - HIGH claim · Claim of responsibility (claims)\n"
            "  - LOW report · Explosion report (explosion-report)\n") in plain
    assert "Matched:  claimed responsibility, explosions" in plain
    assert f"rule claims · hit #{claim_id}, rule explosion-report · hit #{report_id}" in plain
    assert "HIGH claim · Claim of responsibility (claims)<br>LOW report · Explosion report (explosion-report)" in html
    assert "<strong>claimed responsibility</strong>" in html and "<strong>explosions</strong>" in html


async def test_each_destination_gets_the_hits_routed_to_it(archive, slack, smtp):  # noqa: F811
    msg = message(TEXT)
    result = archive.store([(msg, _hits(msg, dests=("slack",), report_dests=("slack", "mail")))])
    report_id, claim_id = result.outcomes[0].new_hit_ids
    rows = outbox_rows(archive)
    # slack: both hits, the claim leading; mail: only the report, an alert of one hit as before
    assert [(r["destination"], r["hit_id"], r["payload"]) for r in rows] == [
        ("slack", claim_id, json.dumps({"hit_ids": [claim_id, report_id]}, separators=(",", ":"))),
        ("mail", report_id, None)]
    await _drain(archive, _cfg(slack, smtp))
    [mail] = smtp.wait_for(1)
    assert _subject(mail) == "[claimwatch][LOW][report] Explosion report · city-police · Amaq Example (@amaq_example)"
    plain = mail["msg"].get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Rules:" not in plain and "Claim of responsibility" not in plain


async def test_a_throttled_hit_in_an_open_window_is_counted_there_not_listed(archive, slack, smtp):  # noqa: F811
    first = message("The group claimed responsibility for the attack", mid="1")
    archive.store([(first, [hit_for(first, destinations=("slack",), throttle=600)])])
    second = message(TEXT, mid="2")
    claim = hit_for(second, destinations=("slack",), throttle=600)
    report = hit_for(second, "explosions", rule_id="explosion-report", title="Explosion report", level="low",
                     destinations=("slack",))
    result = archive.store([(second, [claim, report])])
    claim_id, report_id = result.outcomes[0].new_hit_ids
    rows = outbox_rows(archive)
    alerts = [(r["hit_id"], r["payload"]) for r in rows if r["kind"] == "alert"]
    assert alerts == [(1, None), (report_id, None)]  # the second message's alert lists the report only
    [window] = [json.loads(r["payload"]) for r in rows if r["kind"] == "followup"]
    assert window["count"] == 1 and window["hit_ids"] == [claim_id]


async def test_rows_queued_one_per_hit_before_are_delivered_as_they_were(archive, slack, smtp):  # noqa: F811
    """An archive written before one alert per message holds one alert row per hit (payload
    NULL): no migration, each is delivered as a one-rule alert."""
    msg = message(TEXT)
    result = archive.store([(msg, _hits(msg))], alerts=False)
    with archive.transaction():
        for hit_id in result.outcomes[0].new_hit_ids:
            archive.enqueue(hit_id, "mail")  # what the policy wrote then: alert:<hit id>:<destination>
    assert await _drain(archive, _cfg(slack, smtp)) == 2
    subjects = sorted(_subject(m) for m in smtp.wait_for(2))
    assert subjects == [
        "[claimwatch][HIGH][claim] Claim of responsibility · islamic-state · Amaq Example (@amaq_example)",
        "[claimwatch][LOW][report] Explosion report · city-police · Amaq Example (@amaq_example)",
    ]
    assert [r["status"] for r in outbox_rows(archive)] == ["sent", "sent"]


async def test_incident_thread_note_and_repost_skip_with_several_rules(archive, slack, smtp, tmp_path):  # noqa: F811
    from test_incident_alerts import _setup, _store, at
    from test_incident_alerts import _drain as drain_incident

    cfg, matcher = _setup(tmp_path, slack, smtp)
    for i in range(3):
        slack.respond((200, {}, json.dumps({"ok": True, "channel": "C1", "ts": f"1704283500.00010{i}"})))
    _store(archive, matcher, message("The Iranian President blamed Israel and the United States for the crime in Kerman",
                                     mid="5", channel="president_aide", channel_id="300", platform="x", date=at(3, 14, 20)))
    claim = ("The Islamic State claimed responsibility for the two explosions in Kerman near the tomb of Qassem "
             "Soleimani")
    _store(archive, matcher, message(claim, mid="77", channel="amaq_mirror", channel_id="-100500", date=at(4, 12, 5)))
    _store(archive, matcher, message(claim, mid="3", channel="repost_a", channel_id="-100600", date=at(4, 12, 9)))
    await drain_incident(archive, cfg)

    kinds = archive.conn.execute(
        "SELECT m.message_id, o.destination, o.status FROM outbox o JOIN hits h ON h.id = o.hit_id"
        " JOIN messages m ON m.id = h.message_rowid ORDER BY o.id").fetchall()
    assert kinds == [("5", "slack", "sent"), ("5", "mail", "sent"), ("77", "slack", "sent"), ("77", "mail", "sent"),
                     ("3", "slack", "skipped"), ("3", "mail", "skipped")]  # one row per message and destination
    posts = _posts(slack)
    assert len(posts) == 2 and posts[1]["json"]["thread_ts"] == "1704283500.000100"
    text = slack_text(posts[1])
    assert "Claim of responsibility* (+1 rule)" in text and "Explosion report (report)" in text
    assert "officials blamed Israel, United States" in text
    mails = smtp.wait_for(2)
    assert mails[1]["msg"]["In-Reply-To"] == mails[0]["msg"]["Message-ID"]


def test_alerts_listing_names_every_rule_of_an_alert(archive, db_path):
    from typer.testing import CliRunner

    from monitor.cli import app

    msg = message(TEXT)
    archive.store([(msg, _hits(msg, dests=("slack",)))])
    runner = CliRunner()
    r = runner.invoke(app, ["alerts", "--db", str(db_path), "--json"])
    assert r.exit_code == 0, r.output
    [row] = [json.loads(line) for line in r.stdout.splitlines()]
    assert (row["rule_id"], row["rules"]) == ("claims", ["claims", "explosion-report"]) and "payload" not in row
    r = runner.invoke(app, ["alerts", "--db", str(db_path)])
    assert "claims +1" in r.stdout
