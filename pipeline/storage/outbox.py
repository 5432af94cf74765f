"""Every query over runs and their outbox (one delivery row per recipient), each a named function.

The dispatch engine and the run API call these by name and hold no SQL of their
own. All of them take a `Connection` inside the caller's transaction, so the
caller decides what commits together (a claim and its lease; a group of outcomes).

The same statements serve SQLite and PostgreSQL. Claiming uses
``FOR UPDATE SKIP LOCKED`` so several workers on PostgreSQL take disjoint
batches; SQLAlchemy leaves it out on SQLite, where the database's single write
lock makes the claim just as atomic for its single worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from pipeline.storage.models import (
    Contact,
    Delivery,
    Run,
    Suppression,
)
from pipeline.storage.statuses import UNFINISHED, DeliveryStatus, RunStatus, no_deliveries
from pipeline.types import Recipient


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


D = _table(Delivery)
R = _table(Run)
C = _table(Contact)
S = _table(Suppression)

# Runs whose deliveries may be claimed, and those whose leases are still worth watching.
_ACTIVE = (RunStatus.sending, RunStatus.paused)


def aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- runs ------------------------------------------------------------------------------------------


def create_run(conn: Connection, run: Run) -> int:
    """Insert RUN (its id is ignored) and return the new id."""
    values = run.model_dump(exclude={"id"})
    return int(conn.execute(insert(R).values(values).returning(R.c.id)).scalar_one())


def get_run(conn: Connection, run_id: int) -> Run | None:
    row = conn.execute(select(R).where(R.c.id == run_id)).mappings().first()
    return Run.model_validate(dict(row)) if row is not None else None


def latest_run(conn: Connection) -> Run | None:
    row = conn.execute(select(R).order_by(R.c.id.desc()).limit(1)).mappings().first()
    return Run.model_validate(dict(row)) if row is not None else None


def run_statuses(conn: Connection, run_ids: Iterable[int]) -> dict[int, str]:
    rows = conn.execute(select(R.c.id, R.c.status).where(R.c.id.in_(list(run_ids))))
    return {run_id: status for run_id, status in rows}


def set_run_status(
    conn: Connection,
    run_id: int,
    status: RunStatus,
    *,
    when: Sequence[RunStatus],
    now: datetime,
    reason: str = "",
) -> bool:
    """Move the run to STATUS if it is in one of WHEN; False if it was not (someone else moved it)."""
    values: dict[str, Any] = {"status": status, "status_reason": reason}
    if status is RunStatus.sending:
        values["started_at"] = func.coalesce(R.c.started_at, now)
    if status in (RunStatus.finished, RunStatus.cancelled):
        values["finished_at"] = now
    statement = update(R).where(R.c.id == run_id, R.c.status.in_(when)).values(values)
    return bool(conn.execute(statement).rowcount)


def finish_drained_runs(conn: Connection, now: datetime, run_id: int | None = None) -> list[int]:
    """Mark finished every sending run (or just RUN_ID) with nothing left queued or in flight."""
    left = exists().where(D.c.run_id == R.c.id, D.c.status.in_(UNFINISHED))
    statement = update(R).where(R.c.status == RunStatus.sending, ~left)
    if run_id is not None:
        statement = statement.where(R.c.id == run_id)
    statement = statement.values(status=RunStatus.finished, finished_at=now, status_reason="").returning(
        R.c.id
    )
    return list(conn.execute(statement).scalars())


def set_recipient_count(conn: Connection, run_id: int, count: int) -> None:
    conn.execute(update(R).where(R.c.id == run_id).values(recipient_count=count))


# -- the snapshot ----------------------------------------------------------------------------------

# What snapshot_audience copies from each contact row of its audience query, by column name.
SNAPSHOT_COLUMNS = ("id", "email", "department", "domain", "locale", "timezone", "seed")


def snapshot_audience(conn: Connection, run_id: int, audience: Select[Any], now: datetime) -> int:
    """Copy the audience into the outbox as one queued delivery per contact, in one INSERT ... SELECT.

    AUDIENCE selects, per contact, the columns a delivery copies (SNAPSHOT_COLUMNS: see
    pipeline.audience.segments.snapshot_query): the address, since the run goes to the address the
    contact had when it started, and the grouping attributes reports use (department, mailbox
    domain, locale, timezone, seed), frozen so a later reorganisation does not rewrite history.
    The database streams the rows itself, so memory does not grow with the audience.
    """
    contacts = audience.subquery()
    rows = select(
        literal(run_id, Integer),
        literal(now, DateTime(timezone=True)),
        *(contacts.c[name] for name in SNAPSHOT_COLUMNS),
    )
    columns = ["run_id", "next_attempt_at", *("contact_id" if n == "id" else n for n in SNAPSHOT_COLUMNS)]
    conn.execute(insert(D).from_select(columns, rows))
    # Counted rather than taken from rowcount, which psycopg reports as -1 for this statement.
    return int(conn.execute(select(func.count()).where(D.c.run_id == run_id)).scalar_one())


# Deliveries that mean a contact has, or is about to have, a campaign's message.
_RECEIVED = (DeliveryStatus.sent, DeliveryStatus.sending, DeliveryStatus.queued, DeliveryStatus.held)


def has_received(campaign: str) -> ColumnElement[bool]:
    """A condition on contact rows: the contact has a sent, in-flight or queued delivery of CAMPAIGN
    in some run (so a new run of it would reach them twice)."""
    return exists(
        select(D.c.id)
        .join(R, R.c.id == D.c.run_id)
        .where(D.c.contact_id == C.c.id, R.c.campaign == campaign, D.c.status.in_(_RECEIVED))
    )


def count_already_received(conn: Connection, audience: Select[Any], campaign: str) -> int:
    """How many contacts of the AUDIENCE query already received (or are queued for) CAMPAIGN."""
    query = audience.where(has_received(campaign))
    counted = query.with_only_columns(func.count(C.c.id)).order_by(None)
    return int(conn.execute(counted).scalar_one())


def unfinished_runs(conn: Connection, campaign: str, audience: str) -> list[Run]:
    """Runs of CAMPAIGN to AUDIENCE that are still sending or paused (resume them, or cancel)."""
    statuses = (RunStatus.planned, *_ACTIVE)
    rows = conn.execute(
        select(R).where(R.c.campaign == campaign, R.c.audience == audience, R.c.status.in_(statuses))
    ).mappings()
    return [Run.model_validate(dict(row)) for row in rows.all()]


# -- A/B tests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stratum:
    """What the A/B assignment reads of one snapshotted delivery."""

    delivery_id: int
    contact_id: int | None
    department: str
    domain: str
    seed: bool


def strata(conn: Connection, run_id: int) -> list[Stratum]:
    statement = select(D.c.id, D.c.contact_id, D.c.department, D.c.domain, D.c.seed).where(
        D.c.run_id == run_id
    )
    return [
        Stratum(r.id, r.contact_id, r.department or "", r.domain or "", bool(r.seed))
        for r in conn.execute(statement)
    ]


_ASSIGN = (
    update(D)
    .where(D.c.id == bindparam("b_id"))
    .values(variant=bindparam("b_variant"), status=bindparam("b_status"))
)


def assign_variants(conn: Connection, assigned: Sequence[tuple[int, str, bool]]) -> None:
    """Freeze (delivery id, variant, held) in the outbox: a held delivery waits for the decision."""
    if assigned:
        conn.execute(
            _ASSIGN,
            [
                {
                    "b_id": d,
                    "b_variant": v,
                    "b_status": DeliveryStatus.held if held else DeliveryStatus.queued,
                }
                for d, v, held in assigned
            ],
        )


def release_held(conn: Connection, run_id: int, variant: str, now: datetime) -> int:
    """The decision: RUN_ID's held deliveries become queued, due now, with VARIANT frozen on them."""
    statement = (
        update(D)
        .where(D.c.run_id == run_id, D.c.status == DeliveryStatus.held)
        .values(status=DeliveryStatus.queued, variant=variant, next_attempt_at=now, updated_at=now)
    )
    return int(conn.execute(statement).rowcount)


def waits_for_decision(conn: Connection, run_id: int) -> bool:
    """True when all RUN_ID has left is held deliveries: its test arms are done, the rest waits."""
    statuses = set(
        conn.execute(
            select(D.c.status).where(D.c.run_id == run_id, D.c.status.in_(UNFINISHED)).distinct()
        ).scalars()
    )
    return statuses == {DeliveryStatus.held}


def lock_run(conn: Connection, run_id: int) -> Run | None:
    """RUN_ID, its row locked until the transaction ends (PostgreSQL), so two deciders take turns."""
    row = conn.execute(select(R).where(R.c.id == run_id).with_for_update()).mappings().first()
    return Run.model_validate(dict(row)) if row is not None else None


def set_run_meta(conn: Connection, run_id: int, meta: dict[str, Any], **values: Any) -> None:
    """Replace RUN_ID's meta (a JSON column is saved only when reassigned) and set other VALUES."""
    conn.execute(update(R).where(R.c.id == run_id).values(meta=meta, **values))


def tests_due(conn: Connection, now: datetime) -> list[int]:
    """Runs whose A/B test reached its decision time and is not decided yet."""
    statement = select(R.c.id).where(R.c.ab_decide_at.is_not(None), R.c.ab_decide_at <= now)
    return list(conn.execute(statement.order_by(R.c.ab_decide_at)).scalars())


# -- claiming --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to one worker, with what it takes to personalise it."""

    delivery_id: int
    run_id: int
    contact_id: int | None
    email: str
    attempts: int  # including this one
    first_attempt_at: datetime
    recipient: Recipient | None  # None once the contact has been erased
    email_hash: str | None
    suppressed: bool  # suppressed since the snapshot was taken
    capped: bool = False  # reached [dispatch] max_per_week: skipped, not sent
    variant: str = ""  # the A/B variant it is rendered from ("" outside a test)

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


def claim_batch(
    conn: Connection,
    *,
    worker: str,
    limit: int,
    lease_s: float,
    now: datetime,
    run_id: int | None = None,
    max_per_week: int | None = None,
) -> list[Claimed]:
    """Lease up to LIMIT due deliveries of sending runs (or of RUN_ID only) to WORKER.

    The rows are marked `sending` with a lease before anything is transmitted, so a
    worker that dies leaves rows whose lease runs out and which another claim takes.
    With MAX_PER_WEEK, a delivery whose contact was sent that many campaign messages
    in the trailing 7 days comes back `capped`.
    """
    runs = select(R.c.id).where(R.c.status == RunStatus.sending)
    due = select(D.c.id).where(D.c.status == DeliveryStatus.queued, D.c.next_attempt_at <= now)
    if run_id is not None:
        runs = runs.where(R.c.id == run_id)
        due = due.where(D.c.run_id == run_id, runs.exists())
    else:
        due = due.where(D.c.run_id.in_(runs))
    due = due.order_by(D.c.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
    statement = (
        update(D)
        .where(D.c.id.in_(due.scalar_subquery()))
        .values(
            status=DeliveryStatus.sending,
            lease_until=now + timedelta(seconds=lease_s),
            leased_by=worker,
            attempts=D.c.attempts + 1,
            first_attempt_at=func.coalesce(D.c.first_attempt_at, now),
            updated_at=now,
        )
        .returning(D.c.id)
    )
    ids = list(conn.execute(statement).scalars())
    if not ids:
        return []
    suppressed = exists().where(S.c.email_hash == C.c.email_hash).label("suppressed")
    capped = literal(False).label("capped")
    if max_per_week is not None:
        capped = (_sent_to_contact_since(now - _WEEK) >= max_per_week).label("capped")
    rows = conn.execute(
        select(
            D.c.id,
            D.c.run_id,
            D.c.email,
            D.c.attempts,
            D.c.first_attempt_at,
            D.c.contact_id,
            D.c.variant,
            C.c.email_hash,
            C.c.first_name,
            C.c.last_name,
            C.c.locale,
            C.c.timezone,
            C.c.attributes,
            suppressed,
            capped,
        )
        .select_from(D.outerjoin(C, C.c.id == D.c.contact_id))
        .where(D.c.id.in_(ids))
        .order_by(D.c.id)
    )
    return [_claimed(row) for row in rows]


_WEEK = timedelta(days=7)
_PRIOR = D.alias("prior")


def _sent_to_contact_since(since: datetime) -> Any:
    """How many messages the claimed row's contact was sent since SINCE, over all runs."""
    return (
        select(func.count())
        .where(
            _PRIOR.c.contact_id == D.c.contact_id,
            _PRIOR.c.status == DeliveryStatus.sent,
            _PRIOR.c.sent_at >= since,
        )
        .scalar_subquery()
    )


def _claimed(row: Any) -> Claimed:
    erased = row.contact_id is None or row.email is None
    recipient = None
    if not erased:
        recipient = Recipient(
            email=row.email,
            first_name=row.first_name,
            last_name=row.last_name,
            locale=row.locale,
            timezone=row.timezone,
            attributes=row.attributes or {},
        )
    return Claimed(
        delivery_id=row.id,
        run_id=row.run_id,
        contact_id=row.contact_id,
        email=row.email or "",
        attempts=row.attempts,
        first_attempt_at=aware(row.first_attempt_at),
        recipient=recipient,
        email_hash=row.email_hash,
        suppressed=bool(row.suppressed),
        capped=bool(row.capped),
        variant=row.variant or "",
    )


def release_claims(conn: Connection, worker: str, delivery_ids: Sequence[int]) -> None:
    """Give back claimed deliveries that were not sent (a stop or a pause): not an attempt."""
    if not delivery_ids:
        return
    conn.execute(
        update(D)
        .where(D.c.id.in_(delivery_ids), D.c.status == DeliveryStatus.sending, D.c.leased_by == worker)
        .values(status=DeliveryStatus.queued, lease_until=None, leased_by=None, attempts=D.c.attempts - 1)
    )


def renew_leases(conn: Connection, worker: str, now: datetime, lease_s: float) -> set[int]:
    """Keep WORKER's claims its own while it is alive: a claim may wait in the pace queue for
    longer than one lease, and an expired one would be claimed, and sent, a second time.
    The deliveries still WORKER's: one missing was requeued by another worker when its lease
    ran out (while this one could not reach the database), and is no longer WORKER's to send."""
    statement = (
        update(D)
        .where(D.c.leased_by == worker, D.c.status == DeliveryStatus.sending)
        .values(lease_until=now + timedelta(seconds=lease_s))
        .returning(D.c.id)
    )
    return set(conn.execute(statement).scalars())


def _expired(now: datetime) -> ColumnElement[bool]:
    return and_(
        D.c.run_id.in_(select(R.c.id).where(R.c.status.in_(_ACTIVE))),
        D.c.status == DeliveryStatus.sending,
        D.c.lease_until < now,
    )


def expired_lease_holders(conn: Connection, now: datetime) -> list[str]:
    """The workers whose leases on deliveries of active runs have run out."""
    statement = select(D.c.leased_by).where(_expired(now), D.c.leased_by.is_not(None)).distinct()
    return list(conn.execute(statement).scalars())


def release_expired_leases(conn: Connection, now: datetime, spare: Sequence[str] = ()) -> int:
    """Requeue deliveries whose worker died (its lease ran out) so another claim resends them;
    those of the workers SPARE (known to be alive) stay theirs."""
    statement = (
        update(D)
        .where(_expired(now))
        .values(status=DeliveryStatus.queued, lease_until=None, leased_by=None, next_attempt_at=now)
    )
    if spare:
        statement = statement.where(D.c.leased_by.not_in(spare))
    return int(conn.execute(statement).rowcount)


def lease_holders(conn: Connection) -> list[str]:
    """The workers holding leases on deliveries of active runs."""
    statement = (
        select(D.c.leased_by)
        .where(
            D.c.run_id.in_(select(R.c.id).where(R.c.status.in_(_ACTIVE))),
            D.c.status == DeliveryStatus.sending,
            D.c.leased_by.is_not(None),
        )
        .distinct()
    )
    return list(conn.execute(statement).scalars())


def release_leases_of(conn: Connection, workers: Sequence[str], now: datetime) -> int:
    """Requeue everything WORKERS held, without waiting for the leases to run out (they are gone)."""
    if not workers:
        return 0
    statement = (
        update(D)
        .where(D.c.status == DeliveryStatus.sending, D.c.leased_by.in_(workers))
        .values(status=DeliveryStatus.queued, lease_until=None, leased_by=None, next_attempt_at=now)
    )
    return int(conn.execute(statement).rowcount)


def next_due(conn: Connection, run_id: int | None = None) -> datetime | None:
    """When the earliest queued delivery of a sending run (or of RUN_ID) becomes due."""
    runs = select(R.c.id).where(R.c.status == RunStatus.sending)
    if run_id is not None:
        runs = runs.where(R.c.id == run_id)
    statement = select(func.min(D.c.next_attempt_at)).where(
        D.c.run_id.in_(runs), D.c.status == DeliveryStatus.queued
    )
    found = conn.execute(statement).scalar()
    return aware(found) if found is not None else None


# -- suppressions at send time ---------------------------------------------------------------------


def suppression_watermark(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(S.c.id), 0))).scalar_one())


def suppressions_since(conn: Connection, watermark: int) -> tuple[int, list[str]]:
    """Hashes of suppressions recorded after WATERMARK, and the new watermark."""
    rows = conn.execute(select(S.c.id, S.c.email_hash).where(S.c.id > watermark).order_by(S.c.id)).all()
    if not rows:
        return watermark, []
    return rows[-1].id, [row.email_hash for row in rows]


# -- outcomes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed delivery; `status` says which mark_* records it."""

    delivery_id: int
    run_id: int
    status: DeliveryStatus  # sent, queued (retry later), failed or skipped
    at: datetime
    code: int | None = None
    reply: str = ""
    message_id: str = ""
    retry_at: datetime | None = None
    skip_reason: str = ""
    hard_bounce: str | None = None  # the address to suppress


# The outcome statements are built once: they run for every message, and building and
# cache-keying an UPDATE costs more than executing it.
_CLEAR_LEASE = {"lease_until": None, "leased_by": None}
# Only the worker holding the lease may put a claimed row back, fail or skip it: a late answer
# from a worker whose lease ran out must not undo what the next holder recorded.
_LEASED = (
    D.c.id == bindparam("b_id"),
    D.c.status == DeliveryStatus.sending,
    D.c.leased_by == bindparam("b_worker"),
)
_RECORDED: dict[str, Any] = {
    "updated_at": bindparam("b_at"),
    "last_code": bindparam("b_code"),
    "last_reply": bindparam("b_reply"),
}

# Sent is recorded whoever holds the lease now, because the message went.
_MARK_SENT = (
    update(D)
    .where(D.c.id == bindparam("b_id"))
    .values(
        status=DeliveryStatus.sent,
        sent_at=bindparam("b_at"),
        message_id=bindparam("b_message_id"),
        **_RECORDED,
        **_CLEAR_LEASE,
    )
)
_MARK_RETRY = (
    update(D)
    .where(*_LEASED)
    .values(
        status=DeliveryStatus.queued, next_attempt_at=bindparam("b_retry_at"), **_RECORDED, **_CLEAR_LEASE
    )
)
_MARK_FAILED = update(D).where(*_LEASED).values(status=DeliveryStatus.failed, **_RECORDED, **_CLEAR_LEASE)
_MARK_SKIPPED = (
    update(D)
    .where(*_LEASED)
    .values(
        status=DeliveryStatus.skipped,
        updated_at=bindparam("b_at"),
        skip_reason=bindparam("b_skip"),
        **_CLEAR_LEASE,
    )
)


def _many(conn: Connection, statement: Any, worker: str, outcomes: Sequence[Outcome]) -> None:
    if outcomes:
        conn.execute(
            statement,
            [
                {
                    "b_id": o.delivery_id,
                    "b_worker": worker,
                    "b_at": o.at,
                    "b_code": o.code,
                    "b_reply": o.reply[:1000],
                    "b_message_id": o.message_id,
                    "b_retry_at": o.retry_at,
                    "b_skip": o.skip_reason,
                }
                for o in outcomes
            ],
        )


def mark_sent(conn: Connection, outcomes: Sequence[Outcome]) -> None:
    _many(conn, _MARK_SENT, "", outcomes)


def mark_retry(conn: Connection, worker: str, outcomes: Sequence[Outcome]) -> None:
    _many(conn, _MARK_RETRY, worker, outcomes)


def mark_failed(conn: Connection, worker: str, outcomes: Sequence[Outcome]) -> None:
    _many(conn, _MARK_FAILED, worker, outcomes)


def mark_skipped(conn: Connection, worker: str, outcomes: Sequence[Outcome]) -> None:
    _many(conn, _MARK_SKIPPED, worker, outcomes)


def record(conn: Connection, worker: str, outcomes: Sequence[Outcome]) -> None:
    """Write a group of outcomes in the caller's transaction (which suppresses the hard bounces)."""
    by_status: dict[DeliveryStatus, list[Outcome]] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome.status, []).append(outcome)
    mark_sent(conn, by_status.get(DeliveryStatus.sent, []))
    mark_retry(conn, worker, by_status.get(DeliveryStatus.queued, []))
    mark_failed(conn, worker, by_status.get(DeliveryStatus.failed, []))
    mark_skipped(conn, worker, by_status.get(DeliveryStatus.skipped, []))


# -- run control -----------------------------------------------------------------------------------


def make_due_now(conn: Connection, run_id: int, now: datetime) -> None:
    """A resumed run should not sit out the rest of a backoff the operator has decided to skip."""
    conn.execute(
        update(D)
        .where(D.c.run_id == run_id, D.c.status == DeliveryStatus.queued, D.c.next_attempt_at > now)
        .values(next_attempt_at=now)
    )


def cancel_deliveries(conn: Connection, run_id: int, now: datetime) -> int:
    """Everything not yet sent is cancelled; a message in flight that is then taken still counts as sent."""
    statement = (
        update(D)
        .where(D.c.run_id == run_id, D.c.status.in_(UNFINISHED))
        .values(status=DeliveryStatus.cancelled, updated_at=now, **_CLEAR_LEASE)
    )
    return int(conn.execute(statement).rowcount)


def failed_deliveries(conn: Connection, run_id: int) -> list[tuple[int, int | None, str]]:
    """(delivery id, last code, last reply) of the run's failed deliveries."""
    statement = select(D.c.id, D.c.last_code, D.c.last_reply).where(
        D.c.run_id == run_id, D.c.status == DeliveryStatus.failed
    )
    return [(row.id, row.last_code, row.last_reply) for row in conn.execute(statement)]


def requeue(conn: Connection, delivery_ids: Sequence[int], now: datetime) -> None:
    """Queue failed deliveries again with a fresh retry age (`comms runs retry`)."""
    for start in range(0, len(delivery_ids), 1000):
        chunk = delivery_ids[start : start + 1000]
        conn.execute(
            update(D)
            .where(D.c.id.in_(chunk), D.c.status == DeliveryStatus.failed)
            .values(status=DeliveryStatus.queued, next_attempt_at=now, first_attempt_at=None, updated_at=now)
        )


# -- figures ---------------------------------------------------------------------------------------


def run_counts(conn: Connection, run_id: int) -> dict[str, int]:
    """Deliveries by status; every status present, zero where there are none."""
    counts = no_deliveries()
    statement = select(D.c.status, func.count()).where(D.c.run_id == run_id).group_by(D.c.status)
    counts.update({status: count for status, count in conn.execute(statement)})
    return counts


def skip_reasons(conn: Connection, run_id: int) -> dict[str, int]:
    """Skipped deliveries by why (suppressed since the snapshot, frequency cap, erased)."""
    statement = (
        select(D.c.skip_reason, func.count())
        .where(D.c.run_id == run_id, D.c.status == DeliveryStatus.skipped)
        .group_by(D.c.skip_reason)
    )
    return {reason or "skipped": count for reason, count in conn.execute(statement)}


def sent_between(conn: Connection, run_id: int, start: datetime, end: datetime) -> int:
    statement = select(func.count()).where(
        D.c.run_id == run_id, D.c.status == DeliveryStatus.sent, D.c.sent_at >= start, D.c.sent_at <= end
    )
    return int(conn.execute(statement).scalar_one())


def sending_span(conn: Connection, run_id: int) -> tuple[datetime, datetime] | None:
    """First attempt and last send of the run, for its average rate."""
    statement = select(func.min(D.c.first_attempt_at), func.max(D.c.sent_at)).where(D.c.run_id == run_id)
    first, last = conn.execute(statement).one()
    if first is None or last is None:
        return None
    return aware(first), aware(last)


@dataclass(frozen=True)
class DeliveryError:
    email: str
    status: str
    code: int | None
    reply: str
    at: datetime | None


def last_errors(conn: Connection, run_id: int, limit: int) -> list[DeliveryError]:
    """The most recent failures and pending retries, newest first."""
    statement = (
        select(D.c.email, D.c.status, D.c.last_code, D.c.last_reply, D.c.updated_at)
        .where(
            D.c.run_id == run_id,
            D.c.status.in_([DeliveryStatus.failed, DeliveryStatus.queued]),
            D.c.last_reply != "",
        )
        .order_by(D.c.updated_at.desc())
        .limit(limit)
    )
    return [
        DeliveryError(
            email=row.email or "(erased)",
            status=row.status,
            code=row.last_code,
            reply=row.last_reply,
            at=aware(row.updated_at) if row.updated_at else None,
        )
        for row in conn.execute(statement)
    ]


# -- the daemon ------------------------------------------------------------------------------------


def scheduled_occurrences(conn: Connection, schedule: str) -> set[datetime]:
    """Occurrences of SCHEDULE that already have a run (of any status, `missed` included)."""
    statement = select(R.c.occurrence).where(R.c.schedule == schedule, R.c.occurrence.is_not(None))
    return {aware(moment) for moment in conn.execute(statement).scalars()}


@dataclass(frozen=True)
class ScheduledRun:
    run_id: int
    status: str
    reason: str
    meta: dict[str, Any]


def scheduled_runs_in_progress(conn: Connection) -> list[ScheduledRun]:
    """Sending and paused runs that a schedule started: the daemon keeps them inside their windows."""
    statement = select(R.c.id, R.c.status, R.c.status_reason, R.c.meta).where(
        R.c.schedule.is_not(None), R.c.status.in_(_ACTIVE)
    )
    return [
        ScheduledRun(row.id, row.status, row.status_reason, row.meta or {}) for row in conn.execute(statement)
    ]


def sent_by_contact_since(conn: Connection, since: datetime) -> dict[int, list[datetime]]:
    """When each contact was sent campaign messages since SINCE (the plan's frequency-cap check)."""
    statement = select(D.c.contact_id, D.c.sent_at).where(
        D.c.status == DeliveryStatus.sent, D.c.sent_at >= since, D.c.contact_id.is_not(None)
    )
    sent: dict[int, list[datetime]] = {}
    for contact_id, sent_at in conn.execute(statement):
        sent.setdefault(contact_id, []).append(aware(sent_at))
    return sent


# -- figures for the metrics endpoint --------------------------------------------------------------


def runs_by_status(conn: Connection) -> dict[str, int]:
    statement = select(R.c.status, func.count()).group_by(R.c.status)
    return {status: count for status, count in conn.execute(statement)}


def outbox_depth(conn: Connection) -> dict[str, int]:
    """Deliveries of sending and paused runs still to go: queued (retries included) and in flight."""
    statement = (
        select(D.c.status, func.count())
        .where(D.c.run_id.in_(select(R.c.id).where(R.c.status.in_(_ACTIVE))), D.c.status.in_(UNFINISHED))
        .group_by(D.c.status)
    )
    return {status: count for status, count in conn.execute(statement)}


def reply_classes(conn: Connection) -> dict[str, int]:
    """Deliveries of sending and paused runs by the class of their last SMTP reply (2, 4 or 5)."""
    # Floor division of integers on both backends (a cast of `/` rounds on PostgreSQL: 451 -> 5).
    klass = D.c.last_code // 100
    statement = (
        select(klass, func.count())
        .where(D.c.run_id.in_(select(R.c.id).where(R.c.status.in_(_ACTIVE))), D.c.last_code.is_not(None))
        .group_by(klass)
    )
    return {f"{code}xx": count for code, count in conn.execute(statement)}


def sent_since(conn: Connection, since: datetime) -> int:
    statement = select(func.count()).where(D.c.status == DeliveryStatus.sent, D.c.sent_at >= since)
    return int(conn.execute(statement).scalar_one())
