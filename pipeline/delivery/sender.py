"""One sending process of several (`--processes N`): `python -m pipeline.delivery.sender FD PARENT_PID`.

Started by pipeline.delivery.processes in a fresh interpreter (not forked), so it loads only
what sending needs: the frozen templates' renderer, the message builder and the transport,
never the assembly of campaigns (MJML, premailer) or the command line. Its parent hands it a
Setup over the socket FD; it then runs its worker(s) on the Setup's share of connections and
rate, with the database either its own (PostgreSQL: claims with SKIP LOCKED like any worker)
or the parent's (SQLite: every query asked of the parent, the one writer).

It dies with its parent (PR_SET_PDEATHSIG), so a parent killed with SIGKILL leaves no sender
behind it to send what nobody records. SIGTERM stops it as it stops any worker; SIGINT is the
parent's to handle (a Ctrl-C reaches every process of the terminal's group at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.delivery.channel import Channel, RemoteDatabase, portable
from pipeline.delivery.engine import Calls, Tally, WorkerReport, run_worker, worker_name
from pipeline.delivery.transports import transport_for
from pipeline.errors import unwrap
from pipeline.logs import configure_logging
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Setup:
    """What a sending process is told first: its workspace, its share of the settings, its work."""

    root: Path
    settings: Settings  # with this process's share of [transport] connections and [rate]
    run_id: int | None  # one run (comms send), or every sending run (comms worker)
    workers: int  # engine workers in this process
    owns_database: bool  # False: every query goes to the parent (SQLite)
    idle_poll_s: float
    log_level: int
    structured_logs: bool  # key=value lines, as the parent writes them


def _die_with(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies; exit now if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the closed channel stops it at its next query
        pass
    if os.getppid() != parent:
        os._exit(1)


async def _work(
    ws: Workspace,
    database: Calls | None,
    setup: Setup,
    name: str,
    stop: asyncio.Event,
    on_progress: Callable[[Tally], None],
) -> WorkerReport:
    from pipeline.storage.engines import make_engine

    engine = make_engine(ws.settings.database.url, ws.settings.database) if database is None else None
    try:
        async with transport_for(ws.settings, ws.root) as transport:
            return await run_worker(
                ws,
                database or engine,  # type: ignore[arg-type]
                transport,
                run_id=setup.run_id,
                stop=stop,
                on_progress=on_progress,
                worker=name,
                idle_poll_s=setup.idle_poll_s,
            )
    except BaseException:
        stop.set()  # one worker failing ends this process's others too
        raise
    finally:
        if engine is not None:
            engine.dispose()


async def _serve(sock: socket.socket) -> int:
    channel = await Channel.over(sock)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def progress(index: int) -> Callable[[Tally], None]:
        return lambda tally: channel.post(("tally", index, tally))

    try:
        setup: Setup = await channel.receive()
        if setup.structured_logs:
            configure_logging(level=setup.log_level)
        else:
            logging.getLogger().setLevel(setup.log_level)
        ws = Workspace.with_settings(setup.root, setup.settings)
        names = [worker_name() for _ in range(setup.workers)]
        await channel.send(("hello", names))
        database = None if setup.owns_database else RemoteDatabase(channel)
        reports = await asyncio.gather(
            *(_work(ws, database, setup, name, stop, progress(i)) for i, name in enumerate(names))
        )
    except BaseException as exc:
        with contextlib.suppress(ConnectionError):
            await channel.send(("failed", portable(unwrap(exc))))
        return 1
    await channel.send(("report", list(reports)))
    channel.close()
    return 0


def main(argv: list[str]) -> int:
    fd, parent = (int(arg) for arg in argv)
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return asyncio.run(_serve(socket.socket(fileno=fd)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
