"""Report fixtures: a run snapshotted from real contacts (grouping attributes frozen by the real
snapshot), its messages rendered as a run renders them, and the tracking server under uvicorn."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from pipeline.assembly.personalize import Personalizer
from pipeline.assembly.tracking import rewrite_links
from pipeline.audience.contacts import normalize_email
from pipeline.audience.segments import Audience, snapshot_query
from pipeline.demo.history import Outcome, add_contacts, insert_run
from pipeline.message.headers import message_id
from pipeline.message.urls import recipient_links, recipient_tracking
from pipeline.storage import outbox
from pipeline.storage.engines import session
from pipeline.storage.models import (
    Contact,
    Delivery,
    MailingList,
    Run,
    Subscription,
    utcnow,
)
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.types import Recipient
from tests.feedback.conftest import base_url, engine, settings

__all__ = ["base_url", "engine", "settings"]

HTML = """<!doctype html><html><body>
<a href="https://shop.example/a">A</a> <a href="https://shop.example/b">B</a>
<a href="https://shop.example/c">C</a> <a href="https://shop.example/d">D</a>
</body></html>"""


@dataclass
class Message:
    delivery_id: int
    email: str
    clicks: list[str]  # the message's click URLs, link order, the honeypot last
    pixel: str


def build_run(
    settings,
    engine: Engine,
    people: list[dict],
    *,
    campaign: str = "spring",
    started_at=None,
    list_name: str = "news",
) -> tuple[int, dict[str, Message]]:
    """A finished tracked run to PEOPLE (dicts of email and attributes), snapshotted by the real snapshot."""
    tracked = rewrite_links(
        HTML,
        utm={},
        track=True,
        own_base_url=settings.tracking.base_url,
        honeypot_url="https://kestrelforge.example/",
    )
    started = started_at or utcnow() - timedelta(hours=2)
    with session(engine) as db:
        found = db.scalars(select(MailingList).where(MailingList.name == list_name)).first()
        if found is None:
            found = MailingList(name=list_name)
            db.add(found)
            db.flush()
        for person in people:
            address, key = normalize_email(person["email"])
            if db.scalars(select(Contact).where(Contact.email_key == key)).first():
                continue
            contact = Contact(
                email=address,
                email_key=key,
                locale=person.get("locale"),
                attributes=person.get("attributes", {}),
            )
            db.add(contact)
            db.flush()
            db.add(Subscription(contact_id=contact.id, list_id=found.id))
        run = Run(
            campaign=campaign,
            department="marketing",
            audience="news",
            status=RunStatus.finished,
            subject_template="Spring {{ contact.first_name }}",
            html_template=tracked.html,
            text_template="Hi",
            meta={"links": list(tracked.links), "honeypot": tracked.honeypot, "tracking": True},
            started_at=started,
            created_at=started,
        )
        db.add(run)
        db.flush()
        run_id = run.id
    assert run_id is not None
    audience = Audience(list_name, Path(f"audiences/{list_name}.toml"), "", (list_name,))
    with engine.begin() as conn:
        outbox.snapshot_audience(conn, run_id, snapshot_query(audience, settings.reports), started)
    messages = {}
    with session(engine) as db:
        for delivery in db.scalars(select(Delivery).where(Delivery.run_id == run_id)):
            contact = db.get(Contact, delivery.contact_id)
            assert contact is not None and delivery.id is not None
            db.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id)
                .values(
                    status=DeliveryStatus.sent,
                    attempts=1,
                    sent_at=started,
                    message_id=message_id(run_id, contact.id, "example.com"),
                )
            )
            rendered = Personalizer(run.templates).render(
                Recipient.of(contact),
                recipient_links(settings, delivery.id),
                recipient_tracking(settings, delivery.id),
            )
            base = re.escape(settings.tracking.base_url)
            clicks = re.findall(rf'href="({base}/c/[^"]+)"', rendered.html)
            [pixel] = re.findall(r'<img src="([^"]+)"', rendered.html)
            messages[contact.email] = Message(delivery.id, contact.email, clicks, pixel)
    return run_id, messages


@pytest.fixture
def people_factory():
    return build_run


# -- two quarters for the exec report -------------------------------------------------------------

Q4 = datetime(2026, 11, 10, 9, tzinfo=UTC)
Q1 = datetime(2027, 2, 9, 9, tzinfo=UTC)
NOW = datetime(2027, 4, 2, tzinfo=UTC)


def seed_two_quarters(engine: Engine, legal: int = 0) -> None:
    """2026-Q4: campaign alpha (sales) to 60 sales and 40 finance staff, 10 clickers, 1 unsubscribe.
    2027-Q1: alpha again, 20 clickers and 2 unsubscribes; beta (finance) to the 40 finance staff,
    2 clickers. LEGAL more contacts of the legal department get beta too (none click)."""
    with engine.begin() as conn:
        people = add_contacts(
            conn,
            [(f"s{i}@corp.example", "sales") for i in range(60)]
            + [(f"f{i}@corp.example", "finance") for i in range(40)]
            + [(f"l{i}@corp.example", "legal") for i in range(legal)],
        )
        sales, finance, lawyers = people[:60], people[60:100], people[100:]

        def run(who, clickers, unsubscribers):  # type: ignore[no-untyped-def]
            return [
                Outcome(
                    p,
                    click_after_s=1800 if p.email in clickers else None,
                    unsubscribe_after_s=7200 if p.email in unsubscribers else None,
                )
                for p in who
            ]

        def names(prefix: str, count: int, first: int = 0) -> set[str]:
            return {f"{prefix}{i}@corp.example" for i in range(first, first + count)}

        insert_run(
            conn,
            "alpha",
            "sales",
            "staff",
            Q4,
            run(sales + finance, names("s", 6) | names("f", 4), names("s", 1, 59)),
        )
        insert_run(
            conn,
            "alpha",
            "sales",
            "staff",
            Q1,
            run(sales + finance, names("s", 15) | names("f", 5), names("s", 2, 58)),
        )
        insert_run(conn, "beta", "finance", "staff", Q1, run(finance + lawyers, names("f", 2, 5), set()))
