"""Alerts for a learned classifier's hits (no terms, often no actors, a probability): routed to
their destinations like a rule's hit (never dropped for having no actor), one alert per message
listing rule hits and the classifier's together, the "why" saying "learned classifier: claim,
probability 0.83" instead of terms (Slack, email text and HTML, the JSON record, the digest),
hostile text escaped as before. Real archive, the loopback Slack Web API / webhook servers and the
aiosmtpd sink of the other alert tests."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

from alerts_support import desk_config, drain
from alerts_support import HOSTILE, hit_for, message, outbox_rows, slack, slack_text, smtp  # noqa: F401
from classifier_support import classifier_hit

from monitor.alerts.digest import build_digest, enqueue_digest
from monitor.alerts.render import Renderer, hit_context, render_row
from monitor.config import Config
from monitor.timefmt import ts

TEXT = "Our fighters carried out the operation at the checkpoint and killed twelve soldiers"


def _cfg(slack, smtp, **extra) -> Config:  # noqa: F811
    return desk_config(slack, smtp, **extra)


async def _drain(archive, cfg) -> int:
    return await drain(archive, cfg)


def _posts(slack):  # noqa: F811
    return [r for r in slack.requests if r["path"] == "/api/chat.postMessage"]


def _bodies(mail) -> tuple[str, str]:
    msg = mail["msg"]
    return (msg.get_body(("plain",)).get_content().replace("\r\n", "\n"), msg.get_body(("html",)).get_content())


async def test_a_classifier_hit_alone_is_alerted_with_its_probability_not_terms(archive, slack, smtp):  # noqa: F811
    msg = message(TEXT)
    result = archive.store([(msg, [classifier_hit(destinations=("slack", "mail"))])])
    assert result.hits == 1 and result.outbox == 2  # routed like a rule's hit, though it names no actor
    [hit_id] = result.outcomes[0].new_hit_ids
    assert archive.conn.execute("SELECT score, matches, actors FROM hits").fetchall() == [(0.83, "[]", None)]
    assert [(r["kind"], r["destination"], r["hit_id"], r["payload"]) for r in outbox_rows(archive)] == [
        ("alert", "slack", hit_id, None), ("alert", "mail", hit_id, None)]

    assert await _drain(archive, _cfg(slack, smtp)) == 2
    [post] = _posts(slack)
    text = slack_text(post)
    assert "*MEDIUM* · `claim` · *Learned classifier: claim*" in text
    assert "*Classifier*\nlearned classifier: claim, probability 0.83" in text
    assert "*Matched*" not in text and "*Actors*" not in text  # no empty sections
    assert "Our fighters carried out the operation" in text and "*Our" not in text  # nothing bolded
    assert f"hit #{hit_id} · rule `classifier` · kind `claim`" in text
    assert post["json"]["text"].startswith("[MEDIUM][claim] Learned classifier: claim · Amaq Example (@amaq_example): ")

    [mail] = smtp.wait_for(1)
    assert " ".join(mail["msg"]["Subject"].split()) == (
        "[claimwatch][MEDIUM][claim] Learned classifier: claim · Amaq Example (@amaq_example)")
    plain, html = _bodies(mail)
    assert "Classifier: learned classifier: claim, probability 0.83\n" in plain
    assert "Matched:" not in plain and "Actors:" not in plain and "Rules:" not in plain
    assert "<th align=\"left\" style=\"padding-right: 12px;\">Classifier</th><td>learned classifier: claim, probability 0.83</td>" in html
    assert "<strong>" not in html and ">Matched<" not in html


async def test_rule_hits_and_the_classifier_hit_make_one_alert_listing_both(archive, slack, smtp):  # noqa: F811
    msg = message("The group claimed responsibility for the attack; " + TEXT)
    claim = dataclasses.replace(hit_for(msg, destinations=("slack", "mail")), kind="claim", actors=("islamic-state",))
    # the classifier's hit first in the matcher's order, and at the same level as a rule's: the rule leads
    low = dataclasses.replace(hit_for(msg, "attack", rule_id="attack", title="Attack", level="medium",
                                      destinations=("slack", "mail")), kind="report")
    result = archive.store([(msg, [classifier_hit(destinations=("slack", "mail"), score=0.912), low, claim])])
    clf_id, low_id, claim_id = result.outcomes[0].new_hit_ids
    rows = outbox_rows(archive)
    assert [(r["kind"], r["destination"], r["hit_id"]) for r in rows] == [("alert", "slack", claim_id), ("alert", "mail", claim_id)]
    assert all(json.loads(r["payload"]) == {"hit_ids": [claim_id, low_id, clf_id]} for r in rows)

    assert await _drain(archive, _cfg(slack, smtp)) == 2
    text = slack_text(_posts(slack)[0])
    assert "*HIGH* · `claim` · *Claim of responsibility* (+2 rules)" in text
    assert ("*Rules*\n• HIGH claim · Claim of responsibility (claims)\n• MEDIUM report · Attack (attack)\n"
            "• MEDIUM claim · Learned classifier: claim (classifier, probability 0.91)") in text
    assert "*Matched*\nclaimed responsibility, attack" in text
    assert "*Classifier*\nlearned classifier: claim, probability 0.91" in text
    assert "*Actors*\nislamic-state" in text
    [mail] = smtp.wait_for(1)
    plain, html = _bodies(mail)
    assert "  - MEDIUM claim · Learned classifier: claim (classifier, probability 0.91)\n" in plain
    assert "Matched:  claimed responsibility, attack\nClassifier: learned classifier: claim, probability 0.91\n" in plain
    assert "MEDIUM claim · Learned classifier: claim (classifier, probability 0.91)" in html
    assert "<strong>claimed responsibility</strong>" in html


async def test_a_higher_level_classifier_hit_leads_and_hostile_text_stays_escaped(archive, slack, smtp):  # noqa: F811
    msg = message(HOSTILE + " " + TEXT)
    watch = hit_for(msg, "claimed responsibility", rule_id="watch-list", title="Watch <b>list</b>", level="low",
                    destinations=("slack", "mail"))
    result = archive.store([(msg, [watch, classifier_hit(destinations=("slack", "mail"), level="high")])])
    watch_id, clf_id = result.outcomes[0].new_hit_ids
    assert {r["hit_id"] for r in outbox_rows(archive)} == {clf_id}
    assert await _drain(archive, _cfg(slack, smtp)) == 2
    text = slack_text(_posts(slack)[0])
    assert "*HIGH* · `claim` · *Learned classifier: claim* (+1 rule)" in text
    assert "*Matched*\nclaimed responsibility" in text and "*Classifier*\nlearned classifier: claim" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text  # escaped as before
    plain, html = _bodies(smtp.wait_for(1)[0])
    assert "Watch &lt;b&gt;list&lt;/b&gt;" in html and "{{ 7*7 }}" in plain and "49" not in plain
    assert "<strong>claimed responsibility</strong>" in html


async def test_actorless_hits_of_different_messages_are_never_collapsed(archive, slack, smtp):  # noqa: F811
    """Two messages (same channel, same second, the same probability, no actors, no place) each
    get their alert: no key is built from the actor, so nothing merges them (a copy of an alerted
    text is still not alerted again: that is its repost family, as for a rule's hit)."""
    a = message(TEXT, mid="1")
    b = message("A martyrdom operation struck a convoy on the highway at dawn", mid="2")
    result = archive.store([(a, [classifier_hit(destinations=("slack",))]), (b, [classifier_hit(destinations=("slack",))])])
    assert result.hits == 2 and result.outbox == 2
    assert len({r["hit_id"] for r in outbox_rows(archive)}) == 2
    assert await _drain(archive, _cfg(slack, smtp)) == 2
    assert len(_posts(slack)) == 2
    # a throttled classifier hit: its window is the rule id's and channel's, like a rule's
    c = message("another operation elsewhere", mid="3", channel="other_chan", channel_id="-1002")
    hit = dataclasses.replace(classifier_hit(destinations=("slack",)), throttle_seconds=600)
    archive.store([(c, [hit])])
    d = message("one more operation", mid="4", channel="other_chan", channel_id="-1002")
    archive.store([(d, [hit])])
    followups = [r for r in outbox_rows(archive) if r["kind"] == "followup"]
    assert len(followups) == 1 and json.loads(followups[0]["payload"])["count"] == 1


def test_context_json_record_and_older_payloads(archive):
    msg = message(TEXT)
    archive.store([(msg, [classifier_hit(kind="statement", score=0.5049, destinations=("log",))])])
    [row] = outbox_rows(archive)
    alert = render_row(archive.conn, row, Renderer())
    assert alert.data["classifier"] == ["learned classifier: statement, probability 0.50"]
    assert alert.data["matches"] == [] and alert.data["matched_terms"] == []
    assert alert.data["rules"][0]["score"] == 0.5049 and alert.data["hit"]["score"] == 0.5049
    # a rule's hit: no classifier line, score None, the terms as before
    ctx = hit_context({"rule_id": "r", "text": "x claimed it", "matches": [{"term": "claimed", "start": 2, "end": 9}]})
    assert ctx["classifier"] == [] and ctx["rules"][0]["score"] is None and ctx["matches"] == ["claimed"]
    assert "Classifier" not in Renderer().render(ctx).text


NOW = datetime(2024, 5, 2, 7, 0, tzinfo=timezone.utc)


async def test_digest_counts_classifier_hits_per_kind_with_their_probability(archive, smtp, slack, monkeypatch):  # noqa: F811
    at = {"t": NOW}
    monkeypatch.setattr("monitor.archive.store.now_iso", lambda: ts(at["t"]))
    for hours, mid, hits in ((3, "1", [classifier_hit(score=0.8)]), (2, "2", [classifier_hit(score=0.9)]),
                             (1, "3", [classifier_hit("statement", 0.6)])):
        at["t"] = NOW - timedelta(hours=hours)
        archive.store([(message(f"text {mid} operation", mid=mid), hits)])
    at["t"] = NOW - timedelta(minutes=30)
    m4 = message("text 4 claimed responsibility", mid="4")
    archive.store([(m4, [hit_for(m4)])])
    d = build_digest(archive, NOW - timedelta(hours=24), NOW)
    assert [(r["rule_id"], r["title"], r["count"], r.get("why")) for r in d["rules"]] == [
        ("classifier", "Learned classifier: claim", 2, "mean probability 0.85"),
        ("claims", "Claim of responsibility", 1, None),
        ("classifier", "Learned classifier: statement", 1, "mean probability 0.60")]
    assert [h.get("why") for h in d["latest"]] == [
        None, "learned classifier: statement, probability 0.60", "learned classifier: claim, probability 0.90",
        "learned classifier: claim, probability 0.80"]
    archive.conn.execute("UPDATE outbox SET status='sent'")
    cfg = _cfg(slack, smtp, digest={"destination": "mail"})
    enqueue_digest(archive, cfg, NOW)
    assert await _drain(archive, cfg) == 1
    plain, html = _bodies(smtp.wait_for(1)[0])
    assert "- [MEDIUM] Learned classifier: claim: 2 (mean probability 0.85)\n" in plain
    assert "- [HIGH] Claim of responsibility: 1\n" in plain
    assert "Learned classifier: statement (learned classifier: statement, probability 0.60) · " in plain
    assert "Learned classifier: claim (mean probability 0.85)" in html
    cfg = _cfg(slack, smtp, digest={"destination": "slack"})
    enqueue_digest(archive, cfg, NOW + timedelta(minutes=1))
    assert await _drain(archive, cfg) == 1
    sent = slack_text(_posts(slack)[0])
    assert "• *MEDIUM* Learned classifier: claim: 2 (mean probability 0.85)" in sent
    # a digest queued before there were classifier lines renders as before
    from monitor.alerts.render import digest_context

    old = digest_context({"rules": [{"rule_id": "claims", "title": "C", "level": "high", "count": 1}],
                          "latest": [{"title": "C", "channel": "x", "url": None, "date": None}]})
    assert "- [HIGH] C: 1\n" in Renderer().render(old).text
