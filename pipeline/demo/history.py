"""`comms demo seed-history`: quarters of synthetic runs, deliveries and events for the sample workspace.

Deterministic (a seeded random generator and fixed times), so the README's report and its
screenshot can be rebuilt to the same bytes. The figures are plausible, not real: a few hundred
contacts at demo.example (staff with departments, customers without), each campaign of the
sample once or twice a quarter, opens, Apple-proxy opens, clicks, scanner clicks, unsubscribes,
complaints and bounces in proportions that drift a little from quarter to quarter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select

from pipeline.errors import CommsError
from pipeline.reports.executive import DEMO
from pipeline.reports.periods import Period, previous
from pipeline.storage.models import Contact, Delivery, Event, EventKind, Run
from pipeline.storage.statuses import DeliveryStatus, RunStatus

# The tables themselves: Core statements over them type-check (SQLModel's columns read as values).
C = Contact.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
E = Event.__table__  # type: ignore[attr-defined]
R = Run.__table__  # type: ignore[attr-defined]

DOMAIN = "demo.example"
STAFF = ("executive", "finance", "production", "sales", "engineering")
# (campaign, sending department, audience, runs per quarter, base human click rate, unsubscribe rate)
CAMPAIGNS = (
    ("spring-launch", "sales", "customers", 2, 0.055, 0.004),
    ("billing-portal", "finance", "customers", 1, 0.035, 0.006),
    ("q3-results", "finance", "staff", 1, 0.09, 0.0),
    ("plant-safety-update", "production", "staff", 2, 0.12, 0.0),
    ("kf9-webinar", "marketing", "customers", 1, 0.025, 0.009),
)
LINKS = [
    "https://kestrelforge.example/",
    "https://kestrelforge.example/news",
    "https://kestrelforge.example/kf9",
]
_HTML = (
    '<html><body><a href="{{ tracking[0] }}">Kestrel Forge</a>'
    '<img src="{{ tracking.open_url }}"></body></html>'
)


class DemoError(CommsError):
    pass


@dataclass(frozen=True)
class Seeded:
    periods: list[str]
    contacts: int
    runs: int
    deliveries: int
    events: int


@dataclass(frozen=True)
class Recipient:
    """A demo contact as the database has it."""

    contact_id: int
    email: str
    department: str  # "" for a customer


@dataclass(frozen=True)
class Outcome:
    """What one delivery of a demo run did; the delays are seconds after it was accepted."""

    recipient: Recipient
    bounced: bool = False
    apple_proxy: bool = False  # Apple Mail Privacy Protection fetched the pixel
    open_after_s: float | None = None  # a human open
    click_after_s: float | None = None  # a human click (on link 0 unless LINK)
    link: int = 0
    scanner: bool = False  # a link scanner's click
    unsubscribe_after_s: float | None = None
    complained: bool = False


def add_contacts(conn: Connection, people: list[tuple[str, str]]) -> list[Recipient]:
    """Contacts (email, department; "" for none) marked as demo, as Recipients in the given order."""
    rows = [
        {
            "email": email,
            "email_key": email,
            "attributes": {"demo": True, "department": department} if department else {"demo": True},
        }
        for email, department in people
    ]
    conn.execute(insert(C), rows)
    wanted = [email for email, _ in people]
    ids = {email: key for email, key in conn.execute(select(C.c.email, C.c.id).where(C.c.email.in_(wanted)))}
    return [Recipient(ids[email], email, department) for email, department in people]


def remove_history(engine: Engine) -> int:
    """Delete every demo run (with its deliveries and events) and the demo contacts; runs removed."""
    with engine.begin() as conn:
        runs = [r for (r,) in conn.execute(select(R.c.id).where(R.c.started_by == DEMO))]
        deliveries = select(D.c.id).where(D.c.run_id.in_(runs))
        conn.execute(delete(E).where(E.c.delivery_id.in_(deliveries)))
        conn.execute(delete(D).where(D.c.run_id.in_(runs)))
        conn.execute(delete(R).where(R.c.id.in_(runs)))
        conn.execute(delete(C).where(C.c.email.like(f"%@{DOMAIN}")))
    return len(runs)


def seed_history(
    engine: Engine, until: Period, *, periods: int = 6, customers: int = 420, staff: int = 180, seed: int = 13
) -> Seeded:
    """PERIODS quarters (or months) of demo runs ending with UNTIL; DemoError when already seeded."""
    with engine.connect() as conn:
        already = conn.execute(select(func.count()).where(R.c.started_by == DEMO)).scalar_one()
    if already:
        raise DemoError(
            f"the database already holds {already} demo runs: `comms demo seed-history --remove` first"
        )
    rng = random.Random(seed)
    chosen = [until]
    for _ in range(periods - 1):
        chosen.append(previous(chosen[-1]))
    chosen.reverse()
    runs = deliveries = events = 0
    with engine.begin() as conn:  # all of it or nothing
        people = [(f"customer-{i:04d}@{DOMAIN}", "") for i in range(customers)]
        people += [(f"staff-{i:04d}@{DOMAIN}", STAFF[rng.randrange(len(STAFF))]) for i in range(staff)]
        contacts = add_contacts(conn, people)
        for age, period in enumerate(chosen):
            drift = 1 + 0.06 * (age - periods / 2) + rng.uniform(-0.05, 0.05)
            span_days = max((period.end - period.start).days - 7, 1)
            for name, department, audience, per_period, click, unsubscribe in CAMPAIGNS:
                chosen_people = [c for c in contacts if (c.department == "") == (audience == "customers")]
                for _ in range(per_period):
                    started = period.start + timedelta(
                        days=rng.randrange(span_days), hours=8 + rng.randrange(4)
                    )
                    outcomes = [_outcome(rng, person, click * drift, unsubscribe) for person in chosen_people]
                    d, e = insert_run(conn, name, department, audience, started, outcomes)
                    runs, deliveries, events = runs + 1, deliveries + d, events + e
    return Seeded([p.label for p in chosen], len(contacts), runs, deliveries, events)


def _outcome(rng: random.Random, person: Recipient, click: float, unsubscribe: float) -> Outcome:
    clicked = rng.random() < click
    opened = clicked or rng.random() < 0.3
    return Outcome(
        person,
        bounced=rng.random() < 0.012,
        apple_proxy=rng.random() < 0.25,
        open_after_s=rng.expovariate(1 / 7200) if opened else None,
        click_after_s=rng.expovariate(1 / 10800) if clicked else None,
        link=rng.randrange(len(LINKS)),
        scanner=rng.random() < 0.01,
        unsubscribe_after_s=rng.expovariate(1 / 20000) if rng.random() < unsubscribe else None,
        complained=rng.random() < 0.0008,
    )


def insert_run(
    conn: Connection,
    campaign: str,
    department: str,
    audience: str,
    started: datetime,
    outcomes: list[Outcome],
) -> tuple[int, int]:
    """A finished, tracked demo run started at STARTED, one delivery per OUTCOME, with its events;
    (deliveries, events) written."""
    run_id = conn.execute(
        insert(R).values(
            campaign=campaign,
            department=department,
            audience=audience,
            status=RunStatus.finished,
            started_by=DEMO,
            subject_template=f"[demo] {campaign}",
            html_template=_HTML,
            text_template="demo",
            meta={"links": LINKS, "tracking": True, "demo": True},
            recipient_count=len(outcomes),
            created_at=started,
            started_at=started,
            finished_at=started + timedelta(hours=1),
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    rows = [
        {
            "run_id": run_id,
            "contact_id": o.recipient.contact_id,
            "email": o.recipient.email,
            "status": DeliveryStatus.failed if o.bounced else DeliveryStatus.sent,
            "attempts": 1,
            "message_id": f"<demo-{run_id}-{o.recipient.contact_id}@{DOMAIN}>",
            "first_attempt_at": started,
            "sent_at": started,
            "department": o.recipient.department,
            "domain": DOMAIN,
            "last_code": 250,
        }
        for o in outcomes
    ]
    conn.execute(insert(D), rows)
    ids = {
        contact: key
        for contact, key in conn.execute(select(D.c.contact_id, D.c.id).where(D.c.run_id == run_id))
    }
    found = [e for o in outcomes for e in _events(ids[o.recipient.contact_id], started, o)]
    if found:
        conn.execute(insert(E), found)
    return len(rows), len(found)


def _events(delivery_id: int, sent_at: datetime, o: Outcome) -> list[dict[str, Any]]:
    def event(kind: EventKind, after_s: float, **values: Any) -> dict[str, Any]:
        # Every row has every column: one executemany takes rows of one shape.
        row: dict[str, Any] = {"url": None, "link_index": None, "machine": False, "reason": "", "detail": {}}
        return (
            row
            | {"delivery_id": delivery_id, "kind": kind, "created_at": sent_at + timedelta(seconds=after_s)}
            | values
        )

    if o.bounced:
        return [event(EventKind.bounce, 120, reason="hard")]
    out = []
    if o.apple_proxy:
        out.append(event(EventKind.open, 60, machine=True, reason="apple-privacy-proxy"))
    if o.open_after_s is not None:
        out.append(event(EventKind.open, o.open_after_s))
    if o.click_after_s is not None:
        out.append(event(EventKind.click, o.click_after_s, url=LINKS[o.link], link_index=o.link))
    if o.scanner:
        out.append(event(EventKind.click, 5, url=LINKS[0], link_index=0, machine=True, reason="scanner-ua"))
    if o.unsubscribe_after_s is not None:
        out.append(event(EventKind.unsubscribe, o.unsubscribe_after_s, reason="one-click"))
    if o.complained:
        out.append(event(EventKind.complaint, 3600, reason="abuse"))
    return out
