"""Optional HTTP health endpoint on 127.0.0.1: ``/healthz`` (JSON) and ``/metrics`` (Prometheus).

Metrics are collected at scrape time from the running daemon's counters (no work in
the message hot path).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:  # pragma: no cover
    from .service import Daemon


class DaemonCollector:
    """Prometheus collector reading the daemon's state."""

    def __init__(self, daemon: "Daemon") -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Any]:
        d = self.daemon
        stats = d.pipeline.stats if d.pipeline else None
        received = CounterMetricFamily("claimwatch_messages", "Messages received from sources", labels=["source"])
        if stats:
            for source, n in stats.by_source.items():
                received.add_metric([source], n)
        yield received
        stored = CounterMetricFamily("claimwatch_messages_stored", "Messages stored by outcome", labels=["outcome"])
        hits = CounterMetricFamily("claimwatch_hits", "New hits stored")
        errors = CounterMetricFamily("claimwatch_errors", "Errors", labels=["component"])
        if stats:
            stored.add_metric(["new"], stats.new)
            stored.add_metric(["edited"], stats.edited)
            hits.add_metric([], stats.hits)
            errors.add_metric(["pipeline"], stats.errors)
            errors.add_metric(["archive_write"], stats.write_errors)
        for name, source in d.sources.items():
            errors.add_metric([f"source:{name}"], int(source.health().get("errors", 0) or 0))
        yield stored
        yield hits
        yield errors
        failing = GaugeMetricFamily(
            "claimwatch_archive_write_failing", "1 while archive writes fail (the batch is retried until it commits)"
        )
        failing.add_metric([], 1 if d.pipeline is not None and d.pipeline.write_error else 0)
        yield failing
        depth = GaugeMetricFamily("claimwatch_queue_depth", "Items waiting in pipeline queues", labels=["queue"])
        if d.pipeline:
            for q, n in d.pipeline.depths().items():
                depth.add_metric([q], n)
        yield depth
        outbox = GaugeMetricFamily("claimwatch_outbox", "Outbox rows by status", labels=["status"])
        for status, n in d.outbox_counts().items():
            outbox.add_metric([status], n)
        yield outbox
        # Sources with a read budget (x): posts read this month and the poll interval in use.
        reads = GaugeMetricFamily(
            "claimwatch_source_reads", "Posts read this month by sources with a read budget", labels=["source", "kind"]
        )
        interval = GaugeMetricFamily(
            "claimwatch_source_poll_interval_seconds", "Poll interval in use (after the read budget)", labels=["source"]
        )
        for name, source in d.sources.items():
            info = source.health()
            for kind in ("used", "remaining", "projected"):
                value = info.get(f"reads_{kind}")
                if isinstance(value, (int, float)):
                    reads.add_metric([name, kind], value)
            if isinstance(info.get("effective_interval"), (int, float)):
                interval.add_metric([name], info["effective_interval"])
        yield reads
        yield interval
        if d.cfg.bus is not None:
            from ..bus.status import metrics as bus_metrics

            yield from bus_metrics(d.sources)
        rules = GaugeMetricFamily("claimwatch_rules_loaded", "Rules in the loaded set")
        rules.add_metric([], d.rules.rule_count if d.rules else 0)
        yield rules


class HealthServer:
    def __init__(self, daemon: "Daemon", host: str = "127.0.0.1", port: int = 9464) -> None:
        self.daemon = daemon
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DaemonCollector(daemon))  # type: ignore[arg-type]
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # report the port the OS chose
            server = site._server  # noqa: SLF001 - aiohttp keeps the socket here
            if server is not None and server.sockets:
                self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        body = self.daemon.health()
        status = 200 if body.get("ok") else 503
        return web.Response(text=json.dumps(body, default=str), status=status, content_type="application/json")

    async def _metrics(self, _request: web.Request) -> web.Response:
        data = generate_latest(self.registry)
        return web.Response(body=data, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
