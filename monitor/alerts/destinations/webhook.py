"""A generic webhook: the alert's JSON record POSTed with optional headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from ...config import WebhookDestination as WebhookConfig
from ...logs import register_secret
from ..alert import Alert
from .base import Destination, PermanentDeliveryError, TemporaryDeliveryError, classify_http, secret_path


class WebhookDestination(Destination):
    type = "webhook"

    def __init__(self, name: str, cfg: WebhookConfig, *, timeout: float = 15.0) -> None:
        super().__init__(name)
        self._url = cfg.url.get_secret_value()
        self._headers = {k: v.get_secret_value() for k, v in cfg.headers.items()}
        register_secret(self._url)
        register_secret(secret_path(self._url))
        for value in self._headers.values():
            register_secret(value)
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def body(self, alert: Alert) -> dict[str, Any]:
        return {
            "outbox_id": alert.outbox_id,
            "destination": self.name,
            "kind": alert.kind,
            "level": alert.level,
            "title": alert.title,
            "subject": alert.subject,
            "text": alert.text,
            "data": alert.data,
        }

    async def send(self, alert: Alert) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        payload = json.dumps(self.body(alert), ensure_ascii=False, default=str)
        headers = {"Content-Type": "application/json; charset=utf-8", **self._headers}
        try:
            async with self._session.post(self._url, data=payload.encode("utf-8"), headers=headers) as resp:
                body = await resp.text(errors="replace")
                classify_http(resp.status, body, resp.headers.get("Retry-After"), "webhook HTTP")
        except aiohttp.InvalidURL:
            raise PermanentDeliveryError("invalid URL in the configuration") from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise TemporaryDeliveryError(f"webhook connection error: {type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
