"""Slack delivery over loopback: a real HTTP server on 127.0.0.1 stands in for Slack."""

from __future__ import annotations

import logging

import pytest
from alerts_support import HOSTILE, free_port, hit_for, message, outbox_rows, slack, slack_text  # noqa: F401

from monitor.alerts.destinations import build_destinations
from monitor.alerts.outbox import DeliveryWorker
from monitor.config import Config
from monitor.logs import configure_logging


def _cfg(**dest) -> Config:
    return Config.model_validate({"alerts": {"destinations": {"slack": {"type": "slack", **dest}}}})


def _worker(archive, cfg: Config, **kw) -> DeliveryWorker:
    kw.setdefault("base_delay", 0.05)
    kw.setdefault("max_delay", 0.2)
    return DeliveryWorker(archive, build_destinations(cfg), **kw)


def _store(archive, text=None, mid="1", **kw):
    # each message its own text: a repost of an alerted text is not alerted again (incidents)
    msg = message(text or f"The group claimed responsibility for the attack #{mid}", mid=mid, **kw)
    return archive.store([(msg, [hit_for(msg)])])


async def test_webhook_delivers_block_kit_message_once(archive, slack):
    _store(archive)
    worker = _worker(archive, _cfg(webhook_url=slack.webhook_url))
    try:
        assert await worker.drain(5) == 1
        assert await worker.drain(0.5) == 0
    finally:
        await worker.aclose()
    assert len(slack.requests) == 1
    req = slack.requests[0]
    assert req["path"] == "/services/T000/B000/XXXXSECRETXXXX"
    body = req["json"]
    assert body["unfurl_links"] is False and body["unfurl_media"] is False
    assert body["blocks"][0]["type"] == "section"
    assert "*claimed responsibility*" in body["blocks"][2]["text"]["text"]
    [row] = outbox_rows(archive)
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] and row["last_error"] is None


async def test_webhook_500_then_429_retry_after_then_200_is_delivered_once(archive, slack):
    slack.respond((500, {}, "rollup_error"), (429, {"Retry-After": "1"}, "rate_limited"))
    _store(archive)
    worker = _worker(archive, _cfg(webhook_url=slack.webhook_url))
    try:
        assert await worker.drain(10) == 1
        assert await worker.drain(0.3) == 0
    finally:
        await worker.aclose()
    reqs = slack.requests
    assert len(reqs) == 3  # slack-sdk did not retry on its own: every try is an outbox attempt
    assert reqs[2]["t"] - reqs[1]["t"] >= 0.95  # Retry-After: 1 honoured
    [row] = outbox_rows(archive)
    assert row["status"] == "sent" and row["attempts"] == 3 and row["last_error"] is None
    assert worker.stats.retried == 2 and worker.stats.sent == 1


async def test_429_holds_back_every_pending_row_of_the_destination(archive, slack):
    slack.respond((429, {"Retry-After": "1"}, "rate_limited"))
    _store(archive, mid="1")
    _store(archive, mid="2")
    worker = _worker(archive, _cfg(webhook_url=slack.webhook_url))
    try:
        assert await worker.drain(10) == 2
    finally:
        await worker.aclose()
    first, *rest = slack.requests
    assert len(rest) == 2
    assert all(r["t"] - first["t"] >= 0.95 for r in rest)
    assert [r["status"] for r in outbox_rows(archive)] == ["sent", "sent"]


async def test_webhook_4xx_marks_the_row_failed_with_the_reason(archive, slack):
    slack.respond((404, {}, "no_service"))
    _store(archive)
    worker = _worker(archive, _cfg(webhook_url=slack.webhook_url))
    try:
        assert await worker.drain(2) == 0
    finally:
        await worker.aclose()
    assert len(slack.requests) == 1
    [row] = outbox_rows(archive)
    assert row["status"] == "failed"
    assert row["last_error"] == "Slack webhook HTTP 404: no_service"


async def test_connection_error_keeps_the_row_pending_for_a_retry(archive):
    _store(archive)
    url = f"http://127.0.0.1:{free_port()}/services/T1/B1/nothinglistens"
    worker = _worker(archive, _cfg(webhook_url=url), base_delay=30)
    try:
        assert await worker.deliver_due() == 0
    finally:
        await worker.aclose()
    [row] = outbox_rows(archive)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"].startswith("Slack connection error: ")
    assert row["next_attempt_at"] > row["created_at"]


async def test_web_api_chat_post_message(archive, slack):
    _store(archive)
    cfg = _cfg(token="xoxb-test-token-123", channel="#claims", base_url=slack.api_base)
    worker = _worker(archive, cfg)
    try:
        assert await worker.drain(5) == 1
    finally:
        await worker.aclose()
    [req] = slack.requests
    assert req["path"] == "/api/chat.postMessage"
    assert req["headers"]["Authorization"] == "Bearer xoxb-test-token-123"
    assert req["json"]["channel"] == "#claims"
    assert req["json"]["unfurl_links"] is False
    assert "*claimed responsibility*" in req["json"]["blocks"][2]["text"]["text"]


async def test_web_api_429_500_and_permanent_errors(archive, slack):
    slack.respond(
        (429, {"Retry-After": "1"}, '{"ok": false, "error": "ratelimited"}'),
        (500, {}, '{"ok": false, "error": "internal_error"}'),
    )
    _store(archive, mid="1")
    cfg = _cfg(token="xoxb-test-token-123", channel="#claims", base_url=slack.api_base)
    worker = _worker(archive, cfg)
    try:
        assert await worker.drain(10) == 1
        reqs = slack.wait_for(3)
        assert reqs[1]["t"] - reqs[0]["t"] >= 0.95
        slack.respond((200, {}, '{"ok": false, "error": "channel_not_found"}'))
        _store(archive, mid="2")
        assert await worker.drain(2) == 0
    finally:
        await worker.aclose()
    rows = outbox_rows(archive)
    assert rows[0]["status"] == "sent" and rows[0]["attempts"] == 3
    assert rows[1]["status"] == "failed" and rows[1]["last_error"] == "Slack API HTTP 200: channel_not_found"
    assert len(slack.requests) == 4


async def test_hostile_text_reaches_slack_escaped(archive, slack):
    _store(archive, text=HOSTILE, title="<!everyone> <@U999>")
    worker = _worker(archive, _cfg(webhook_url=slack.webhook_url))
    try:
        assert await worker.drain(5) == 1
    finally:
        await worker.aclose()
    sent = slack_text(slack.requests[0])
    for bad in ("<!channel>", "<!here>", "<@U123>", "<!everyone>", "<@U999>", "<https://evil.example", "|click>"):
        assert bad not in sent
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp; {{ 7*7 }}" in sent
    assert "49" not in sent
    # the only links are the ones we built
    assert "<https://t.me/amaq_example|" in sent and "<https://t.me/amaq_example/1|" in sent


@pytest.fixture
def debug_log():
    """structlog at DEBUG, JSON, into a buffer (returned); restored afterwards."""
    import io

    import structlog

    buf = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("DEBUG", "json", stream=buf)
    yield buf
    structlog.reset_defaults()
    root.setLevel(level)


async def test_secrets_never_reach_logs_or_errors(archive, slack, caplog, debug_log):
    logging.getLogger().setLevel(logging.DEBUG)  # even with stdlib DEBUG logging switched on
    caplog.set_level(logging.DEBUG)
    secret_part = "XXXXSECRETXXXX"
    # A server that echoes the request path in its error (some proxies do).
    slack.respond((404, {}, f"no_service for /services/T000/B000/{secret_part}"), (500, {}, "boom"))
    _store(archive, mid="1")
    _store(archive, mid="2")
    worker = _worker(archive, _cfg(webhook_url=slack.webhook_url))
    try:
        await worker.deliver_due()
    finally:
        await worker.aclose()
    # Web API: a rejected token
    slack.respond((200, {}, '{"ok": false, "error": "invalid_auth"}'))
    token = "xoxb-9999-very-secret-token"
    _store(archive, mid="3")
    api_worker = _worker(archive, _cfg(token=token, channel="#c", base_url=slack.api_base))
    try:
        await api_worker.deliver_due()
    finally:
        await api_worker.aclose()
    logged = debug_log.getvalue() + "\n".join(r.getMessage() for r in caplog.records)
    errors = " ".join(r["last_error"] or "" for r in outbox_rows(archive))
    assert "alert_failed" in logged and "alert_retry" in logged  # the failures were logged...
    assert "invalid_auth" in errors and "no_service" in errors  # ...and recorded
    for text in (logged, errors):
        assert secret_part not in text
        assert token not in text
        assert slack.webhook_url not in text


def test_slack_destination_needs_a_webhook_or_token_and_channel():
    from monitor.config import ConfigError

    with pytest.raises(ConfigError, match="alerts.destinations.slack: slack needs 'webhook_url', or 'token' and 'channel'"):
        build_destinations(_cfg(token="xoxb-1"))
