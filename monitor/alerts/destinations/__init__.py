"""Alert destinations: one module per type, built from the config by :func:`build_destinations`."""

from __future__ import annotations

from ...config import Config, ConsoleDestination as ConsoleConfig
from .base import Destination, DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from .console import ConsoleDestination
from .email import EmailDestination
from .file import FileDestination
from .slack import SlackDestination
from .webhook import WebhookDestination

__all__ = [
    "ConsoleDestination",
    "DeliveryError",
    "Destination",
    "EmailDestination",
    "FileDestination",
    "PermanentDeliveryError",
    "SlackDestination",
    "TemporaryDeliveryError",
    "WebhookDestination",
    "build_destination",
    "build_destinations",
]


def build_destination(name: str, dcfg: object) -> Destination:
    """One destination from its config model (secrets are registered for redaction)."""
    kind = getattr(dcfg, "type", None)
    if kind == "slack":
        return SlackDestination(name, dcfg)  # type: ignore[arg-type]
    if kind == "email":
        return EmailDestination(name, dcfg)  # type: ignore[arg-type]
    if kind == "file":
        return FileDestination(name, dcfg)  # type: ignore[arg-type]
    if kind == "console":
        return ConsoleDestination(name)
    if kind == "webhook":
        return WebhookDestination(name, dcfg)  # type: ignore[arg-type]
    raise ValueError(f"alerts.destinations.{name}: unknown type {kind!r}")


def build_destinations(cfg: Config) -> dict[str, Destination]:
    """Every configured destination by name; ``console`` is always there.

    Raises :class:`monitor.config.ConfigError` naming the destination when one is
    incomplete (e.g. a Slack destination with neither a webhook URL nor a token).
    """
    out: dict[str, Destination] = {}
    for name, dcfg in cfg.alerts.destinations.items():
        out[name] = build_destination(name, dcfg)
    if "console" not in out:
        out["console"] = build_destination("console", ConsoleConfig(type="console"))
    return out
