"""Email over real TLS on loopback: STARTTLS (with login) and implicit TLS against aiosmtpd,
with a throwaway CA (trustme); an untrusted certificate is refused, nothing is sent."""

from __future__ import annotations

import email
import email.policy
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from alerts_support import hit_for, message, outbox_rows, start_smtp

from monitor.alerts.destinations import build_destinations
from monitor.alerts.outbox import DeliveryWorker
from monitor.config import Config


class Sink:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def auth(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login.decode(), data.password.decode()))
            return AuthResult(success=data.password == b"s3cret")
        return AuthResult(success=False, handled=False)


@pytest.fixture
def ca(tmp_path: Path) -> tuple[trustme.CA, ssl.SSLContext, Path]:
    authority = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return authority, server_ctx, ca_file


def _cfg(port: int, security: str, ca_file: Path, **over: Any) -> Config:
    dest = {
        "type": "email", "host": "127.0.0.1", "port": port, "security": security,
        "from": "claimwatch <alerts@example.org>", "to": ["desk@example.org"], "timeout": 5,
        "ca_file": str(ca_file), **over,
    }
    return Config.model_validate({"alerts": {"destinations": {"mail": dest}}})


async def _deliver(archive: Any, cfg: Config) -> None:
    msg = message()
    archive.store([(msg, [hit_for(msg, destinations=("mail",))])])
    worker = DeliveryWorker(archive, build_destinations(cfg), base_delay=0.05, max_delay=0.1, max_retry_seconds=0.3)
    try:
        await worker.drain(3)
    finally:
        await worker.aclose()


async def test_starttls_with_login(archive: Any, ca: Any) -> None:
    _authority, server_ctx, ca_file = ca
    sink = Sink()
    # require_starttls: the server refuses mail (and login) before TLS is up.
    ctl, port = start_smtp(lambda p: Controller(
        sink, hostname="127.0.0.1", port=p, tls_context=server_ctx, require_starttls=True,
        authenticator=sink.auth, auth_required=True, ready_timeout=5,
    ))
    try:
        await _deliver(archive, _cfg(port, "starttls", ca_file, username="alerts", password="s3cret"))
    finally:
        ctl.stop()
    assert [r["status"] for r in outbox_rows(archive)] == ["sent"]
    assert sink.logins == [("alerts", "s3cret")]
    assert "claimed responsibility" in sink.messages[0].get_body(("plain",)).get_content()


async def test_implicit_tls(archive: Any, ca: Any) -> None:
    _authority, server_ctx, ca_file = ca
    sink = Sink()
    ctl, port = start_smtp(lambda p: Controller(sink, hostname="127.0.0.1", port=p, ssl_context=server_ctx, ready_timeout=5))
    try:
        await _deliver(archive, _cfg(port, "tls", ca_file))
    finally:
        ctl.stop()
    assert [r["status"] for r in outbox_rows(archive)] == ["sent"]
    assert len(sink.messages) == 1


async def test_untrusted_certificate_is_refused(archive: Any, ca: Any, tmp_path: Path) -> None:
    _authority, server_ctx, _ca_file = ca
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))  # a CA that did not sign the server's cert
    sink = Sink()
    ctl, port = start_smtp(lambda p: Controller(
        sink, hostname="127.0.0.1", port=p, tls_context=server_ctx, require_starttls=True, ready_timeout=5
    ))
    try:
        await _deliver(archive, _cfg(port, "starttls", other))
    finally:
        ctl.stop()
    (row,) = outbox_rows(archive)
    assert row["status"] in ("pending", "failed") and "CERTIFICATE_VERIFY_FAILED" in (row["last_error"] or "")
    assert sink.messages == []


def test_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        build_destinations(_cfg(25, "starttls", tmp_path / "nope.pem"))
