"""Every report query: aggregates computed by the database, the same SQL on SQLite and PostgreSQL.

Nothing here loads a row per delivery into Python except for one run's clickers (the engagement
curve and time to first click, which are per-run and bounded by its clicker count): totals over a
million deliveries are one pass of GROUP BY in the database. A delivery's events are first folded
into one row of flags (had a human open, an Apple proxy open, a human click...) by a GROUP BY on
event.delivery_id, which the covering index ix_event_report serves; the flags are then summed
per group of deliveries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    distinct,
    false,
    func,
    or_,
    select,
)

from pipeline.storage.models import Delivery, Event, EventKind, Run
from pipeline.storage.statuses import DeliveryStatus

D = Delivery.__table__  # type: ignore[attr-defined]
E = Event.__table__  # type: ignore[attr-defined]
R = Run.__table__  # type: ignore[attr-defined]

APPLE_PROXY = "apple-privacy-proxy"

# What a delivery's events fold into: one 0/1 flag per condition.
_FLAGS: dict[str, ColumnElement[bool]] = {
    "any_open": E.c.kind == EventKind.open,
    "human_open": and_(E.c.kind == EventKind.open, E.c.machine == false()),
    "apple_open": and_(E.c.kind == EventKind.open, E.c.reason == APPLE_PROXY),
    "any_click": E.c.kind == EventKind.click,
    "human_click": and_(E.c.kind == EventKind.click, E.c.machine == false()),
    "complaint": E.c.kind == EventKind.complaint,
    "unsubscribe": E.c.kind == EventKind.unsubscribe,
    "hard": and_(E.c.kind == EventKind.bounce, E.c.reason == "hard"),
    "soft": and_(E.c.kind == EventKind.bounce, E.c.reason == "soft"),
}


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.max(case((condition, 1), else_=0))


def _folded(deliveries: Select[Any]) -> Any:
    """One row per delivery of DELIVERIES (a select of delivery ids) that has events: its flags."""
    columns = [_flag(condition).label(name) for name, condition in _FLAGS.items()]
    return (
        select(E.c.delivery_id, *columns)
        .where(E.c.delivery_id.in_(deliveries))
        .group_by(E.c.delivery_id)
        .subquery("flags")
    )


def _sum(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


@dataclass(frozen=True)
class Scope:
    """Which deliveries a query counts: those of RUN_IDS, or of runs started in [start, end)."""

    run_ids: tuple[int, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    campaign: str | None = None  # runs of this campaign or schedule
    tracked_only: bool = False

    def runs(self) -> Select[Any]:
        query = select(R.c.id)
        if self.run_ids is not None:
            query = query.where(R.c.id.in_(self.run_ids))
        if self.start is not None:
            query = query.where(R.c.started_at >= self.start)
        if self.end is not None:
            query = query.where(R.c.started_at < self.end)
        if self.campaign is not None:
            query = query.where(or_(R.c.campaign == self.campaign, R.c.schedule == self.campaign))
        return query


def _one(value: Any) -> int:
    return int(value or 0)


def counts(
    conn: Connection, scope: Scope, groups: Sequence[ColumnElement[Any]] = ()
) -> Iterator[tuple[tuple[Any, ...], dict[str, int]]]:
    """(group values, COUNTS) per group of SCOPE's deliveries (seeds left out), in group order.

    Two aggregates, merged by group: one over the deliveries alone (status counts), one over the
    deliveries that have events, joined from their folded flags by primary key; one query with an
    outer join to the flags was four times slower on SQLite.
    """
    in_scope = and_(D.c.run_id.in_(scope.runs()), D.c.seed == false())
    joined = D.join(R, R.c.id == D.c.run_id)
    accepted = D.c.sent_at.is_not(None)
    not_attempted = or_(
        D.c.status.in_([DeliveryStatus.skipped, DeliveryStatus.cancelled]),
        and_(D.c.status == DeliveryStatus.queued, D.c.attempts == 0),
    )
    plain: dict[str, ColumnElement[Any]] = {
        "snapshotted": func.count(D.c.id),
        "not_attempted": _sum(not_attempted),
        "accepted": _sum(accepted),
    }

    flags = _folded(select(D.c.id).where(in_scope))
    f = flags.c
    bounced = or_(f.hard == 1, f.soft == 1)
    delivered = and_(accepted, ~bounced)
    trackable = and_(delivered, f.apple_open == 0)
    engaged = and_(delivered, or_(f.human_open == 1, f.human_click == 1))
    flagged: dict[str, ColumnElement[Any]] = {
        "hard_bounced": _sum(and_(accepted, f.hard == 1)),
        "soft_bounced": _sum(and_(accepted, f.soft == 1, f.hard == 0)),
        "complaints": _sum(and_(delivered, f.complaint == 1)),
        "unsubscribes": _sum(and_(delivered, f.unsubscribe == 1)),
        "pixel_openers": _sum(and_(delivered, f.any_open == 1)),
        "human_pixel_openers": _sum(and_(delivered, f.human_open == 1)),
        "inferred_openers": _sum(engaged),
        "apple_proxy_openers": _sum(and_(delivered, f.apple_open == 1)),
        "eventless_trackable": _sum(trackable),
        "trackable_openers": _sum(and_(trackable, f.human_open == 1)),
        "raw_clickers": _sum(and_(delivered, f.any_click == 1)),
        "clickers": _sum(and_(delivered, f.human_click == 1)),
        "with_events_delivered": _sum(delivered),
    }

    def run(columns: dict[str, ColumnElement[Any]], source: Any) -> dict[tuple[Any, ...], dict[str, int]]:
        query = select(*groups, *(c.label(name) for name, c in columns.items())).select_from(source)
        query = query.where(in_scope)
        if groups:
            query = query.group_by(*groups)
        return {
            tuple(row[g.name] for g in groups): {name: _one(row[name]) for name in columns}
            for row in conn.execute(query).mappings()
        }

    by_status = run(plain, joined)
    by_flags = run(flagged, joined.join(flags, f.delivery_id == D.c.id))
    zero = dict.fromkeys(flagged, 0)
    for key in sorted(by_status, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        values = by_status[key] | by_flags.get(key, zero)
        if not groups and not values["snapshotted"]:
            continue
        bounced_count = values["hard_bounced"] + values["soft_bounced"]
        # Delivered messages without any event are trackable too (no Apple proxy fetched them).
        eventless = values["accepted"] - bounced_count - values.pop("with_events_delivered")
        values["trackable"] = values.pop("eventless_trackable") + eventless
        values["attempted"] = values["snapshotted"] - values.pop("not_attempted")
        yield key, values


def reach(conn: Connection, scope: Scope) -> tuple[int, int]:
    """(contacts delivered to, contacts among them with a human open or click) in SCOPE, each once."""
    return reach_by(conn, scope).get((), (0, 0))


def reach_by(
    conn: Connection, scope: Scope, groups: Sequence[ColumnElement[Any]] = ()
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """(reached, engaged) contacts per group of SCOPE's deliveries (a department, say), each contact once
    per group.

    Bounced deliveries are marked failed, so a delivered one is a sent one; the engaged count joins
    human events to their deliveries directly, without folding every delivery's events first.
    """
    delivered = and_(
        D.c.run_id.in_(scope.runs()),
        D.c.seed == false(),
        D.c.status == DeliveryStatus.sent,
        D.c.sent_at.is_not(None),
    )
    joined = D.join(R, R.c.id == D.c.run_id)
    reached_query = select(*groups, func.count(distinct(D.c.contact_id))).select_from(joined).where(delivered)
    human = and_(E.c.kind.in_([EventKind.open, EventKind.click]), E.c.machine == false())
    engaged_query = (
        select(*groups, func.count(distinct(D.c.contact_id)))
        .select_from(E.join(joined, D.c.id == E.c.delivery_id))
        .where(delivered, human)
    )
    if groups:
        reached_query, engaged_query = reached_query.group_by(*groups), engaged_query.group_by(*groups)
    width = len(groups)
    engaged = {tuple(row[:width]): int(row[width]) for row in conn.execute(engaged_query)}
    return {
        tuple(row[:width]): (int(row[width]), engaged.get(tuple(row[:width]), 0))
        for row in conn.execute(reached_query)
        if groups or row[width]
    }


def seeds(conn: Connection, scope: Scope) -> int:
    """Seed deliveries of SCOPE: sent like any other, counted in no rate."""
    query = select(func.count()).where(D.c.run_id.in_(scope.runs()), D.c.seed.is_(True))
    return int(conn.execute(query).scalar_one())


def runs_in(conn: Connection, scope: Scope) -> list[Run]:
    rows = conn.execute(select(R).where(R.c.id.in_(scope.runs())).order_by(R.c.started_at, R.c.id)).mappings()
    return [Run.model_validate(dict(row)) for row in rows]


def run_starts(conn: Connection) -> list[datetime]:
    """When the runs started (UTC), oldest first: the periods that have anything to report."""
    found = conn.execute(select(R.c.started_at).where(R.c.started_at.is_not(None)).order_by(R.c.started_at))
    return [_aware(moment) for (moment,) in found]


def _delivered_in_run(run_id: int) -> ColumnElement[bool]:
    return and_(
        D.c.run_id == run_id, D.c.seed == false(), D.c.sent_at.is_not(None), D.c.status == DeliveryStatus.sent
    )


def link_clickers(conn: Connection, run_id: int) -> dict[int, tuple[int, int]]:
    """link index -> (human clickers, raw clickers) of RUN_ID's delivered, non-seed messages."""
    human = case((E.c.machine == false(), E.c.delivery_id))
    query = (
        select(E.c.link_index, func.count(distinct(human)), func.count(distinct(E.c.delivery_id)))
        .select_from(E.join(D, D.c.id == E.c.delivery_id))
        .where(E.c.kind == EventKind.click, _delivered_in_run(run_id))
        .group_by(E.c.link_index)
    )
    return {int(index): (int(h), int(r)) for index, h, r in conn.execute(query) if index is not None}


def reasons(conn: Connection, run_id: int) -> dict[tuple[str, bool], dict[str, int]]:
    """(kind, machine) -> reason -> deliveries of RUN_ID (non-seed) with such an event."""
    query = (
        select(E.c.kind, E.c.machine, E.c.reason, func.count(distinct(E.c.delivery_id)))
        .select_from(E.join(D, D.c.id == E.c.delivery_id))
        .where(D.c.run_id == run_id, D.c.seed == false())
        .group_by(E.c.kind, E.c.machine, E.c.reason)
    )
    out: dict[tuple[str, bool], dict[str, int]] = {}
    for kind, machine, reason, count in conn.execute(query):
        out.setdefault((str(kind), bool(machine)), {})[reason or ""] = int(count)
    return out


def rejections(conn: Connection, run_id: int) -> dict[str, int]:
    """SMTP reply class (5xx, 4xx...) -> deliveries of RUN_ID that failed without being accepted."""
    klass = func.coalesce(D.c.last_code // 100, 0)  # floor division on both backends
    query = (
        select(klass, func.count())
        .where(
            D.c.run_id == run_id,
            D.c.seed == false(),
            D.c.status == DeliveryStatus.failed,
            D.c.sent_at.is_(None),
        )
        .group_by(klass)
    )
    return {f"{int(k)}xx" if k else "no reply": int(n) for k, n in conn.execute(query)}


def first_human_clicks(conn: Connection, run_id: int) -> list[tuple[datetime, datetime]]:
    """(sent_at, first human click) per delivered, non-seed clicker of RUN_ID."""
    first = func.min(E.c.created_at)
    query = (
        select(D.c.sent_at, first)
        .select_from(E.join(D, D.c.id == E.c.delivery_id))
        .where(E.c.kind == EventKind.click, E.c.machine == false(), _delivered_in_run(run_id))
        .group_by(D.c.id, D.c.sent_at)
    )
    return [(_aware(sent), _aware(clicked)) for sent, clicked in conn.execute(query)]


def people(conn: Connection, run_id: int) -> Iterator[dict[str, Any]]:
    """One row per delivery of RUN_ID: address, department and what that person did (individual mode)."""
    flags = _folded(select(D.c.id).where(D.c.run_id == run_id))
    f = flags.c
    query = (
        select(
            D.c.email,
            D.c.department,
            D.c.status,
            func.coalesce(or_(f.human_open == 1, f.human_click == 1), False).label("opened"),
            func.coalesce(f.human_click == 1, False).label("clicked"),
            func.coalesce(f.unsubscribe == 1, False).label("unsubscribed"),
        )
        .select_from(D.outerjoin(flags, f.delivery_id == D.c.id))
        .where(D.c.run_id == run_id, D.c.seed == false())
        .order_by(D.c.id)
    )
    for row in conn.execute(query).mappings():
        yield {
            key: (bool(value) if key in ("opened", "clicked", "unsubscribed") else value)
            for key, value in row.items()
        }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
