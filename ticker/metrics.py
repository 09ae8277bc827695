"""Prometheus metrics of one server process, in a registry of its own (``GET /metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters the hub, the reader and the endpoints update; one instance per application."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("ticker_connections", "Open live connections", ["transport"], registry=r)
        self.deliveries = Counter("ticker_deliveries", "Messages handed to clients", registry=r)
        self.frames = Counter("ticker_frames", "Writes to clients (each may carry several messages)", registry=r)
        self.slow_closes = Counter("ticker_slow_client_closes", "Clients closed for falling behind", registry=r)
        self.refused = Counter("ticker_refused_connections", "Connections refused", ["reason"], registry=r)
        self.reader_lag = Gauge(
            "ticker_reader_lag_seconds",
            "How far the stream reader is behind the stream head",
            registry=r,
        )
        self.latency = Histogram(
            "ticker_publish_to_send_seconds",
            "From the append to the stream to the write to clients",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.redis_errors = Counter("ticker_redis_errors", "Failed Redis reads of the stream reader", registry=r)
        self.changes = Counter("ticker_changes", "Changes read from the stream", registry=r)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
