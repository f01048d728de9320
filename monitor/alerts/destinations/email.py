"""Email over SMTP (aiosmtplib): multipart/alternative, plain text + HTML.

Header values are built with the stdlib ``email`` package in SMTP policy, which refuses
CR/LF in a header; the renderer already made the subject a single line. A subject with
non-ASCII text is encoded here (RFC 2047 encoded words, folded at 76 columns): the stdlib's
own folding of such a subject keeps the space before a fold and adds the fold's, so a
reader showed two spaces where the alert had one.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from ...config import EmailDestination as EmailConfig
from ...logs import get_logger, register_secret
from ..alert import Alert
from .base import Destination, PermanentDeliveryError, TemporaryDeliveryError

log = get_logger("claimwatch.alerts")


class EmailDestination(Destination):
    type = "email"

    def __init__(self, name: str, cfg: EmailConfig) -> None:
        super().__init__(name)
        self.cfg = cfg
        self._password = cfg.password.get_secret_value() if cfg.password else None
        register_secret(self._password)
        # Certificates are always verified; ca_file adds a private CA instead of the system ones.
        self._tls_context = ssl.create_default_context(cafile=cfg.ca_file) if cfg.ca_file else None

    def build_message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        if alert.subject.isascii():
            msg["Subject"] = alert.subject
        else:
            # every character, spaces included, inside encoded words: folding adds no space
            msg.set_raw("Subject", Header(alert.subject, "utf-8", header_name="Subject").encode(linesep="\n"))
        msg["From"] = self.cfg.from_
        msg["To"] = ", ".join(self.cfg.to)
        msg["Date"] = formatdate(localtime=False)
        domain = parseaddr(self.cfg.from_)[1].rpartition("@")[2] or "claimwatch.invalid"
        if alert.outbox_id is not None:
            # Stable per outbox row: a re-send after a crash carries the same Message-ID,
            # so mail systems can recognise the duplicate.
            tag = hashlib.sha256(f"{alert.dedup_key}|{alert.outbox_id}".encode()).hexdigest()[:16]
            msg["Message-ID"] = f"<claimwatch.{alert.outbox_id}.{tag}@{domain}>"
        else:
            msg["Message-ID"] = make_msgid("claimwatch", domain=domain)
        if alert.thread_ref:
            # a later development of an incident alerted before: the same conversation
            msg["In-Reply-To"] = alert.thread_ref
            msg["References"] = alert.thread_ref
        msg["X-Claimwatch-Kind"] = alert.kind
        msg.set_content(alert.text, subtype="plain", charset="utf-8")
        msg.add_alternative(alert.html, subtype="html", charset="utf-8")
        return msg

    async def send(self, alert: Alert) -> str | None:
        """Send; returns the Message-ID (later alerts of the incident reply to it)."""
        cfg = self.cfg
        message = self.build_message(alert)
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=self._password,
                use_tls=cfg.security == "tls",
                start_tls=True if cfg.security == "starttls" else False,
                tls_context=self._tls_context,
                timeout=cfg.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            reason = "SMTP recipients refused: " + "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if codes and all(c >= 500 for c in codes):
                raise PermanentDeliveryError(reason) from None
            raise TemporaryDeliveryError(reason) from None
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.code}: {exc.message}"
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError) or 500 <= exc.code < 600:
                raise PermanentDeliveryError(reason) from None
            raise TemporaryDeliveryError(reason) from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentDeliveryError(f"SMTP: {exc}") from None
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError) as exc:
            raise TemporaryDeliveryError(f"SMTP connection error: {type(exc).__name__}: {exc}") from None
        except aiosmtplib.SMTPException as exc:
            # The bare class: the server lacks something the configuration needs
            # (e.g. "STARTTLS extension not supported"): retrying will not help.
            raise PermanentDeliveryError(f"SMTP: {exc}") from None
        except (aiosmtplib.SMTPException, asyncio.TimeoutError, OSError) as exc:
            raise TemporaryDeliveryError(f"SMTP connection error: {type(exc).__name__}: {exc}") from None
        if refused:  # delivered, but not to everyone
            log.warning(
                "email_recipients_refused",
                destination=self.name,
                refused={addr: f"{r.code} {r.message}" for addr, r in refused.items()},
            )
        return str(message["Message-ID"])
