"""Alerting: outbox policy (alerts, throttle, follow-ups), rendering, destinations, delivery worker, digest.

Public API (imported lazily so ``claimwatch --help`` stays fast)::

    build_destinations(cfg) -> {name: Destination}      # monitor.alerts.destinations
    OutboxPolicy.from_config(cfg)                       # monitor.alerts.policy (archive.policy)
    DeliveryWorker(archive, destinations, ...)          # monitor.alerts.outbox
    list_deliveries / retry_failed                      # monitor.alerts.outbox
    build_digest / enqueue_digest                       # monitor.alerts.digest
    Renderer, Alert                                     # monitor.alerts.render / .alert
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Alert": ".alert",
    "build_destinations": ".destinations",
    "Destination": ".destinations",
    "TemporaryDeliveryError": ".destinations",
    "PermanentDeliveryError": ".destinations",
    "DeliveryWorker": ".outbox",
    "list_deliveries": ".outbox",
    "retry_failed": ".outbox",
    "status_counts": ".outbox",
    "OutboxPolicy": ".policy",
    "build_digest": ".digest",
    "enqueue_digest": ".digest",
    "Renderer": ".render",
    "RenderError": ".render",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'monitor.alerts' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
