"""Loopback servers and builders shared by the tests/test_alerts_*.py files.

* :class:`FakeSlack`: a real HTTP server on 127.0.0.1 (thread) standing in for a Slack
  incoming webhook and the Web API (``/api/chat.postMessage``), with scripted responses.
* :class:`SmtpSink`: a real aiosmtpd SMTP server on 127.0.0.1 keeping the messages.

Both bind 127.0.0.1 only and are stopped by their fixtures; handler sockets time out.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections import deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from monitor.model import Hit, Match, Message

# -- Slack stand-in -------------------------------------------------------------------


class FakeSlack:
    """Records every request; answers from a script of (status, headers, body) or 200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: deque[tuple[int, dict[str, str], str]] = deque()
        self.delay = 0.0
        self.cond = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5  # idle keep-alive connections end by themselves

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with fake.cond:
                    fake.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "json": body, "t": time.monotonic()}
                    )
                    status, headers, text = fake.script.popleft() if fake.script else fake.default(self.path)
                    fake.cond.notify_all()
                if fake.delay:
                    time.sleep(fake.delay)
                data = text.encode("utf-8")
                self.send_response(status)
                ctype = "application/json" if text.startswith("{") else "text/plain"
                self.send_header("Content-Type", f"{ctype}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @staticmethod
    def default(path: str) -> tuple[int, dict[str, str], str]:
        if path.startswith("/api/"):
            return 200, {}, json.dumps({"ok": True, "channel": "C123", "ts": "1700000000.000100"})
        return 200, {}, "ok"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/XXXXSECRETXXXX"

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def respond(self, *responses: tuple[int, dict[str, str], str]) -> None:
        with self.cond:
            self.script.extend(responses)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} requests, got {len(self.requests)}")
                self.cond.wait(left)
            return list(self.requests)

    def start(self) -> "FakeSlack":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    try:
        yield server
    finally:
        server.stop()


# -- SMTP stand-in ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp(make: Callable[[int], Controller], attempts: int = 5) -> tuple[Controller, int]:
    """Start an aiosmtpd controller on a free loopback port. aiosmtpd cannot bind port 0, so
    a port is picked first; another process may take it in between: then try another."""
    error: Exception | None = None
    for _ in range(attempts):
        port = free_port()
        controller = make(port)
        try:
            controller.start()
            return controller, port
        except Exception as exc:  # noqa: BLE001 - the port was taken meanwhile
            error = exc
    raise RuntimeError(f"could not start an SMTP server on 127.0.0.1: {error}")


class SmtpSink:
    """aiosmtpd on 127.0.0.1. ``replies``: scripted DATA replies (e.g. "451 try later")."""

    def __init__(self, *, users: dict[str, str] | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.replies: deque[str] = deque()
        self.auth_attempts: list[tuple[str, str]] = []
        self.cond = threading.Condition()
        self.users = users
        kwargs: dict[str, Any] = {}
        if users is not None:
            kwargs = {"authenticator": self._auth, "auth_required": True, "auth_require_tls": False}
        self._kwargs = kwargs
        self.port = 0
        self.controller: Controller | None = None

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            self.auth_attempts.append((login, password))
            if self.users and self.users.get(login) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.cond:
            if self.replies:
                return self.replies.popleft()
            self.messages.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "raw": envelope.content,
                    "msg": email.message_from_bytes(envelope.content, policy=email.policy.default),
                }
            )
            self.cond.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} emails, got {len(self.messages)}")
                self.cond.wait(left)
            return list(self.messages)

    def start(self) -> "SmtpSink":
        self.controller, self.port = start_smtp(
            lambda port: Controller(self, hostname="127.0.0.1", port=port, ready_timeout=5, **self._kwargs)
        )
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


# -- builders ---------------------------------------------------------------------------

HOSTILE = "<!channel> <!here> <@U123> <https://evil.example|click> & {{ 7*7 }} claimed responsibility"


def message(
    text: str = "The group claimed responsibility for the attack",
    *,
    mid: str = "1",
    channel: str = "amaq_example",
    channel_id: str = "-1001",
    title: str | None = "Amaq Example",
    platform: str = "telegram",
    **kw: Any,
) -> Message:
    return Message(
        platform=platform,
        channel_id=channel_id,
        message_id=mid,
        date=kw.pop("date", datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)),
        text=text,
        channel=channel,
        channel_title=title,
        **kw,
    )


def hit_for(
    msg: Message,
    term: str = "claimed responsibility",
    *,
    rule_id: str = "claims",
    title: str = "Claim of responsibility",
    level: str = "high",
    destinations: tuple[str, ...] = ("slack",),
    throttle: int | None = None,
) -> Hit:
    start = msg.text.find(term)
    matches = (Match("s1", term, start, start + len(term)),) if start >= 0 else ()
    return Hit(
        rule_id=rule_id,
        rule_hash="h1",
        level=level,
        title=title,
        matches=matches,
        destinations=destinations,
        throttle_seconds=throttle,
    )


def outbox_rows(archive: Any) -> list[dict[str, Any]]:
    cur = archive.conn.execute("SELECT * FROM outbox ORDER BY id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def slack_text(request: dict[str, Any]) -> str:
    """Every mrkdwn string of a Slack request body, joined (blocks and fallback text)."""
    body = request["json"]
    parts = [body.get("text", "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "text" and isinstance(v, str):
                    parts.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(body.get("blocks", []))
    return "\n".join(parts)


def desk_config(slack: Any, smtp: Any, **extra: Any) -> Any:
    """A Config with the loopback Slack (bot token, #claims) and SMTP (desk@example.org) destinations."""
    from monitor.config import Config

    return Config.model_validate({"alerts": {"destinations": {
        "slack": {"type": "slack", "token": "xoxb-test-token-123", "channel": "#claims", "base_url": slack.api_base},
        "mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "security": "none",
                 "from": "claimwatch <alerts@example.org>", "to": ["desk@example.org"], "timeout": 5},
    }, **extra}})


async def drain(archive: Any, cfg: Any) -> int:
    """Deliver every due outbox row with a real delivery worker (short backoff); rows sent."""
    from monitor.alerts.destinations import build_destinations
    from monitor.alerts.outbox import DeliveryWorker

    worker = DeliveryWorker(archive, build_destinations(cfg), base_delay=0.05, max_delay=0.2)
    try:
        return await worker.drain(10.0)
    finally:
        await worker.aclose()
