"""Structured logging (structlog): human console lines or JSON lines; secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(token|password|secret|api_hash|webhook|authorization|session_string)", re.I)
_SECRET_PATTERNS = [
    re.compile(r"https://hooks\.slack\.com/[^\s'\"]+"),
    re.compile(r"xox[abprs]-[A-Za-z0-9-]+"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9%._~+/=-]+"),
]
_registered_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Make sure ``value`` is never printed by the logger (used for config secrets)."""
    if value and len(value) >= 4:
        _registered_secrets.add(value)


def redact(text: str) -> str:
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub("***", text)
    return text


def _redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and key != "event":
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing (test runners and
    CLI runners replace it; a logger must not keep a closed stream)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str = "console", stream: Any = None) -> None:
    """Configure structlog; ``stream`` defaults to the current ``sys.stderr`` at each write."""
    out = stream if stream is not None else _CurrentStderr()
    lvl = getattr(logging, str(level).upper(), logging.INFO)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_processor,
    ]
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False)
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream is None and sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=out, format="%(levelname)s %(name)s: %(message)s")  # type: ignore[arg-type]


def get_logger(name: str = "claimwatch") -> Any:
    return structlog.get_logger(name)
