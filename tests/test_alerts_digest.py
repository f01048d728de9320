"""The scheduled digest: counts per rule, top channels, links; delivered by email and Slack."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alerts_support import hit_for, message, outbox_rows, slack, slack_text, smtp  # noqa: F401

from monitor.alerts.destinations import build_destinations
from monitor.alerts.digest import build_digest, enqueue_digest
from monitor.alerts.outbox import DeliveryWorker
from monitor.timefmt import ts
from monitor.config import Config

NOW = datetime(2024, 5, 2, 7, 0, tzinfo=timezone.utc)


@pytest.fixture
def hits(archive, monkeypatch):
    """Hits detected at chosen times: 3x claims (2 channels), 1x statement, 1 too old."""
    at = {"t": NOW}
    monkeypatch.setattr("monitor.archive.store.now_iso", lambda: ts(at["t"]))

    def add(hours_ago, mid, channel, channel_id, rule_id, title, level):
        at["t"] = NOW - timedelta(hours=hours_ago)
        msg = message(f"text {mid} claimed responsibility", mid=mid, channel=channel, channel_id=channel_id,
                      title=channel.title())
        archive.store([(msg, [hit_for(msg, rule_id=rule_id, title=title, level=level)])])

    add(30, "1", "old_chan", "-1009", "claims", "Claim of responsibility", "high")  # before the window
    add(20, "2", "amaq_example", "-1001", "claims", "Claim of responsibility", "high")
    add(10, "3", "amaq_example", "-1001", "claims", "Claim of responsibility", "high")
    add(5, "4", "second_chan", "-1002", "claims", "Claim of responsibility", "high")
    add(1, "5", "second_chan", "-1002", "statements", "Official <statement>", "medium")
    return archive


def _cfg(**alerts) -> Config:
    return Config.model_validate({"alerts": alerts})


def test_build_digest_counts_rules_channels_and_lists_latest(hits):
    d = build_digest(hits, NOW - timedelta(hours=24), NOW)
    assert d["since"] == "2024-05-01T07:00:00.000000Z" and d["until"] == "2024-05-02T07:00:00.000000Z"
    assert d["total_hits"] == 4
    assert [(r["rule_id"], r["count"]) for r in d["rules"]] == [("claims", 3), ("statements", 1)]
    assert d["rules"][1]["title"] == "Official <statement>" and d["rules"][1]["level"] == "medium"
    assert [(c["channel_id"], c["count"]) for c in d["channels"]] == [("-1001", 2), ("-1002", 2)]
    assert d["channels"][0]["channel"] == "Amaq_Example (@amaq_example)"
    assert d["channels"][0]["url"] == "https://t.me/amaq_example"
    assert [h["url"] for h in d["latest"]] == [
        "https://t.me/second_chan/5",
        "https://t.me/second_chan/4",
        "https://t.me/amaq_example/3",
        "https://t.me/amaq_example/2",
    ]


def test_enqueue_digest_once_per_schedule_slot(hits):
    cfg = _cfg(destinations={"mail": {"type": "file", "path": "x.jsonl"}}, digest={"destination": "mail"})
    oid = enqueue_digest(hits, cfg, NOW)
    assert oid is not None
    assert enqueue_digest(hits, cfg, NOW + timedelta(seconds=20)) is None  # same minute: a misfire re-run
    [row] = [r for r in outbox_rows(hits) if r["kind"] == "digest"]
    assert row["destination"] == "mail" and row["hit_id"] is None and row["status"] == "pending"
    assert enqueue_digest(hits, _cfg(), NOW) is None  # no digest configured


async def test_digest_email_has_counts_top_channels_and_links(hits, smtp):
    cfg = _cfg(
        destinations={
            "mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "security": "none",
                     "from": "alerts@example.org", "to": ["desk@example.org"]}
        },
        digest={"destination": "mail", "cron": "0 7 * * *"},
    )
    hits.conn.execute("UPDATE outbox SET status='sent'")  # only the digest is due
    enqueue_digest(hits, cfg, NOW)
    worker = DeliveryWorker(hits, build_destinations(cfg))
    try:
        assert await worker.deliver_due() == 1
    finally:
        await worker.aclose()
    [mail] = smtp.wait_for(1)
    msg = mail["msg"]
    assert msg["Subject"] == "[claimwatch] Digest: 4 hits, 2024-05-01 07:00:00 UTC to 2024-05-02 07:00:00 UTC"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "- [HIGH] Claim of responsibility: 3" in text
    assert "- [MEDIUM] Official <statement>: 1" in text
    assert "- Amaq_Example (@amaq_example): 2 <https://t.me/amaq_example>" in text
    assert "https://t.me/second_chan/5" in text
    assert "Official &lt;statement&gt;" in html and "<statement>" not in html
    assert '<a href="https://t.me/amaq_example/3">' in html


async def test_digest_on_slack_and_an_empty_period(archive, slack):
    cfg = _cfg(destinations={"s": {"type": "slack", "webhook_url": slack.webhook_url}}, digest={"destination": "s"})
    enqueue_digest(archive, cfg, NOW)
    worker = DeliveryWorker(archive, build_destinations(cfg))
    try:
        assert await worker.deliver_due() == 1
    finally:
        await worker.aclose()
    sent = slack_text(slack.requests[0])
    assert ":bar_chart: *claimwatch digest* · 0 hits" in sent
    assert "_No hits in this period._" in sent


async def test_digest_on_slack_lists_rules_escaped(hits, slack):
    cfg = _cfg(destinations={"s": {"type": "slack", "webhook_url": slack.webhook_url}}, digest={"destination": "s"})
    hits.conn.execute("UPDATE outbox SET status='sent'")
    enqueue_digest(hits, cfg, NOW)
    worker = DeliveryWorker(hits, build_destinations(cfg))
    try:
        assert await worker.deliver_due() == 1
    finally:
        await worker.aclose()
    sent = slack_text(slack.requests[0])
    assert "• *HIGH* Claim of responsibility: 3" in sent
    assert "• *MEDIUM* Official &lt;statement&gt;: 1" in sent
    assert "• <https://t.me/amaq_example|Amaq_Example (@amaq_example)>: 2" in sent
