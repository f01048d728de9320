"""The bus in ``claimwatch status`` and ``/metrics``: stream length, the consumer group's lag
and pending entries, each archiver consumer, and each collector's last publish."""

from __future__ import annotations

import asyncio

from typing import Any, Iterator

from ..config import BusConfig
from ..timefmt import seconds_since


def bus_report(cfg: BusConfig) -> dict[str, Any]:
    """Read the bus state from Redis; ``{"error": ...}`` when Redis cannot be reached."""
    from .connection import client, unreachable_errors
    from .consumer import bus_snapshot

    async def read() -> dict[str, Any]:
        r = client(cfg, timeout=5.0, retries=0)
        try:
            return await bus_snapshot(r, cfg)
        finally:
            await r.aclose()

    try:
        info = asyncio.run(read())
    except unreachable_errors() as exc:
        return {"url": _safe_url(cfg.url), "stream": cfg.stream, "error": f"{type(exc).__name__}: {exc}"}
    return {"url": _safe_url(cfg.url), "stream": cfg.stream, "group": cfg.group, **info}


def _safe_url(url: str) -> str:
    """The URL without a password in it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def print_bus(console: Any, report: dict[str, Any], fmt_age: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    if "error" in report:
        console.print(f"[bold red]bus {escape(report['url'])}: redis unreachable[/]: {escape(report['error'][:200])}")
        return
    console.print(
        f"bus {escape(report['url'])} stream {escape(report['stream'])}: {report['stream_length']} entries, "
        f"group {escape(report['group'])}: lag {report['lag'] if report['lag'] is not None else '-'}, "
        f"pending {report['pending'] if report['pending'] is not None else '-'}"
        + "".join(f"; archiver {escape(n)}: {c['pending']} pending, idle {c['idle_ms'] / 1000:.0f}s"
                  for n, c in sorted(report.get("consumers", {}).items()))
    )
    collectors = report.get("collectors") or {}
    if collectors:
        table = Table(title="Collectors")
        for col in ("collector", "host", "last publish", "published", "spooled", "spool bytes", "redis", "error"):
            table.add_column(col)
        for name, c in sorted(collectors.items()):
            last = c.get("last_publish")
            table.add_row(
                escape(name), escape(str(c.get("host") or "-")), fmt_age(last) + (" ago" if last else ""),
                str(c.get("published", 0)), str(c.get("spooled", 0)), str(c.get("spool_bytes", 0)),
                "connected" if c.get("connected") else "[red]unreachable[/]",
                ("[red]spool full[/] " if c.get("spool_full") else "") + escape(str(c.get("last_error") or ""))[:60],
            )
        console.print(table)


def metrics(sources: dict[str, Any]) -> Iterator[Any]:
    """Gauges from the archiver's last snapshot of the bus (refreshed every few seconds)."""
    from prometheus_client.core import GaugeMetricFamily

    from .consumer import BusSource

    bus = next((s for s in sources.values() if isinstance(s, BusSource)), None)
    if bus is None:
        return
    info = bus.bus_info
    length = GaugeMetricFamily("claimwatch_bus_stream_length", "Entries in the Redis stream")
    lag = GaugeMetricFamily("claimwatch_bus_lag", "Entries not yet delivered to the archivers' group")
    pending = GaugeMetricFamily("claimwatch_bus_pending", "Entries delivered and not yet acknowledged")
    for fam, key in ((length, "stream_length"), (lag, "lag"), (pending, "pending")):
        if isinstance(info.get(key), int):
            fam.add_metric([], info[key])
        yield fam
    acked = GaugeMetricFamily("claimwatch_bus_acknowledged", "Entries this archiver stored and acknowledged")
    acked.add_metric([], bus.acked)
    yield acked
    last = GaugeMetricFamily("claimwatch_bus_collector_last_publish_age_seconds",
                             "Seconds since each collector's last publish", labels=["collector"])
    spool = GaugeMetricFamily("claimwatch_bus_collector_spool_bytes", "Bytes in each collector's spool",
                              labels=["collector"])
    for name, c in (info.get("collectors") or {}).items():
        age = seconds_since(c.get("last_publish"))
        if age is not None:
            last.add_metric([name], age)
        if isinstance(c.get("spool_bytes"), int):
            spool.add_metric([name], c["spool_bytes"])
    yield last
    yield spool


__all__ = ["bus_report", "metrics", "print_bus"]
