"""Kind and actors of a hit reach every alert: console, file JSON, Slack, email, webhook.

A real archive (migration 3 columns), the matcher's tags stored by Archive.store, and the
loopback Slack/webhook HTTP server and aiosmtpd sink of the other alert tests.
"""

from __future__ import annotations

import io
import json

from alerts_support import message, slack, slack_text, smtp  # noqa: F401

from monitor.alerts.destinations import ConsoleDestination, build_destinations
from monitor.alerts.outbox import DeliveryWorker
from monitor.config import Config
from monitor.rules import Matcher, load_rules

from rules_helpers import write

ACTORS = """
actors:
  - id: houthis
    type: group
    title: Houthis (Ansar Allah)
    names: {en: [Houthi, Yahya Saree], ar: [الحوثيين]}
  - id: saree
    type: person
    title: Yahya Saree <spokesman>
    member_of: houthis
    names: {en: [Saree]}
"""
RULE = """
id: houthi-claim
title: Houthi claim of an attack
kind: claim
level: high
alert: [slack, hook, mail, log, console]
match:
  group: ["@actor:houthis"]
  claim: [targeted]
condition: group and claim
"""


async def test_every_destination_shows_kind_and_actor_titles(archive, slack, smtp, tmp_path):  # noqa: F811
    rules = tmp_path / "rules"
    write(rules / "actors.yml", ACTORS)
    write(rules / "claims.yml", RULE)
    log = tmp_path / "alerts.jsonl"
    cfg = Config.model_validate({
        "rules": str(rules),
        "alerts": {"destinations": {
            "slack": {"type": "slack", "webhook_url": slack.webhook_url},
            "hook": {"type": "webhook", "url": f"http://127.0.0.1:{slack.port}/hook"},
            "mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "security": "none",
                     "from": "claimwatch <alerts@example.org>", "to": ["desk@example.org"], "timeout": 5},
            "log": {"type": "file", "path": str(log)},
        }},
    })
    matcher = Matcher(load_rules([rules], known_destinations={"slack", "hook", "mail", "log", "console"}))
    msg = message("Yahya Saree: our forces targeted a ship in the Red Sea", channel="army21ye", title="Army 21")
    hits = matcher.match(msg)
    assert [(h.kind, h.actors) for h in hits] == [("claim", ("houthis", "saree"))]
    archive.store([(msg, hits)], alerts=True)
    assert archive.conn.execute("SELECT kind, actors FROM hits").fetchall() == [("claim", '["houthis","saree"]')]

    out = io.StringIO()
    destinations = {**build_destinations(cfg), "console": ConsoleDestination(stream=out)}
    worker = DeliveryWorker.from_config(archive, destinations, cfg, base_delay=0.05, max_delay=0.2)
    try:
        await worker.drain(5.0)
    finally:
        await worker.aclose()
    titles = "Houthis (Ansar Allah), Yahya Saree <spokesman>"
    subject = f"[claimwatch][HIGH][claim] Houthi claim of an attack · {titles} · Army 21 (@army21ye)"

    # console (the plain-text body)
    console = out.getvalue()
    assert "Kind:     claim" in console and f"Actors:   {titles}" in console
    # file: the JSON record
    (rec,) = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert rec["hit"]["kind"] == "claim"
    assert rec["hit"]["actors"] == [{"id": "houthis", "title": "Houthis (Ansar Allah)"},
                                    {"id": "saree", "title": "Yahya Saree <spokesman>"}]
    assert rec["subject"] == subject
    # Slack: the badge in the heading, an Actors field (escaped), the fallback text
    (sreq,) = [r for r in slack.requests if r["path"] != "/hook"]
    blocks = sreq["json"]["blocks"]
    assert "`claim`" in blocks[0]["text"]["text"]
    assert any(f["text"] == "*Actors*\nHouthis (Ansar Allah), Yahya Saree &lt;spokesman&gt;" for f in blocks[1]["fields"])
    assert "kind `claim`" in json.dumps(blocks[-1], ensure_ascii=False)
    assert sreq["json"]["text"].startswith("[HIGH][claim] Houthi claim of an attack · Houthis (Ansar Allah)")
    assert "<spokesman>" not in slack_text(sreq)
    # webhook: the same record as the file, in "data"
    (hreq,) = [r for r in slack.requests if r["path"] == "/hook"]
    assert hreq["json"]["subject"] == subject
    assert hreq["json"]["data"]["hit"]["actors"] == rec["hit"]["actors"] and hreq["json"]["data"]["hit"]["kind"] == "claim"
    # email: subject, text and HTML (escaped) bodies
    (mail,) = smtp.wait_for(1)
    assert mail["msg"]["Subject"] == subject
    text = mail["msg"].get_body(("plain",)).get_content()
    html = mail["msg"].get_body(("html",)).get_content()
    assert "Kind:     claim" in text and f"Actors:   {titles}" in text
    assert "<td>claim</td>" in html and "Houthis (Ansar Allah), Yahya Saree &lt;spokesman&gt;" in html


async def test_without_actor_titles_the_ids_are_shown_and_watch_has_no_badge(archive):
    from monitor.model import Hit, Match

    msg = message("blast near the port")
    watch = Hit("port-watch", "h1", "low", "Port watch", (Match("s", "blast", 0, 5),), ("console",), actors=("unknown-actor",))
    archive.store([(msg, [watch])], alerts=True)
    out = io.StringIO()
    worker = DeliveryWorker(archive, {"console": ConsoleDestination(stream=out)})
    assert await worker.deliver_due() == 1
    assert "Kind:     watch" in out.getvalue() and "Actors:   unknown-actor" in out.getvalue()
    from monitor.alerts.render import Renderer, render_row
    from alerts_support import outbox_rows

    alert = render_row(archive.conn, outbox_rows(archive)[0], Renderer())
    assert alert.subject == "[claimwatch][LOW] Port watch · unknown-actor · Amaq Example (@amaq_example)"
    assert alert.slack_text.startswith("[LOW] Port watch · unknown-actor · ")
