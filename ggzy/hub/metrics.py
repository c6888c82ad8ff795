"""Prometheus metrics of one hub process (each worker exposes its own; Prometheus sums them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["HubMetrics"]


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ggzy_hub_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.records = Counter(
            "ggzy_hub_records",
            "Uploaded records by outcome and channel",
            ["outcome", "channel"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "ggzy_hub_batch_seconds",
            "Time to validate and store one batch",
            ["channel"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.refusals = Counter(
            "ggzy_hub_refusals",
            "Requests refused before any record was read, by code",
            ["code"],
            registry=self.registry,
        )
        self.node_queue = Gauge(
            "ggzy_hub_node_queue_depth",
            "Queue depth reported by each node's heartbeat",
            ["node", "channel"],
            registry=self.registry,
        )
