"""Report fixtures: a run snapshotted from real contacts (grouping attributes frozen by the real
snapshot), its messages rendered as a run renders them, and the tracking server under uvicorn."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from pipeline.assembly.personalize import Personalizer
from pipeline.assembly.tracking import rewrite_links
from pipeline.audience.contacts import normalize_email
from pipeline.audience.segments import Audience, snapshot_query
from pipeline.message.headers import message_id
from pipeline.message.urls import recipient_links, recipient_tracking
from pipeline.storage import outbox
from pipeline.storage.engines import session
from pipeline.storage.models import (
    Contact,
    Delivery,
    DeliveryStatus,
    MailingList,
    Run,
    RunStatus,
    Subscription,
    utcnow,
)
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
