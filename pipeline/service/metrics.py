"""Prometheus metrics and the health check of the daemon and workers, served at /metrics and /health.

Two kinds of figures, on purpose: what this process's own workers recorded (counters,
which Prometheus sums across processes and turns into rates), and what the shared
outbox looks like (read from the database at each scrape, so every process reports
the same and any one of them will do).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pipeline.delivery.engine import Tally
from pipeline.storage import outbox
from pipeline.storage.models import utcnow

log = logging.getLogger(__name__)

_RATE_WINDOW = timedelta(seconds=60)
_OUTCOMES = ("sent", "failed", "skipped", "retried")


class _Outbox(Collector):
    """Figures of the shared database, read when Prometheus scrapes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("comms_database_up", "1 when the database answered this scrape")
        try:
            with self.engine.connect() as conn:
                runs = outbox.runs_by_status(conn)
                depth = outbox.outbox_depth(conn)
                replies = outbox.reply_classes(conn)
                recent = outbox.sent_since(conn, utcnow() - _RATE_WINDOW)
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _gauge("comms_runs", "Runs by status", "status", runs)
        yield _gauge(
            "comms_outbox_depth", "Deliveries of sending and paused runs still to go", "status", depth
        )
        yield _gauge(
            "comms_smtp_replies",
            "Deliveries of sending and paused runs by the class of their last SMTP reply",
            "class",
            replies,
        )
        rate = GaugeMetricFamily(
            "comms_send_rate", "Messages sent per second over the last minute, all workers"
        )
        rate.add_metric([], recent / _RATE_WINDOW.total_seconds())
        yield rate


def _gauge(name: str, documentation: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class Metrics:
    """One process's registry: its workers' outcome counters and the outbox figures."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "comms_deliveries",
            "Deliveries this process recorded, by outcome (retried: a retry verdict, sent again later)",
            ["status"],
            registry=self.registry,
        )
        for outcome in _OUTCOMES:
            self.deliveries.labels(outcome)  # present at 0 from the start, so rates work at once
        self.registry.register(_Outbox(engine))

    def worker_progress(self) -> Callable[[Tally], None]:
        """An on_progress callback for one worker: counts what its tally gained since the last call."""
        seen = dict.fromkeys(_OUTCOMES, 0)

        def progress(tally: Tally) -> None:
            for outcome in _OUTCOMES:
                now = getattr(tally, outcome)
                if now > seen[outcome]:
                    self.deliveries.labels(outcome).inc(now - seen[outcome])
                    seen[outcome] = now

        return progress

    def app(self, problems: Callable[[], list[str]]) -> Starlette:
        """/metrics, and /health: 200 "ok", or 503 listing PROBLEMS (called in a thread; it may block)."""

        async def metrics(_: Request) -> Response:
            body = await run_in_threadpool(generate_latest, self.registry)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        async def health(_: Request) -> Response:
            found = await run_in_threadpool(problems)
            if found:
                return PlainTextResponse("\n".join(found) + "\n", status_code=503)
            return PlainTextResponse("ok\n")

        return Starlette(routes=[Route("/metrics", metrics), Route("/health", health)])


def database_problems(engine: Engine) -> list[str]:
    """[] when the database answers, else why not (for /health): in our words, since /health may be
    public and the driver's text names hosts, users and databases; that goes to the log."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health: database unreachable: %s", exc)
        return ["database unreachable"]
    return []


__all__ = ["Metrics", "database_problems"]
