"""`comms worker`: dispatch workers only, over `--processes` sending processes
(pipeline.delivery.processes); on PostgreSQL any number of them share the outbox with the daemon.

Apart from the daemon (pipeline.service.daemon, which runs workers too), so that a worker never
loads what it does not do: the timetable, the tracking server, A/B decisions, the mailed report
and, through them, assembly (premailer, lxml, mjml) and the scientific stack: 40 MB of a worker's
110 MB. uvicorn comes in only for a worker that serves metrics.

SIGTERM or SIGINT: stop claiming, finish the messages in flight, give back the rest, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence

from sqlalchemy import Engine

from pipeline.delivery.engine import WorkerReport, run_worker
from pipeline.delivery.processes import run_senders
from pipeline.delivery.transports import transport_for
from pipeline.errors import CommsError, unwrap
from pipeline.logs import log_event
from pipeline.service.metrics import Metrics, database_problems
from pipeline.storage.engines import connect
from pipeline.workspace.folders import Workspace

log = logging.getLogger("comms.worker")


async def work(ws: Workspace, engine: Engine, stop: asyncio.Event, metrics: Metrics) -> WorkerReport:
    """One dispatch worker over every sending run, until STOP."""
    async with transport_for(ws.settings, ws.root) as transport:
        return await run_worker(ws, engine, transport, stop=stop, on_progress=metrics.worker_progress())


def log_failures(results: Sequence[object]) -> bool:
    """Log each worker in RESULTS that crashed, in one line (a comms error's own message, else the
    repr); whether any did."""
    failures = [unwrap(r) for r in results if isinstance(r, BaseException)]
    for failure in failures:
        why = str(failure) if isinstance(failure, CommsError) else repr(failure)
        log_event(log, "worker.crashed", level=logging.ERROR, error=why)
    return bool(failures)


def stop_on_signals(
    stop: asyncio.Event, logger: logging.Logger, on_hangup: Callable[[], None] | None = None
) -> Callable[[], None]:
    """SIGTERM and SIGINT set STOP (logged to LOGGER, the process's own), SIGHUP calls ON_HANGUP;
    returns the function that removes the handlers."""
    loop = asyncio.get_running_loop()

    def on_stop(signum: signal.Signals) -> None:
        log_event(logger, "signal", name=signum.name)
        stop.set()

    handled = [signal.SIGTERM, signal.SIGINT]
    for signum in handled:
        loop.add_signal_handler(signum, on_stop, signum)
    if on_hangup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
        handled.append(signal.SIGHUP)

    def remove() -> None:
        for signum in handled:
            loop.remove_signal_handler(signum)

    return remove


async def _senders(
    ws: Workspace, engine: Engine, stop: asyncio.Event, metrics: Metrics, count: int, processes: int
) -> WorkerReport:
    """COUNT dispatch workers spread over PROCESSES sending processes, until STOP."""
    log_event(log, "workers.started", workers=count, processes=processes)
    report = await run_senders(
        ws, engine, processes=processes, workers=count, stop=stop, on_progress=metrics.worker_progress()
    )
    tally = report.tally
    log_event(log, "workers.stopped", sent=tally.sent, failed=tally.failed, skipped=tally.skipped)
    return report


@contextlib.asynccontextmanager
async def _metrics_served(ws: Workspace, engine: Engine, metrics: Metrics) -> AsyncIterator[None]:
    listen = ws.settings.daemon.metrics_listen
    if not listen:
        yield
        return
    from pipeline.service.http import http_server, serving  # uvicorn, for this worker only

    async with serving([http_server(metrics.app(lambda: database_problems(engine)), listen)]):
        yield


async def _workers(ws: Workspace, count: int, processes: int) -> int:
    engine = connect(ws.settings)
    metrics = Metrics(engine)
    stop = asyncio.Event()
    remove = stop_on_signals(stop, log)
    try:
        async with _metrics_served(ws, engine, metrics):
            sending = (
                [_senders(ws, engine, stop, metrics, count, processes)]
                if processes > 1
                else [work(ws, engine, stop, metrics) for _ in range(count)]
            )
            results = await asyncio.gather(*sending, return_exceptions=True)
    finally:
        remove()
        engine.dispose()
    return 1 if log_failures(results) else 0


def serve_worker(ws: Workspace, count: int | None = None, processes: int = 1) -> int:
    """Run `comms worker` (COUNT workers, default [daemon] concurrency, over PROCESSES sending
    processes) until SIGTERM; the exit code."""
    ws.settings.secret  # noqa: B018 -- refuse to start rather than fail every run: links need COMMS_SECRET
    return asyncio.run(_workers(ws, count or ws.settings.daemon.concurrency, processes))
