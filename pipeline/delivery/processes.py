"""Sending on every core: N sending processes (pipeline.delivery.sender) over one outbox.

One process is CPU-bound at a few hundred messages a second (rendering, MIME, DKIM), so
`--processes N` starts N senders and shares the work out between them:

- PostgreSQL: each sender claims from the outbox itself, with SKIP LOCKED, like any worker.
- SQLite: this process owns the database, its one writer. Senders ask it for their batches and
  hand it their outcomes over their channel (delivery.channel); it runs every query on its
  database thread, in order, with the same outage riding and group commits as a single process.

[transport] connections and [rate] are totals: each sender gets its share (so never more senders
than connections), and N processes open as many connections and send as fast as one would.

Crashes: a sender holds its deliveries under leases named after it, like any worker. One that dies
without a word (SIGKILL, the OOM killer) has them requeued at once and a fresh sender takes its
place; one that fails (the database gone for good) stops the others and its error is raised
here. Senders die with this process (PR_SET_PDEATHSIG): whatever they had in flight is requeued
by the next start, as after a single process's crash. A stop (SIGTERM) is passed on to every
sender, which finishes its messages in flight and gives back the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from pipeline.delivery import engine as dispatch
from pipeline.delivery.channel import Channel, child_environment, portable
from pipeline.delivery.engine import Database, Tally, WorkerReport
from pipeline.delivery.sender import Setup
from pipeline.errors import CommsError
from pipeline.logs import KeyValueFormatter
from pipeline.storage import outbox
from pipeline.storage.models import utcnow
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings

log = logging.getLogger("comms.dispatch")

# Senders that died without a word are replaced this many times in all, then the rest carry on alone.
_REPLACEMENTS = 8
# The only modules whose queries a sender may have run here.
_QUERY_MODULES = frozenset({outbox.__name__, dispatch.__name__})


# A sending process takes about a second to start (it imports the library and connects), in
# which one already running sends a thousand messages or more: below this many deliveries a
# process each would only slow a run down.
DELIVERIES_PER_PROCESS = 2_000


def default_processes(deliveries: int | None = None) -> int:
    """One sending process per core this process may run on, but no more than DELIVERIES (when
    known, as for one run) keep busy."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if deliveries is None:
        return cores
    return max(1, min(cores, -(-deliveries // DELIVERIES_PER_PROCESS)))


def share(settings: Settings, index: int, count: int) -> Settings:
    """Sender INDEX of COUNT's part of SETTINGS: its connections, and a COUNTth of every rate."""
    connections = settings.transport.connections
    mine = connections // count + (index < connections % count)
    rate = settings.rate
    return settings.model_copy(
        update={
            "transport": settings.transport.model_copy(update={"connections": mine}),
            "rate": rate.model_copy(
                update={
                    "per_second": rate.per_second / count,
                    "per_domain_per_second": rate.per_domain_per_second / count,
                    "domains": {domain: limit / count for domain, limit in rate.domains.items()},
                }
            ),
        }
    )


def _signal(process: asyncio.subprocess.Process, signum: int) -> None:
    """Send SIGNUM to PROCESS unless asyncio has seen it end.

    Not Process.send_signal: Popen polls first, and a poll can reap a sender that has just ended
    before asyncio's child watcher does; the watcher then reports exit code 255 and prints
    "Unknown child process" into the user's terminal. Until the watcher reaps it the pid stays a
    zombie, so it cannot have passed to another process; once reaped, before asyncio has been told,
    it is gone.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


@dataclass
class _Sender:
    process: asyncio.subprocess.Process
    channel: Channel
    names: list[str] = field(default_factory=list)
    tallies: dict[int, Tally] = field(default_factory=dict)
    reports: list[WorkerReport] = field(default_factory=list)
    failure: BaseException | None = None


class _Senders:
    def __init__(
        self,
        ws: Workspace,
        engine: Engine,
        *,
        processes: int,
        workers: int,
        run_id: int | None,
        stop: asyncio.Event,
        on_progress: Callable[[Tally], None] | None,
        idle_poll_s: float,
    ) -> None:
        self.ws = ws
        self.answers_queries = engine.dialect.name == "sqlite"  # SQLite: one writer, here
        self.db = Database(engine, ws.settings.database)
        transport = ws.settings.transport
        # The console's messages are one stream, each printed whole: one process prints them.
        most = 1 if transport.kind == "console" else transport.connections
        self.count = max(1, min(processes, most))
        self.workers = workers
        self.run_id = run_id
        self.stop = stop
        self.on_progress = on_progress
        self.idle_poll_s = idle_poll_s
        self.senders: list[_Sender] = []
        self.replacements = _REPLACEMENTS

    async def run(self) -> WorkerReport:
        passer = asyncio.create_task(self._pass_on_stop())
        try:
            await asyncio.gather(*(self._slot(i) for i in range(self.count)))
        finally:
            passer.cancel()
            for sender in self.senders:
                _signal(sender.process, signal.SIGKILL)
                await sender.process.wait()
            self.db.close()
        failures = [s.failure for s in self.senders if s.failure is not None]
        if failures:
            raise failures[0]
        reports = [report for sender in self.senders for report in sender.reports]
        paused: dict[int, str] = {}
        for report in reports:
            paused.update(report.paused)
        return WorkerReport(
            ", ".join(report.worker for report in reports),
            Tally.total(report.tally for report in reports),
            any(report.stopped for report in reports),
            paused,
        )

    async def _pass_on_stop(self) -> None:
        await self.stop.wait()
        for sender in self.senders:
            _signal(sender.process, signal.SIGTERM)

    async def _slot(self, index: int) -> None:
        """Keep sender INDEX going until its work is done, replacing it if it is killed."""
        while True:
            sender = await self._start(index)
            await self._serve(sender)
            code = await sender.process.wait()
            if code == 0 and sender.reports:
                return
            if sender.failure is None:
                released = await self.db.call(outbox.release_leases_of, sender.names, utcnow())
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                # Our own stop reaching a sender still starting (before its handler is in place)
                # ends it by the signal with nothing in flight: that is no news.
                ours = self.stop.is_set() and code == -signal.SIGTERM and not released
                if not ours:
                    log.warning(
                        "sending process %s ended (%s): requeued %s deliveries it had in flight",
                        sender.process.pid,
                        how,
                        released,
                    )
                if not self.stop.is_set() and self.replacements > 0:
                    self.replacements -= 1
                    continue
                if not self.stop.is_set():
                    sender.failure = CommsError(f"sending process {sender.process.pid} ended ({how})")
            self.stop.set()  # a failure ends every sender
            return

    async def _start(self, index: int) -> _Sender:
        ours, theirs = socket.socketpair()
        with theirs:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "pipeline.delivery.sender",
                str(theirs.fileno()),
                str(os.getpid()),
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env=child_environment(),
            )
        channel = await Channel.over(ours)
        sender = _Sender(process, channel)
        self.senders.append(sender)
        root = logging.getLogger()
        setup = Setup(
            root=self.ws.root,
            settings=share(self.ws.settings, index, self.count),
            run_id=self.run_id,
            workers=self.workers,
            owns_database=not self.answers_queries,
            idle_poll_s=self.idle_poll_s,
            log_level=root.getEffectiveLevel(),
            structured_logs=any(isinstance(h.formatter, KeyValueFormatter) for h in root.handlers),
        )
        with contextlib.suppress(ConnectionError):  # it died at once: its exit says so
            await channel.send(setup)
        if self.stop.is_set():
            _signal(process, signal.SIGTERM)
        return sender

    async def _serve(self, sender: _Sender) -> None:
        """Answer SENDER until it closes its end."""
        while True:
            try:
                message = await sender.channel.receive()
            except EOFError:
                sender.channel.close()
                return
            kind = message[0]
            if kind == "call":
                _, query, args, kwargs = message
                try:
                    if getattr(query, "__module__", None) not in _QUERY_MODULES:
                        raise CommsError(f"a sender asked for an unknown query: {query!r}")
                    answer = ("ok", await self.db.call(query, *args, **kwargs))
                except Exception as exc:
                    answer = ("error", portable(exc))
                with contextlib.suppress(ConnectionError):  # it has gone; the next receive says so
                    await sender.channel.send(answer)
            elif kind == "hello":
                sender.names = message[1]
            elif kind == "tally":
                sender.tallies[message[1]] = message[2]
                if self.on_progress is not None:
                    self.on_progress(Tally.total(t for s in self.senders for t in s.tallies.values()))
            elif kind == "report":
                sender.reports = message[1]
            elif kind == "failed":
                sender.failure = message[1]


async def run_senders(
    ws: Workspace,
    engine: Engine,
    *,
    processes: int,
    workers: int = 1,
    run_id: int | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Tally], None] | None = None,
    idle_poll_s: float = 1.0,
) -> WorkerReport:
    """engine.run_worker, in PROCESSES sending processes of WORKERS workers each; one report for all.

    The report's tally is every sender's together, replaced ones included; it is `stopped` if
    any sender was. A sender's failure is raised once the others have stopped.
    """
    senders = _Senders(
        ws,
        engine,
        processes=processes,
        workers=workers,
        run_id=run_id,
        stop=stop or asyncio.Event(),
        on_progress=on_progress,
        idle_poll_s=idle_poll_s,
    )
    return await senders.run()


__all__ = ["default_processes", "run_senders", "share"]
