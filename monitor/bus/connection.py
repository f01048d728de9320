"""One place that turns ``bus:`` config into a redis-py asyncio client."""

from __future__ import annotations

import os
import socket
from typing import Any

from ..config import BusConfig

# Errors that mean "Redis is not reachable right now" (retry / spool), not a bug.
def unreachable_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, BusyLoadingError, OSError)


def password(cfg: BusConfig) -> str | None:
    if cfg.password is not None:
        return cfg.password.get_secret_value() or None
    return os.environ.get("CLAIMWATCH_REDIS_PASSWORD") or None


def client(cfg: BusConfig, *, timeout: float = 10.0, retries: int = 1) -> Any:
    """``retries``: redis-py's own reconnect attempts per command, kept short: a collector
    spools at once instead of holding its sources back while Redis is away."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    kwargs: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": min(timeout, 5.0),
        "retry_on_timeout": False,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        "health_check_interval": 30,
    }
    pw = password(cfg)
    if pw:
        kwargs["password"] = pw
    if cfg.url.startswith("rediss://") and cfg.tls_ca_file:
        kwargs["ssl_ca_certs"] = cfg.tls_ca_file
    return aioredis.Redis.from_url(cfg.url, **kwargs)


def node_name(cfg: BusConfig) -> str:
    return cfg.name or socket.gethostname()


def collectors_key(cfg: BusConfig) -> str:
    return f"{cfg.stream}:collectors"


def dead_key(cfg: BusConfig) -> str:
    return f"{cfg.stream}:dead"
