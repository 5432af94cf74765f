"""`comms daemon`: the timetable, its workers and its servers, in one long-running process.

One daemon leads: it holds a lock (a PostgreSQL advisory lock, or a file lock next to
a SQLite database) for as long as it lives, because APScheduler 3's job store cannot
be shared. Another daemon on the same database waits as a standby and takes over
when the leader's lock goes, which is when its process or its connection dies.

The leader runs the timetable (pipeline.timetable.scheduler), [daemon] concurrency dispatch
workers, the tracking server when [tracking] listen is set, keeps scheduled runs
inside their sending windows, and decides A/B tests at their decision time (whose
held rest its workers then send). `comms worker` (pipeline.service.worker) runs dispatch
workers only.

SIGTERM or SIGINT: fire nothing more, stop claiming, finish the messages in flight,
give back the rest, exit 0. Runs stay `sending` with nothing leased, so other workers
carry on with them and the next start continues where this one stopped. SIGHUP (the
daemon) re-reads schedules/.

A database blip stops nothing: workers retry their transactions, and a leader whose lock
went with its connection takes it again once the database answers ([database] outage_s);
only an outage longer than that, or another daemon taking the lock meanwhile, ends the
process (exit 1, with one log line saying why).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import CommsError, DatabaseError
from pipeline.experiments.decision import decide_due
from pipeline.feedback.server import create_app
from pipeline.feedback.serving import tracking_config
from pipeline.logs import log_event
from pipeline.service.http import HttpServer, http_server, listen_address, serving
from pipeline.service.mail_report import fire_report
from pipeline.service.metrics import Metrics, database_problems
from pipeline.service.worker import log_failures, stop_on_signals, work
from pipeline.storage.engines import connect, display_url, ride_out
from pipeline.storage.models import utcnow
from pipeline.timetable.scheduler import Timetable, keep_windows
from pipeline.workspace.folders import Workspace

log = logging.getLogger("comms.daemon")

# Windows are checked, and the leader's lock confirmed, this often.
_KEEP_EVERY_S = 5.0
# Any fixed 64-bit number; advisory locks are per database, so one comms database, one leader.
_ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"comms daemon leader").digest()[:8], "big", signed=True)


# -- leadership ------------------------------------------------------------------------------------


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...

    def held(self) -> bool:
        """False once the lock may have gone to someone else."""
        ...

    def release(self) -> None: ...


class AdvisoryLock:
    """A PostgreSQL session advisory lock on a connection of its own, released by the server when
    that connection ends — however the process ends."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None

    def try_acquire(self) -> bool:
        conn = self.engine.connect()
        try:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _ADVISORY_KEY}).scalar()
            )
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self.conn = conn
        return True

    def held(self) -> bool:
        if self.conn is None:
            return False
        try:
            self.conn.execute(text("SELECT 1"))
            self.conn.commit()
        except SQLAlchemyError:
            return False
        return True

    def release(self) -> None:
        if self.conn is not None:
            # Not back to the pool, where the lock would live on: the session ends, the lock with it.
            self.conn.invalidate()
            self.conn.close()
            self.conn = None


class FileLock:
    """flock(2) on a file beside the SQLite database: the kernel drops it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def leader_lock(engine: Engine) -> LeaderLock:
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        raise CommsError(f"the daemon needs PostgreSQL or a SQLite file, not {engine.url.drivername}")
    return FileLock(Path(f"{database}.daemon-lock"))


# -- the tracking server -----------------------------------------------------------------------------


def _tracking_server(ws: Workspace, engine: Engine) -> HttpServer:
    settings = ws.settings
    host, port = listen_address(settings.tracking.listen or "")
    app = create_app(settings, engine, workspace=ws)
    return HttpServer(
        tracking_config(app, settings, host=host, port=port, log_level="warning", access_log=False)
    )


# -- the daemon ------------------------------------------------------------------------------------


async def _until(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep SECONDS or until STOP; True if stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


class Daemon:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.settings = ws.settings.daemon
        self.stop = asyncio.Event()
        self.engine = connect(ws.settings)
        self.lock = leader_lock(self.engine)
        self.metrics = Metrics(self.engine)
        self.timetable: Timetable | None = None
        self.leader_lost = False

    def problems(self) -> list[str]:
        """What /health reports: the database, and for the leader its scheduler and lock."""
        found = database_problems(self.engine)
        if self.timetable is not None and not self.stop.is_set():
            if not self.timetable.running:
                found.append("scheduler not running")
            if self.leader_lost:
                found.append("leader lock lost")
        return found

    def reload(self) -> None:
        """SIGHUP: the jobs follow schedules/ again; a bad file changes nothing and is logged."""
        if self.timetable is None:
            log_event(log, "schedules.reload_ignored", reason="standby")
            return
        log_event(log, "schedules.reload")
        try:
            self.timetable.sync()
        except CommsError as exc:
            log_event(log, "schedules.rejected", level=logging.ERROR, error=exc)

    async def run(self) -> int:
        servers = []
        if self.settings.metrics_listen:
            servers.append(http_server(self.metrics.app(self.problems), self.settings.metrics_listen))
        log_event(log, "daemon.started", pid=os.getpid(), database=display_url(self.engine))
        try:
            async with serving(servers):
                if not await self._become_leader():
                    return 0
                try:
                    return await self._lead()
                finally:
                    self.lock.release()
        finally:
            self.engine.dispose()
            log_event(log, "daemon.stopped", pid=os.getpid())

    async def _become_leader(self) -> bool:
        """Wait as a standby until the lock is ours; False if stopped first."""
        if self.lock.try_acquire():
            return True
        log_event(log, "daemon.standby", poll_s=self.settings.standby_poll_s)
        while not await _until(self.stop, self.settings.standby_poll_s):
            if self.lock.try_acquire():
                log_event(log, "daemon.takeover")
                return True
        return False

    async def _lead(self) -> int:
        self.timetable = Timetable(self.ws, self.engine, report_job=fire_report)
        self.timetable.start()
        log_event(log, "daemon.leading", workers=self.settings.concurrency)
        servers = []
        if self.ws.settings.tracking.listen:
            servers.append(_tracking_server(self.ws, self.engine))
        worker_stop = asyncio.Event()
        async with serving(servers):
            workers = [
                asyncio.create_task(work(self.ws, self.engine, worker_stop, self.metrics))
                for _ in range(self.settings.concurrency)
            ]
            keeper = asyncio.create_task(self._keep())
            stopped = asyncio.create_task(self.stop.wait())
            await asyncio.wait({stopped, keeper, *workers}, return_when=asyncio.FIRST_COMPLETED)
            log_event(log, "daemon.stopping")
            await self.timetable.shutdown()
            worker_stop.set()
            results = await asyncio.gather(*workers, return_exceptions=True)
            keeper.cancel()
            stopped.cancel()
            await asyncio.gather(keeper, stopped, return_exceptions=True)
        return 1 if log_failures(results) or self.leader_lost else 0

    async def _keep(self) -> None:
        """Every few seconds: confirm the lock is still ours, keep runs inside their windows, and
        decide the A/B tests whose decision time has come."""
        while not await _until(self.stop, _KEEP_EVERY_S):
            try:
                leading = await asyncio.to_thread(self._still_leading)
            except DatabaseError as exc:
                leading = False
                log_event(log, "daemon.database_lost", level=logging.ERROR, error=exc)
            if not leading:
                self.leader_lost = True
                log_event(log, "daemon.leader_lost", level=logging.ERROR)
                return
            try:
                moved = await asyncio.to_thread(keep_windows, self.engine, utcnow())
            except SQLAlchemyError as exc:
                log_event(log, "windows.check_failed", level=logging.WARNING, error=exc)
                continue
            for run_id, status in moved:
                log_event(log, "run.window", run=run_id, status=status)
            try:
                decided = await asyncio.to_thread(decide_due, self.ws, self.engine, utcnow())
            except (SQLAlchemyError, CommsError) as exc:
                log_event(log, "ab.decide_failed", level=logging.WARNING, error=exc)
                continue
            for decision in decided:
                log_event(
                    log,
                    "ab.decided",
                    run=decision["run_id"],
                    winner=decision["winner"],
                    released=decision["released"],
                    reason=decision["reason"],
                )

    def _still_leading(self) -> bool:
        """Whether the lock is (again) ours. A database blip ends the lock's session, and with it
        the lock: take it again once the database answers, unless another daemon was quicker."""
        if self.lock.held():
            return True
        log_event(log, "daemon.lock_interrupted", level=logging.WARNING)
        self.lock.release()
        regained = ride_out(self.engine, self.ws.settings.database, self.lock.try_acquire)
        if regained:
            log_event(log, "daemon.lock_regained")
        return regained


async def _daemon(ws: Workspace) -> int:
    daemon = Daemon(ws)
    remove = stop_on_signals(daemon.stop, log, daemon.reload)
    try:
        return await daemon.run()
    finally:
        remove()


def serve_daemon(ws: Workspace) -> int:
    """Run `comms daemon` in this process until SIGTERM; the exit code."""
    ws.settings.secret  # noqa: B018 -- refuse to start rather than fail every run: links need COMMS_SECRET
    return asyncio.run(_daemon(ws))


__all__ = ["AdvisoryLock", "Daemon", "FileLock", "LeaderLock", "leader_lock", "serve_daemon"]
