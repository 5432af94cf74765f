"""The sending engine: claim deliveries, personalise, build, send, record — one worker's loop.

One worker is one asyncio loop with:

- a feeder that claims batches from the outbox (leased, see outbox.claim_batch) into a
  `PacedQueue`, keeping about a batch ahead of the senders, and every second picks up
  new suppressions, runs paused or cancelled elsewhere, and expired leases;
- `transport.concurrency` senders, each taking the next delivery the rate limits
  allow, rendering it from the run's frozen template, and handing it to the transport;
- a recorder that writes outcomes as they come, in groups: a write waits a few
  milliseconds for more outcomes to join it, and while it is in the database the
  next outcomes gather for the following one (group commit), so a 250 is recorded
  within a few milliseconds and one commit of arriving, at any sending rate.

All database work runs on one thread beside the loop, in order, so SQLite sees a
single writer and the loop never blocks on I/O. While the database is out of reach, that
thread retries each transaction with backoff (storage.engines.ride_out) for `[database]
outage_s`, then the worker stops with one line. Meanwhile the senders go on with what was
claimed only while its leases are surely still ours: a message is handed over only if it
can be answered before the lease last renewed runs out, so no other worker can have
claimed it again.

Crash safety: a delivery is `sending` under a lease before its message is handed
over, and `sent` right after the reply. A worker killed in between leaves a
`sending` row that is claimed again once its lease runs out (at once, by
`comms runs resume`, when the dead worker was on this machine), and resent with
the same deterministic Message-ID, so the recipient can tell the copies apart from
a second message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, TypeVar

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from pipeline.audience.contacts import suppress
from pipeline.delivery.pacing import PacedQueue
from pipeline.delivery.transports.base import Transport
from pipeline.delivery.verdicts import Action, judge
from pipeline.errors import DatabaseError
from pipeline.logs import log_event
from pipeline.message.compose import Composer
from pipeline.message.dkim import Signer
from pipeline.storage import outbox
from pipeline.storage.engines import ride_out
from pipeline.storage.models import Run, utcnow
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.types import SendResult, SuppressionReason
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Database as DatabaseSettings
from pipeline.workspace.settings import Settings

log = logging.getLogger("comms.dispatch")

T = TypeVar("T")

_WATCH_EVERY_S = 1.0
# How long a write waits for more outcomes. A transaction costs the database thread
# ~70 us of CPU however few rows it holds, and that thread shares the GIL with the
# senders: written one or two at a time, outcomes cost the loop ~10% of its rate.
_GATHER_S = 0.005


_BOOT_ID = "/proc/sys/kernel/random/boot_id"


def _boot_id() -> str | None:
    """This boot of this machine: random per boot, so never shared by two machines, whatever their
    hostnames (cloned machines share /etc/machine-id and, in the root PID namespace, its inode too)."""
    try:
        with open(_BOOT_ID, encoding="ascii") as source:
            return source.read().strip().replace("-", "")[:12] or None
    except OSError:
        return None


def _here() -> str | None:
    """This machine, boot and PID namespace (containers may share a hostname and a kernel but never a
    PID namespace), so a pid is only looked up among the processes it could belong to; None where
    the machine cannot be told apart from another with its hostname."""
    boot = _boot_id()
    if boot is None:
        return None
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{socket.gethostname()[:40]}/{boot}/{namespace}"


def worker_name() -> str:
    """host/boot/pidns:pid:nonce — unique per worker process, on any machine, and enough to tell
    whether a lease holder here is dead."""
    here = _here() or f"{socket.gethostname()[:40]}/?"
    return f"{here}:{os.getpid()}:{random.getrandbits(32):08x}"


def _local_pid(holder: str) -> int | None:
    """HOLDER's pid when it was a worker process on this machine (boot and PID namespace), else None:
    a holder that may be on another machine is never known dead or alive here (its lease tells)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    here = _here()
    if here is None or host != here or not pid_text.isdigit():
        return None
    return int(pid_text)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_dead_here(holder: str) -> bool:
    """True when HOLDER was a worker process on this machine that no longer exists."""
    pid = _local_pid(holder)
    return pid is not None and pid != os.getpid() and not _exists(pid)


def _is_alive_here(holder: str) -> bool:
    """True when HOLDER is a worker process on this machine that still exists: its leases ran out
    only because the database was out of reach, and it renews them (and records what it sent
    meanwhile) as soon as it answers again, so they are not for another worker to take."""
    pid = _local_pid(holder)
    return pid is not None and (pid == os.getpid() or _exists(pid))


def _of_run(run_id: int) -> Callable[[outbox.Claimed], bool]:
    """Picks out RUN_ID's deliveries from the queue (a paused or stopped run gives them back)."""
    return lambda item: item.run_id == run_id


class _Answer(TypedDict):
    """What every outcome of a send records of the server's answer."""

    code: int | None
    reply: str


@dataclass
class Tally:
    """What this worker has recorded so far."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    by_run: dict[int, dict[str, int]] = field(default_factory=dict)

    def add(self, outcome: outbox.Outcome) -> None:
        name = {
            DeliveryStatus.sent: "sent",
            DeliveryStatus.failed: "failed",
            DeliveryStatus.skipped: "skipped",
            DeliveryStatus.queued: "retried",
        }[outcome.status]
        setattr(self, name, getattr(self, name) + 1)
        counts = self.by_run.setdefault(outcome.run_id, {})
        counts[name] = counts.get(name, 0) + 1

    @classmethod
    def total(cls, tallies: Iterable[Tally]) -> Tally:
        """What several workers recorded between them."""
        summed = cls()
        for tally in tallies:
            summed.sent += tally.sent
            summed.failed += tally.failed
            summed.skipped += tally.skipped
            summed.retried += tally.retried
            for run_id, counts in tally.by_run.items():
                into = summed.by_run.setdefault(run_id, {})
                for name, count in counts.items():
                    into[name] = into.get(name, 0) + count
        return summed


@dataclass(frozen=True)
class WorkerReport:
    worker: str
    tally: Tally
    stopped: bool  # a stop was asked for (SIGTERM, Ctrl-C) before the work ran out
    paused: dict[int, str]  # runs this worker paused itself, and why


class Calls(Protocol):
    """Where a worker's queries run: this process's database thread (Database), or the process that
    owns a SQLite database for several sending processes (delivery.channel.RemoteDatabase)."""

    async def call(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def close(self) -> None: ...


class Database:
    """The one thread that talks to the database; each call is one transaction, repeated while the
    database is out of reach (every query the worker makes is safe to repeat)."""

    def __init__(self, engine: Engine, limits: DatabaseSettings) -> None:
        self._engine = engine
        self._limits = limits
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="comms-db")
        self._gave_up: DatabaseError | None = None  # once an outage outlasted outage_s, fail fast

    async def call(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def transaction() -> T:
            with self._engine.begin() as conn:
                return query(conn, *args, **kwargs)

        def attempt() -> T:
            if self._gave_up is not None:
                raise self._gave_up
            try:
                return ride_out(self._engine, self._limits, transaction)
            except DatabaseError as exc:
                self._gave_up = exc
                raise

        return await asyncio.get_running_loop().run_in_executor(self._thread, attempt)

    def close(self) -> None:
        self._thread.shutdown(wait=True)


class _RunContext:
    """Everything needed to send one run's messages, built once from its frozen columns."""

    def __init__(self, settings: Settings, run: Run, signer: Signer | None) -> None:
        assert run.id is not None
        self.run_id = run.id
        # One composer per A/B variant the run sends ("" and the control share the run's templates).
        variants = ["", *(run.meta.get("ab") or {}).get("variants", [])]
        self.composers = {variant: run_composer(settings, run, signer, variant) for variant in variants}
        self.stopped = False  # paused or cancelled (by us or elsewhere): send nothing more
        self.pause_reason = ""  # why this worker paused it
        self.pause_written = False
        self.connection_failures = 0  # consecutive
        self.policy_refusals = 0


class _Recorder:
    """Writes outcomes in arrival order, each write carrying whatever gathered during the last
    and during a _GATHER_S wait of its own."""

    def __init__(self, db: Calls, worker: str, on_recorded: Callable[[list[outbox.Outcome]], None]) -> None:
        self._db = db
        self._worker = worker
        self._on_recorded = on_recorded
        self._pending: list[outbox.Outcome] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    def add(self, outcome: outbox.Outcome) -> None:
        self._pending.append(outcome)
        self._idle.clear()
        self._wake.set()

    async def flush(self) -> None:
        await self._idle.wait()

    def close(self) -> None:
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._closing:
                await asyncio.sleep(_GATHER_S)
            self._wake.clear()
            if self._pending:
                batch, self._pending = self._pending, []
                await self._db.call(record_outcomes, self._worker, batch)
                self._on_recorded(batch)
            if not self._pending:
                self._idle.set()
                if self._closing:
                    return


class _Worker:
    def __init__(
        self,
        ws: Workspace,
        db: Calls,
        transport: Transport,
        *,
        run_id: int | None,
        stop: asyncio.Event,
        on_progress: Callable[[Tally], None] | None,
        name: str,
        idle_poll_s: float,
    ) -> None:
        self.settings = ws.settings
        self.transport = transport
        self.run_id = run_id
        self.stop = stop
        self.on_progress = on_progress
        self.name = name
        self.idle_poll_s = idle_poll_s
        self.db = db
        self.signer = Signer.from_settings(self.settings, ws.root)
        self.queue: PacedQueue[outbox.Claimed] = PacedQueue(self.settings.rate)
        self.recorder = _Recorder(self.db, name, self._recorded)
        self.runs: dict[int, _RunContext] = {}
        self.tally = Tally()
        self.paused: dict[int, str] = {}
        self.late_suppressed: set[str] = set()
        self.watermark = 0
        self.in_flight = 0
        self.wake = asyncio.Event()
        self.low_water = max(transport.concurrency, self.settings.dispatch.batch_size // 2)
        self.rng = random.Random()
        self.run_over = False  # RUN_ID is finished, paused or cancelled
        # Every lease this worker holds runs at least until then (time.monotonic()); a message is
        # handed over only while its answer can come before then.
        self.leases_good_until = 0.0
        lease_s = self.settings.dispatch.lease_s
        # Renewed several times per lease, so one slow renewal does not stop the senders.
        self.watch_every_s = min(_WATCH_EVERY_S, lease_s / 4)
        self.lease_margin_s = min(self.settings.transport.timeout_s, lease_s / 4)
        self.leases_lost = False

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> WorkerReport:
        self.settings.secret  # noqa: B018 -- fail now, not on the first message, without COMMS_SECRET
        try:
            self.watermark = await self.db.call(outbox.suppression_watermark)
            await self._release_dead_workers()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.recorder.run())
                senders = [tasks.create_task(self._send_loop()) for _ in range(self.transport.concurrency)]
                await self._feed()
                await asyncio.gather(*senders)
                await self._settle_pauses()
                self.recorder.close()
        finally:
            self.db.close()
        return WorkerReport(
            self.name, self.tally, self.stop.is_set() and not self.run_over, dict(self.paused)
        )

    async def _feed(self) -> None:
        """Keep the queue about a batch ahead of the senders until the work runs out or a stop."""
        next_watch = 0.0
        try:
            while not self.stop.is_set() and not self.run_over:
                if time.monotonic() >= next_watch:
                    await self._watch()
                    next_watch = time.monotonic() + self.watch_every_s
                    continue
                await self._settle_pauses()
                if len(self.queue) >= self.low_water:
                    await self._nap(self.watch_every_s)
                    continue
                held = len(self.queue) + self.in_flight
                claim_started = time.monotonic()
                claimed = await self.db.call(
                    outbox.claim_batch,
                    worker=self.name,
                    limit=self.settings.dispatch.batch_size,
                    lease_s=self.settings.dispatch.lease_s,
                    now=utcnow(),
                    run_id=self.run_id,
                    max_per_week=self.settings.dispatch.max_per_week,
                )
                if claimed:
                    if not held:
                        self.leases_good_until = claim_started + self.settings.dispatch.lease_s
                    await self._enqueue(claimed)
                    continue
                if len(self.queue) or self.in_flight:
                    await self._nap(self.watch_every_s)
                    continue
                await self._idle()
        finally:
            self.queue.close()
            await self._release(self.queue.remove(lambda _: True))

    async def _idle(self) -> None:
        """Nothing to claim and nothing in hand: finish drained runs, then wait for the next due retry."""
        await self.recorder.flush()
        # Again here, not only at the start: the sending processes of a `comms send` killed just before
        # this one started die with it a moment later, still holding leases nobody else will renew.
        await self._release_dead_workers()
        finished = await self.db.call(outbox.finish_drained_runs, utcnow(), self.run_id)
        for run_id in finished:
            log.info("run %s finished", run_id)
        if self.run_id is not None:
            status = (await self.db.call(outbox.run_statuses, [self.run_id])).get(self.run_id)
            # An A/B test's rest of the audience is held until the decision: this run is done for now.
            if status != RunStatus.sending or await self.db.call(outbox.waits_for_decision, self.run_id):
                self.run_over = True
                return
        due = await self.db.call(outbox.next_due, self.run_id)
        wait_s = self.idle_poll_s
        if due is not None:
            wait_s = min(wait_s, max(0.0, (due - utcnow()).total_seconds()))
        await self._nap(wait_s)

    async def _nap(self, seconds: float) -> None:
        """Sleep until SECONDS pass, a stop, or a sender signals that something changed."""
        self.wake.clear()
        stop = asyncio.ensure_future(self.stop.wait())
        wake = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({stop, wake}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    async def _enqueue(self, claimed: list[outbox.Claimed]) -> None:
        unwanted = []
        for item in claimed:
            context = self.runs.get(item.run_id)
            if context is not None and context.pause_reason and not context.pause_written:
                unwanted.append(item)  # a sender paused the run while this claim was under way
                continue
            # Only sending runs are claimed from: a stopped context means the run was resumed since.
            if context is None or context.stopped:
                run = await self.db.call(outbox.get_run, item.run_id)
                assert run is not None, (
                    "a claimed delivery's run exists (deleting a run deletes its deliveries)"
                )
                self.runs[item.run_id] = _RunContext(self.settings, run, self.signer)
            self.queue.put(item.domain, item)
        await self._release(unwanted)

    async def _watch(self) -> None:
        """Once a second: late suppressions, runs stopped elsewhere, own leases kept, dead ones released."""
        self.watermark, hashes = await self.db.call(outbox.suppressions_since, self.watermark)
        self.late_suppressed.update(hashes)
        if self.runs:
            statuses = await self.db.call(outbox.run_statuses, list(self.runs))
            for run_id, status in statuses.items():
                context = self.runs[run_id]
                if status != RunStatus.sending and not context.stopped:
                    log.info("run %s is %s: stopping its deliveries", run_id, status)
                    context.stopped = True
                    await self._release(self.queue.remove(_of_run(run_id)))
                    if run_id == self.run_id:
                        self.run_over = True
        now = utcnow()
        renew_started = time.monotonic()
        ours = await self.db.call(outbox.renew_leases, self.name, now, self.settings.dispatch.lease_s)
        self.leases_good_until = renew_started + self.settings.dispatch.lease_s
        taken = self.queue.remove(lambda item: item.delivery_id not in ours)
        if taken:  # their leases ran out while the database was out of reach; another worker has them
            log.warning("dropped %s deliveries another worker requeued when their leases ran out", len(taken))
        if self.leases_lost:
            self.leases_lost = False
            log.warning("leases renewed: sending again")
        expired = await self.db.call(outbox.expired_lease_holders, now)
        alive = [holder for holder in expired if _is_alive_here(holder)]
        released = 0
        if len(alive) < len(expired):
            released = await self.db.call(outbox.release_expired_leases, now, alive)
        if released:
            log.warning("requeued %s deliveries whose worker's lease ran out", released)

    async def _release_dead_workers(self) -> None:
        holders = await self.db.call(outbox.lease_holders)
        dead = [holder for holder in holders if _is_dead_here(holder)]
        if dead:
            released = await self.db.call(outbox.release_leases_of, dead, utcnow())
            log.warning("requeued %s deliveries left in flight by %s", released, ", ".join(dead))

    async def _settle_pauses(self) -> None:
        """Write the pauses senders decided on, and give back what those runs still had queued."""
        for context in self.runs.values():
            if context.pause_reason and not context.pause_written:
                context.pause_written = True
                self.paused[context.run_id] = context.pause_reason
                await self.db.call(
                    outbox.set_run_status,
                    context.run_id,
                    RunStatus.paused,
                    when=[RunStatus.sending],
                    now=utcnow(),
                    reason=context.pause_reason,
                )
                log.warning("run %s paused: %s", context.run_id, context.pause_reason)
                await self._release(self.queue.remove(_of_run(context.run_id)))
                if context.run_id == self.run_id:
                    self.run_over = True

    async def _release(self, items: list[outbox.Claimed]) -> None:
        if items:
            await self.db.call(outbox.release_claims, self.name, [item.delivery_id for item in items])

    # -- one delivery ----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while (item := await self.queue.take()) is not None:
            self.in_flight += 1
            try:
                await self._deliver(item)
            finally:
                self.in_flight -= 1
                if len(self.queue) < self.low_water:
                    self.wake.set()

    async def _deliver(self, item: outbox.Claimed) -> None:
        context = self.runs[item.run_id]
        if context.stopped:
            await self._release([item])
            return
        now = utcnow()
        if item.recipient is None or item.contact_id is None:  # both, once the contact is erased
            self.recorder.add(
                outbox.Outcome(
                    item.delivery_id, item.run_id, DeliveryStatus.skipped, now, skip_reason="erased"
                )
            )
            return
        if item.suppressed or item.email_hash in self.late_suppressed:
            outcome = outbox.Outcome(
                item.delivery_id, item.run_id, DeliveryStatus.skipped, now, skip_reason="suppressed"
            )
            self.recorder.add(outcome)
            return
        if item.capped:
            reason = f"max_per_week: {self.settings.dispatch.max_per_week} messages in the last 7 days"
            self.recorder.add(
                outbox.Outcome(item.delivery_id, item.run_id, DeliveryStatus.skipped, now, skip_reason=reason)
            )
            return
        try:
            outgoing = (
                context.composers[item.variant]
                .compose(
                    item.recipient,
                    delivery_id=item.delivery_id,
                    contact_key=item.contact_id,
                    to_email=item.email,
                )
                .outgoing
            )
        except Exception as exc:  # whatever one contact's data does to the template stays with them
            # A template meeting one contact's data (or a header that data would break) fails
            # that delivery only; `comms runs retry` sends it once the data is fixed.
            reply = f"could not build the message: {exc}"
            self.recorder.add(
                outbox.Outcome(item.delivery_id, item.run_id, DeliveryStatus.failed, now, reply=reply)
            )
            return
        if time.monotonic() >= self.leases_good_until - self.lease_margin_s:
            await self._lease_lost(item)
            return
        result = await self.transport.send(outgoing)
        self.recorder.add(self._judge(context, item, result, outgoing.message_id))

    async def _lease_lost(self, item: outbox.Claimed) -> None:
        """The leases could not be renewed in time (the database is not answering): another worker
        may soon claim these deliveries, so send none of them; give them back once it answers."""
        if not self.leases_lost:
            self.leases_lost = True
            log.warning(
                "leases could not be renewed for %.0f s: sending stopped until the database answers",
                self.settings.dispatch.lease_s - self.lease_margin_s,
            )
        await self._release([item, *self.queue.remove(lambda _: True)])

    def _pause(self, context: _RunContext, reason: str) -> None:
        """Send no more of this run; the feeder writes the pause and gives back what was queued."""
        if not context.stopped:
            context.stopped = True
            context.pause_reason = reason
            self.wake.set()

    def _judge(
        self, context: _RunContext, item: outbox.Claimed, result: SendResult, sent_id: str
    ) -> outbox.Outcome:
        now = utcnow()
        verdict = judge(
            result,
            attempts=item.attempts,
            first_attempt_at=item.first_attempt_at,
            now=now,
            retry=self.settings.retry,
            rng=self.rng,
        )
        limits = self.settings.dispatch
        if verdict.refused:
            self._pause(context, f"the SMTP server refused the connection: {result.reply}")
        context.connection_failures = context.connection_failures + 1 if verdict.connection else 0
        if context.connection_failures >= limits.pause_after_connection_failures:
            self._pause(
                context, f"{context.connection_failures} connection failures in a row; last: {result.reply}"
            )
        if verdict.policy:
            context.policy_refusals += 1
            if context.policy_refusals >= limits.pause_after_policy_refusals:
                self._pause(
                    context, f"{context.policy_refusals} policy refusals (5.7.x); last: {result.reply}"
                )
        base: _Answer = {"code": result.code, "reply": verdict.reason or result.reply}
        if verdict.action is Action.sent:
            return outbox.Outcome(
                item.delivery_id, item.run_id, DeliveryStatus.sent, now, message_id=sent_id, **base
            )
        if verdict.action is Action.retry:
            log.info(
                "run %s delivery %s: retry at %s: %s", item.run_id, item.delivery_id, verdict.retry_at, base
            )
            return outbox.Outcome(
                item.delivery_id, item.run_id, DeliveryStatus.queued, now, retry_at=verdict.retry_at, **base
            )
        log.info("run %s delivery %s: failed: %s", item.run_id, item.delivery_id, base["reply"])
        bounce = item.email if verdict.hard_bounce else None
        return outbox.Outcome(
            item.delivery_id, item.run_id, DeliveryStatus.failed, now, hard_bounce=bounce, **base
        )

    def _recorded(self, outcomes: list[outbox.Outcome]) -> None:
        for outcome in outcomes:
            self.tally.add(outcome)
        self.wake.set()
        if self.on_progress is not None:
            self.on_progress(self.tally)


def record_outcomes(conn: Connection, worker: str, outcomes: list[outbox.Outcome]) -> None:
    """OUTCOMES written, and their hard bounces suppressed, in one transaction."""
    outbox.record(conn, worker, outcomes)
    bounced = [(o.hard_bounce, o.reply) for o in outcomes if o.hard_bounce]
    if bounced:
        with Session(bind=conn) as session:
            for address, reply in bounced:
                suppress(session, address, SuppressionReason.hard_bounce, reply[:500])
            session.flush()


def run_composer(settings: Settings, run: Run, signer: Signer | None = None, variant: str = "") -> Composer:
    """RUN's messages as they are sent: its (or its A/B VARIANT's) frozen templates, its Message-ID
    salt, tracking on."""
    assert run.id is not None
    return Composer(
        settings,
        run.variant_templates(variant),
        campaign=run.campaign,
        department=run.department,
        run_id=run.id,
        salt=str(run.meta.get("message_id_salt", "")),  # runs from before the salt have none
        signer=signer,
    )


async def run_worker(
    ws: Workspace,
    engine: Engine | Calls,
    transport: Transport,
    *,
    run_id: int | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Tally], None] | None = None,
    worker: str | None = None,
    idle_poll_s: float = 1.0,
) -> WorkerReport:
    """Send queued deliveries through TRANSPORT (opened by the caller) until there is no more work.

    With RUN_ID, only that run's deliveries, returning once it is finished, paused or
    cancelled. Without, every sending run's, forever, waiting IDLE_POLL_S between
    empty claims: the loop of `comms worker` and the daemon. Either way, setting STOP
    stops claiming, finishes the messages in flight, gives back the rest and returns;
    the runs stay as they are (the caller decides whether a stop pauses them).
    ENGINE is the database, or where its queries run (Calls) for a process that does not own it.
    """
    db = Database(engine, ws.settings.database) if isinstance(engine, Engine) else engine
    name = worker or worker_name()
    state = _Worker(
        ws,
        db,
        transport,
        run_id=run_id,
        stop=stop or asyncio.Event(),
        on_progress=on_progress,
        name=name,
        idle_poll_s=idle_poll_s,
    )
    log_event(log, "worker.started", worker=name)
    report = await state.run()
    tally = report.tally
    log_event(log, "worker.stopped", worker=name, sent=tally.sent, failed=tally.failed, skipped=tally.skipped)
    return report


__all__ = ["Calls", "Database", "Tally", "WorkerReport", "run_composer", "run_worker", "worker_name"]
