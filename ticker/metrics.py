"""Prometheus metrics of one server process, in a registry of its own (``GET /metrics``).

Under ``ticker serve --workers N`` every worker writes its values to files in
one directory of the run (prometheus_client's multiprocess mode, switched on
by ``PROMETHEUS_MULTIPROC_DIR``, which the supervisor sets for its workers),
and ``/metrics`` from any worker sums them: counters and histograms over every
worker the run has had, so they never go down when one is restarted; the
connection gauge over the live workers; the reader lag is the largest of them.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters the hub, the reader and the endpoints update; one instance per application."""

    def __init__(self, *, shared_dir: Path | None = None) -> None:
        self.shared_dir = shared_dir
        """The directory the workers of one run share their values in; ``None`` for a lone process."""
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "ticker_connections", "Open live connections", ["transport"], registry=r, multiprocess_mode="livesum"
        )
        self.deliveries = Counter("ticker_deliveries", "Messages handed to clients", registry=r)
        self.frames = Counter("ticker_frames", "Writes to clients (each may carry several messages)", registry=r)
        self.slow_closes = Counter("ticker_slow_client_closes", "Clients closed for falling behind", registry=r)
        self.refused = Counter("ticker_refused_connections", "Connections refused", ["reason"], registry=r)
        self.reader_lag = Gauge(
            "ticker_reader_lag_seconds",
            "How far the stream reader is behind the stream head",
            registry=r,
            multiprocess_mode="livemax",
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
        """The text exposition format and its content type (every worker's values, summed)."""
        registry = self.registry
        if self.shared_dir is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(self.shared_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
