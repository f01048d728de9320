"""Email delivery over loopback: a real aiosmtpd server on 127.0.0.1 receives the mail."""

from __future__ import annotations

import pytest
from alerts_support import HOSTILE, SmtpSink, free_port, hit_for, message, outbox_rows, smtp  # noqa: F401

from monitor.alerts.destinations import build_destinations
from monitor.alerts.outbox import DeliveryWorker
from monitor.config import Config


def _cfg(port: int, **over) -> Config:
    dest = {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "claimwatch <alerts@example.org>",
        "to": ["desk@example.org", "duty@example.org"],
        "timeout": 5,
        **over,
    }
    return Config.model_validate({"alerts": {"destinations": {"mail": dest}}})


def _store(archive, text=None, mid="1", **kw):
    # each message its own text: a repost of an alerted text is not alerted again (incidents)
    msg = message(text or f"The group claimed responsibility for the attack #{mid}", mid=mid, **kw)
    return archive.store([(msg, [hit_for(msg, destinations=("mail",))])])


async def _drain(archive, cfg, timeout=5.0, **kw) -> DeliveryWorker:
    worker = DeliveryWorker(archive, build_destinations(cfg), base_delay=0.05, max_delay=0.2, **kw)
    try:
        await worker.drain(timeout)
    finally:
        await worker.aclose()
    return worker


async def test_email_is_multipart_text_and_html_with_subject(archive, smtp):
    _store(archive)
    await _drain(archive, _cfg(smtp.port))
    [mail] = smtp.wait_for(1)
    msg = mail["msg"]
    assert mail["mail_from"] == "alerts@example.org"
    assert mail["rcpt_tos"] == ["desk@example.org", "duty@example.org"]
    assert msg["Subject"] == "[claimwatch][HIGH] Claim of responsibility · Amaq Example (@amaq_example)"
    assert msg["From"] == "claimwatch <alerts@example.org>"
    assert msg["To"] == "desk@example.org, duty@example.org"
    assert msg["Message-ID"].startswith("<claimwatch.1.") and msg["Message-ID"].endswith("@example.org>")
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for part in (text, html):
        assert "Claim of responsibility" in part
        assert "2024-05-01 12:00:00 UTC" in part
        assert "https://t.me/amaq_example/1" in part
    assert "The group claimed responsibility for the attack" in text
    assert "Matched:  claimed responsibility" in text
    assert "The group <strong>claimed responsibility</strong> for the attack" in html
    [row] = outbox_rows(archive)
    assert row["status"] == "sent" and row["attempts"] == 1


async def test_html_email_escapes_message_text_and_jinja_is_literal(archive, smtp):
    _store(archive, text=HOSTILE + " <script>alert(1)</script>", title="<img src=x onerror=alert(1)>")
    await _drain(archive, _cfg(smtp.port))
    [mail] = smtp.wait_for(1)
    html = mail["msg"].get_body(("html",)).get_content()
    text = mail["msg"].get_body(("plain",)).get_content()
    assert "<script>" not in html and "<img" not in html and "<!channel>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp; {{ 7*7 }}" in html
    assert "{{ 7*7 }}" in text and "49" not in text and "49" not in html


async def test_crlf_in_hostile_fields_never_reaches_a_header(archive, smtp):
    evil = "Evil\r\nBcc: victim@evil.example\r\nX-Injected: yes\nSubject: fake"
    _store(archive, title=evil)
    await _drain(archive, _cfg(smtp.port))
    [mail] = smtp.wait_for(1)
    msg = mail["msg"]
    assert mail["rcpt_tos"] == ["desk@example.org", "duty@example.org"]
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert len(msg.get_all("Subject")) == 1
    assert msg["Subject"] == (
        "[claimwatch][HIGH] Claim of responsibility · "
        "Evil Bcc: victim@evil.example X-Injected: yes Subject: fake (@amaq_example)"
    )
    head = mail["raw"].split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"\r\nX-Injected:" not in head


async def test_a_long_non_ascii_subject_folds_without_changing_its_spaces(archive, smtp):
    # the stdlib's folding of encoded words drops the space between two of them (here it
    # read back "وكالةأعماق") or keeps the space before a fold and adds the fold's own
    title = "Amaq News Agency of the Islamic State in Khorasan · وكالة أعماق"
    _store(archive, title=title)
    await _drain(archive, _cfg(smtp.port))
    [mail] = smtp.wait_for(1)
    head = mail["raw"].split(b"\r\n\r\n", 1)[0]
    raw_subject = head.split(b"Subject:", 1)[1].split(b"\r\nFrom:", 1)[0]
    assert b"\r\n " in raw_subject  # folded: the case at issue
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert mail["msg"]["Subject"] == f"[claimwatch][HIGH] Claim of responsibility · {title} (@amaq_example)"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_auth_login(archive):
    sink = SmtpSink(users={"alerts@example.org": "s3cret-pass"}).start()
    try:
        _store(archive)
        await _drain(archive, _cfg(sink.port, username="alerts@example.org", password="s3cret-pass"))
        assert len(sink.wait_for(1)) == 1
        assert sink.auth_attempts == [("alerts@example.org", "s3cret-pass")]
    finally:
        sink.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_auth_refused_fails_without_leaking_the_password(archive):
    sink = SmtpSink(users={"alerts@example.org": "right"}).start()
    try:
        _store(archive)
        await _drain(archive, _cfg(sink.port, username="alerts@example.org", password="wrong-Pa55word"))
    finally:
        sink.stop()
    [row] = outbox_rows(archive)
    assert row["status"] == "failed"
    assert row["last_error"].startswith("SMTP 535")
    assert "wrong-Pa55word" not in row["last_error"]


async def test_smtp_4xx_is_retried_and_5xx_fails(archive, smtp):
    smtp.replies.extend(["451 4.3.0 try again later"])
    _store(archive, mid="1")
    await _drain(archive, _cfg(smtp.port))
    assert len(smtp.wait_for(1)) == 1
    [row] = outbox_rows(archive)
    assert row["status"] == "sent" and row["attempts"] == 2

    smtp.replies.extend(["554 5.7.1 rejected as spam"])
    _store(archive, mid="2")
    await _drain(archive, _cfg(smtp.port), timeout=1)
    row2 = outbox_rows(archive)[1]
    assert row2["status"] == "failed" and row2["last_error"] == "SMTP 554: 5.7.1 rejected as spam"
    assert len(smtp.messages) == 1


async def test_smtp_server_down_keeps_the_row_pending(archive):
    _store(archive)
    worker = DeliveryWorker(archive, build_destinations(_cfg(free_port())), base_delay=60)
    try:
        assert await worker.deliver_due() == 0
    finally:
        await worker.aclose()
    [row] = outbox_rows(archive)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"].startswith("SMTP connection error")


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_modes_against_a_plain_server_fail_with_a_clear_reason(archive, smtp, security):
    # The loopback server has no TLS: STARTTLS is not offered (permanent), implicit TLS
    # cannot handshake (connection error, retried).
    _store(archive)
    worker = DeliveryWorker(archive, build_destinations(_cfg(smtp.port, security=security)), base_delay=60)
    try:
        await worker.deliver_due()
    finally:
        await worker.aclose()
    [row] = outbox_rows(archive)
    if security == "starttls":
        assert row["status"] == "failed" and "STARTTLS" in row["last_error"]
    else:
        assert row["status"] == "pending" and row["last_error"].startswith("SMTP connection error")
    assert smtp.messages == []
