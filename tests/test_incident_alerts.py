"""Alerts that know the incident (issue 10): the first claim after officials blamed others
says so; later alerts of an alerted incident continue its Slack thread (``thread_ts``) and its
email thread (``In-Reply-To``/``References``); a repost of an alerted text is not alerted
again but counted in the incident and the digest. Real archive, real rules and actors, the
loopback Slack Web API server and the aiosmtpd sink of the other alert tests."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from alerts_support import message, slack, slack_text, smtp  # noqa: F401

from monitor.alerts.destinations import build_destinations
from monitor.alerts.digest import build_digest
from monitor.alerts.outbox import DeliveryWorker
from monitor.config import Config
from monitor.incidents.query import incident_detail
from monitor.rules import Matcher, load_rules

from rules_helpers import write

ACTORS = """
actors:
  - id: islamic-state
    type: group
    title: Islamic State
    names: {en: [Islamic State, ISIS]}
  - id: iran
    type: government
    title: Iran (government)
    names: {en: [Iran, Iranian President]}
  - id: israel
    type: government
    title: Israel
    names: {en: [Israel]}
  - id: united-states
    type: government
    title: United States
    names: {en: [United States]}
"""
RULES = {
    "claim.yml": """
        id: claim
        title: Claim of responsibility
        level: high
        kind: claim
        alert: [slack, mail]
        match:
          claim: [claimed responsibility]
    """,
    "statement.yml": """
        id: statement
        title: Official blame
        level: high
        kind: statement
        alert: [slack, mail]
        match:
          blame: [blamed]
    """,
    "report.yml": """
        id: report
        title: Explosion report
        level: medium
        kind: report
        alert: [slack, mail]
        match:
          boom: [explosions]
    """,
}
CLAIM = ("The Islamic State claimed responsibility for the double bombing in Kerman near the tomb of Qassem "
         "Soleimani, saying two of its members detonated explosive belts")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=timezone.utc)


def _setup(tmp_path, slack, smtp):  # noqa: F811
    rules = tmp_path / "rules"
    write(rules / "actors.yml", ACTORS)
    for name, body in RULES.items():
        write(rules / name, body)
    cfg = Config.model_validate({
        "rules": str(rules),
        "alerts": {"destinations": {
            "slack": {"type": "slack", "token": "xoxb-test-token-123", "channel": "#claims", "base_url": slack.api_base},
            "mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "security": "none",
                     "from": "claimwatch <alerts@example.org>", "to": ["desk@example.org"], "timeout": 5},
        }},
    })
    matcher = Matcher(load_rules([rules], known_destinations={"slack", "mail"}))
    return cfg, matcher


async def _drain(archive, cfg):
    worker = DeliveryWorker.from_config(archive, build_destinations(cfg), cfg, base_delay=0.05, max_delay=0.2)
    try:
        return await worker.drain(10.0)
    finally:
        await worker.aclose()


def _store(archive, matcher, msg):
    hits = matcher.match(msg)
    assert hits, msg.text
    archive.store([(msg, hits)], alerts=True)


def _posts(slack):  # noqa: F811
    return [r for r in slack.requests if r["path"] == "/api/chat.postMessage"]


async def test_claim_note_threads_and_no_second_alert_for_a_repost(archive, slack, smtp, tmp_path):  # noqa: F811
    cfg, matcher = _setup(tmp_path, slack, smtp)
    for i in range(3):
        slack.respond((200, {}, json.dumps({"ok": True, "channel": "C1", "ts": f"1704283500.00010{i}"})))
    # the first report, and officials blaming others two hours later
    _store(archive, matcher, message("Two explosions near the Soleimani tomb in Kerman, Iran; dozens killed",
                                     mid="1", channel="news_ir", channel_id="-100200", date=at(3, 12, 5)))
    _store(archive, matcher, message("The Iranian President blamed Israel and the United States for the crime in Kerman",
                                     mid="5", channel="president_aide", channel_id="300", platform="x", date=at(3, 14, 20)))
    assert await _drain(archive, cfg) == 4  # two alerts, two destinations
    # the claim 24 hours after the first report, and its repost in another channel minutes later
    _store(archive, matcher, message(CLAIM, mid="77", channel="amaq_mirror", channel_id="-100500", date=at(4, 12, 5)))
    _store(archive, matcher, message(CLAIM, mid="3", channel="repost_a", channel_id="-100600", date=at(4, 12, 9)))
    await _drain(archive, cfg)

    # one incident holds all four messages; the repost is in the claim's family
    detail = incident_detail(archive.conn, 1)
    assert detail["counts"]["messages"] == 4 and detail["counts"]["claim"] == 2
    claims = [m for m in detail["messages"] if m["kind"] == "claim"]
    assert claims[0]["family"] == claims[1]["family"] and [m["first_in_family"] for m in claims] == [True, False]

    # Slack: three posts (report, statement, claim); the 2nd and 3rd in the thread of the 1st
    posts = _posts(slack)
    assert len(posts) == 3
    assert "thread_ts" not in posts[0]["json"]
    assert posts[1]["json"]["thread_ts"] == "1704283500.000100"
    assert posts[2]["json"]["thread_ts"] == "1704283500.000100"
    note = "claim by Islamic State, 24h after the first report; officials blamed Israel, United States at T+2h15m"
    assert note in slack_text(posts[2])
    assert note not in slack_text(posts[1])  # only the claim carries it

    # email: three mails, the later two reply to the first
    mails = smtp.wait_for(3)
    assert len(mails) == 3
    first_id = mails[0]["msg"]["Message-ID"]
    assert mails[0]["msg"]["In-Reply-To"] is None
    for m in mails[1:]:
        assert m["msg"]["In-Reply-To"] == first_id and m["msg"]["References"] == first_id
    claim_text = mails[2]["msg"].get_body(("plain",)).get_content()
    assert f"Note:     {note}" in claim_text and "Incident: #1 Kerman, Iran" in claim_text

    # the repost: no alert to either destination, recorded as such
    rows = archive.conn.execute(
        "SELECT o.destination, o.status, o.last_error FROM outbox o JOIN hits h ON h.id = o.hit_id"
        " JOIN messages m ON m.id = h.message_rowid WHERE m.message_id = '3' ORDER BY o.destination").fetchall()
    assert [(d, s) for d, s, _e in rows] == [("mail", "skipped"), ("slack", "skipped")]
    assert all(e.startswith("repost of the text of alert ") for _d, _s, e in rows)
    # ...and counted in the digest
    digest = build_digest(archive, at(1, 0), datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert digest["incidents"] == [{"id": 1, "title": "Kerman, Iran · 2024-01-03", "messages": 4, "channels": 4,
                                    "reposts": 1}]
    assert digest["total_hits"] == 4


async def test_a_failed_first_alert_does_not_silence_its_repost(archive, slack, smtp, tmp_path):  # noqa: F811
    cfg, matcher = _setup(tmp_path, slack, smtp)
    slack.respond((404, {}, json.dumps({"ok": False, "error": "channel_not_found"})))
    _store(archive, matcher, message(CLAIM, mid="77", channel="amaq_mirror", channel_id="-100500", date=at(4, 12, 5)))
    await _drain(archive, cfg)
    _store(archive, matcher, message(CLAIM, mid="3", channel="repost_a", channel_id="-100600", date=at(4, 12, 9)))
    await _drain(archive, cfg)
    statuses = archive.conn.execute("SELECT destination, status FROM outbox ORDER BY id").fetchall()
    # Slack failed the first time, so the repost is alerted there; email had it already
    assert statuses == [("slack", "failed"), ("mail", "sent"), ("slack", "sent"), ("mail", "skipped")]
    assert "thread_ts" not in _posts(slack)[-1]["json"]  # no thread was started at Slack


def test_the_note_names_the_group_once_and_titles_without_gloss():
    from monitor.incidents.alerting import note_text

    titles = {"amaq": "Amaq News Agency (Islamic State)", "islamic-state": "Islamic State",
              "israel": "Israel", "iran": "Iran (government)"}
    note = {"claimants": ["amaq", "islamic-state"], "after": "25h50m", "blamed": ["iran", "israel"], "blamed_at": "T+2h21m"}
    assert note_text(note, titles) == ("claim by Islamic State, 25h50m after the first report; "
                                       "officials blamed Iran, Israel at T+2h21m")
    assert note_text({**note, "claimants": []}, titles).startswith("claim, 25h50m after")


def test_the_note_names_actors_without_their_titles_glosses() -> None:
    """The shipped actors' titles carry glosses ("Islamic State (IS, ISIS, Daesh) and its
    provinces"): the incident note names the actor only, as docs/alerts.md shows it."""
    from monitor.incidents.alerting import _short

    assert _short("Islamic State (IS, ISIS, Daesh) and its provinces") == "Islamic State"
    assert _short("Israel (Prime Minister's Office, government, Foreign Ministry)") == "Israel"
    assert _short("Iran (government)") == "Iran"
    assert _short("Hezbollah") == "Hezbollah"
    assert _short("(unnamed)") == "(unnamed)"
