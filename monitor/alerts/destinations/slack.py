"""Slack: an Incoming Webhook (``webhook_url``) or the Web API ``chat.postMessage``
(``token`` + ``channel``), both through slack-sdk's async clients.

slack-sdk's own retry handlers are switched off (``retry_handlers=[]``): a 429 or a 5xx
must reach the outbox, which schedules the retry (honouring ``Retry-After``) and keeps
the row pending across restarts. slack-sdk logs request URLs at DEBUG level, so its
clients get a logger of their own pinned at WARNING (the webhook URL is a secret).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from ...config import ConfigError
from ...config import SlackDestination as SlackConfig
from ...logs import register_secret
from ..alert import Alert
from .base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    classify_http,
    parse_retry_after,
    secret_path,
)

# Web API error codes worth retrying (everything else, e.g. channel_not_found or
# invalid_auth, needs a person to fix the configuration).
TRANSIENT_API_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}

_sdk_logger = logging.getLogger("claimwatch.slack_sdk")
_sdk_logger.setLevel(logging.WARNING)


class SlackDestination(Destination):
    type = "slack"

    def __init__(self, name: str, cfg: SlackConfig, *, timeout: float = 15.0) -> None:
        super().__init__(name)
        self._webhook_url = cfg.webhook_url.get_secret_value() if cfg.webhook_url else None
        self._token = cfg.token.get_secret_value() if cfg.token else None
        self.channel = cfg.channel
        self.base_url = cfg.base_url
        if not self._webhook_url and not (self._token and self.channel):
            raise ConfigError(f"alerts.destinations.{name}: slack needs 'webhook_url', or 'token' and 'channel'")
        register_secret(self._webhook_url)
        register_secret(secret_path(self._webhook_url))
        register_secret(self._token)
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._client: Any = None

    @property
    def mode(self) -> str:
        return "webhook" if self._webhook_url else "web-api"

    def _ensure_client(self) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._client = None
        if self._client is None:
            if self._webhook_url:
                self._client = AsyncWebhookClient(
                    self._webhook_url, session=self._session, retry_handlers=[], logger=_sdk_logger,
                    timeout=int(self.timeout),
                )
            else:
                kwargs: dict[str, Any] = {}
                if self.base_url:
                    kwargs["base_url"] = self.base_url
                self._client = AsyncWebClient(
                    token=self._token, session=self._session, retry_handlers=[], logger=_sdk_logger,
                    timeout=int(self.timeout), **kwargs,
                )
        return self._client

    def _body(self, alert: Alert) -> dict[str, Any]:
        return {"text": alert.slack_text, "blocks": alert.slack_blocks, "unfurl_links": False, "unfurl_media": False}

    async def send(self, alert: Alert) -> str | None:
        """Post; with the Web API, an alert of an incident already alerted here goes into the
        thread of its first alert (``thread_ts``) and the message's ``ts`` is returned (an
        Incoming Webhook cannot thread: no ``ts`` comes back)."""
        client = self._ensure_client()
        try:
            if self._webhook_url:
                resp = await client.send_dict(self._body(alert))
                classify_http(resp.status_code, resp.body or "", (resp.headers or {}).get("Retry-After"), "Slack webhook HTTP")
                return None
            body = self._body(alert)
            if alert.thread_ref:
                body["thread_ts"] = alert.thread_ref
            resp = await client.chat_postMessage(channel=self.channel, **body)
            ts = resp.get("ts") if resp is not None else None
            return str(ts) if ts else None
        except SlackApiError as exc:
            _raise_api_error(exc)
        except aiohttp.InvalidURL:
            raise PermanentDeliveryError("invalid URL in the configuration") from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise TemporaryDeliveryError(f"Slack connection error: {type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        self._client = None


def _raise_api_error(exc: SlackApiError) -> None:
    resp = exc.response
    status = getattr(resp, "status_code", None) or getattr(resp, "status", None) or 0
    headers = getattr(resp, "headers", None) or {}
    data = getattr(resp, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    reason = f"Slack API HTTP {status}" + (f": {code}" if code else "")
    if status == 429 or code == "ratelimited":
        raise TemporaryDeliveryError(reason, parse_retry_after(headers.get("Retry-After"))) from None
    if status >= 500 or code in TRANSIENT_API_ERRORS:
        raise TemporaryDeliveryError(reason) from None
    raise PermanentDeliveryError(reason) from None
