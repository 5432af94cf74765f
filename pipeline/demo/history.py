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
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select

from pipeline.errors import CommsError
from pipeline.reports.executive import DEMO
from pipeline.reports.periods import Period, previous
from pipeline.storage.models import Contact, Delivery, DeliveryStatus, Event, EventKind, Run, RunStatus

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
LINKS = ["https://kestrelforge.example/", "https://kestrelforge.example/news", "https://kestrelforge.example/kf9"]
_HTML = '<html><body><a href="{{ tracking.click_url(0) }}">Kestrel Forge</a><img src="{{ tracking.open_url }}"></body></html>'


class DemoError(CommsError):
    pass


@dataclass(frozen=True)
class Seeded:
    periods: list[str]
    contacts: int
    runs: int
    deliveries: int
    events: int


def _contacts(conn: Connection, rng: random.Random, customers: int, staff: int) -> list[tuple[int, str, str]]:
    """(contact id, email, department) of the demo contacts, created once."""
    people = [(f"customer-{i:04d}@{DOMAIN}", "") for i in range(customers)]
    people += [(f"staff-{i:04d}@{DOMAIN}", STAFF[rng.randrange(len(STAFF))]) for i in range(staff)]
    rows = [
        {
            "email": email,
            "email_key": email,
            "attributes": {"demo": True, "department": department} if department else {"demo": True},
        }
        for email, department in people
    ]
    conn.execute(insert(Contact), rows)
    ids = dict(conn.execute(select(Contact.id, Contact.email).where(Contact.email.like(f"%@{DOMAIN}"))).all())  # type: ignore[attr-defined]
    by_email = {email: contact_id for contact_id, email in ids.items()}
    return [(by_email[email], email, department) for email, department in people]


def remove_history(engine: Engine) -> int:
    """Delete every demo run (with its deliveries and events) and the demo contacts; runs removed."""
    with engine.begin() as conn:
        runs = [r for (r,) in conn.execute(select(Run.id).where(Run.started_by == DEMO))]
        deliveries = select(Delivery.id).where(Delivery.run_id.in_(runs))  # type: ignore[union-attr]
        conn.execute(delete(Event).where(Event.delivery_id.in_(deliveries)))  # type: ignore[union-attr]
        conn.execute(delete(Delivery).where(Delivery.run_id.in_(runs)))  # type: ignore[union-attr]
        conn.execute(delete(Run).where(Run.id.in_(runs)))  # type: ignore[union-attr]
        conn.execute(delete(Contact).where(Contact.email.like(f"%@{DOMAIN}")))  # type: ignore[attr-defined]
    return len(runs)


def seed_history(
    engine: Engine, until: Period, *, periods: int = 6, customers: int = 420, staff: int = 180, seed: int = 13
) -> Seeded:
    """PERIODS quarters (or months) of demo runs ending with UNTIL; DemoError when already seeded."""
    with engine.connect() as conn:
        already = conn.execute(select(func.count()).where(Run.started_by == DEMO)).scalar_one()
    if already:
        raise DemoError(f"the database already holds {already} demo runs: `comms demo seed-history --remove` first")
    rng = random.Random(seed)
    chosen = [until]
    for _ in range(periods - 1):
        chosen.append(previous(chosen[-1]))
    chosen.reverse()
    runs = deliveries = events = 0
    with engine.begin() as conn:  # all of it or nothing
        contacts = _contacts(conn, rng, customers, staff)
        for age, period in enumerate(chosen):
            drift = 1 + 0.06 * (age - periods / 2) + rng.uniform(-0.05, 0.05)
            span_days = max((period.end - period.start).days - 7, 1)
            for name, department, audience, per_period, click, unsubscribe in CAMPAIGNS:
                people = [c for c in contacts if (c[2] == "") == (audience == "customers")]
                for _ in range(per_period):
                    started = period.start + timedelta(days=rng.randrange(span_days), hours=8 + rng.randrange(4))
                    d, e = _run(conn, rng, name, department, audience, started, people, click * drift, unsubscribe)
                    runs, deliveries, events = runs + 1, deliveries + d, events + e
    return Seeded([p.label for p in chosen], len(contacts), runs, deliveries, events)


def _run(
    conn: Connection,
    rng: random.Random,
    campaign: str,
    department: str,
    audience: str,
    started: Any,
    people: list[tuple[int, str, str]],
    click: float,
    unsubscribe: float,
) -> tuple[int, int]:
    run_id = conn.execute(
        insert(Run).values(
            campaign=campaign,
            department=department,
            audience=audience,
            status=RunStatus.finished,
            started_by=DEMO,
            subject_template=f"[demo] {campaign}",
            html_template=_HTML,
            text_template="demo",
            meta={"links": LINKS, "tracking": True, "demo": True},
            recipient_count=len(people),
            created_at=started,
            started_at=started,
            finished_at=started + timedelta(hours=1),
        )
    ).inserted_primary_key[0]
    rows = []
    for contact_id, email, recipient_department in people:
        bounced = rng.random() < 0.012
        rows.append(
            {
                "run_id": run_id,
                "contact_id": contact_id,
                "email": email,
                "status": DeliveryStatus.failed if bounced else DeliveryStatus.sent,
                "attempts": 1,
                "message_id": f"<demo-{run_id}-{contact_id}@{DOMAIN}>",
                "first_attempt_at": started,
                "sent_at": started + timedelta(seconds=rng.randrange(600)),
                "department": recipient_department,
                "domain": DOMAIN,
                "last_code": 250,
            }
        )
    conn.execute(insert(Delivery), rows)
    delivered = conn.execute(
        select(Delivery.id, Delivery.sent_at, Delivery.status).where(Delivery.run_id == run_id).order_by(Delivery.id)  # type: ignore[arg-type]
    ).all()
    found: list[dict[str, Any]] = []
    for delivery_id, sent_at, status in delivered:
        found += _events(rng, delivery_id, sent_at, status == DeliveryStatus.failed, click, unsubscribe)
    if found:
        conn.execute(insert(Event), found)
    return len(rows), len(found)


def _events(
    rng: random.Random, delivery_id: int, sent_at: Any, bounced: bool, click: float, unsubscribe: float
) -> list[dict[str, Any]]:
    def event(kind: EventKind, after_s: float, **values: Any) -> dict[str, Any]:
        # Every row has every column: one executemany takes rows of one shape.
        row = {"url": None, "link_index": None, "machine": False, "reason": "", "detail": {}}
        return row | {"delivery_id": delivery_id, "kind": kind, "created_at": sent_at + timedelta(seconds=after_s)} | values

    if bounced:
        return [event(EventKind.bounce, 120, reason="hard")]
    out = []
    if rng.random() < 0.25:  # Apple Mail Privacy Protection fetches the pixel at delivery
        out.append(event(EventKind.open, 60, machine=True, reason="apple-privacy-proxy"))
    clicked = rng.random() < click
    if clicked or rng.random() < 0.3:
        out.append(event(EventKind.open, rng.expovariate(1 / 7200)))
    if clicked:
        link = rng.randrange(len(LINKS))
        out.append(event(EventKind.click, rng.expovariate(1 / 10800), url=LINKS[link], link_index=link))
    if rng.random() < 0.01:  # a link scanner
        out.append(event(EventKind.click, 5, url=LINKS[0], link_index=0, machine=True, reason="scanner-ua"))
    if rng.random() < unsubscribe:
        out.append(event(EventKind.unsubscribe, rng.expovariate(1 / 20000), reason="one-click"))
    if rng.random() < 0.0008:
        out.append(event(EventKind.complaint, 3600, reason="abuse"))
    return out
