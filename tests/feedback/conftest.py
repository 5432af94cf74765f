"""Tracking fixtures: a migrated database, settings with a token key, the server under uvicorn, and rows.

Rows (contact, list, run, delivery) are written directly through the models, so these tests do not
depend on the dispatcher; the run's HTML goes through pipeline.assembly.tracking exactly as a run start does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, select

from pipeline.assembly.personalize import Personalizer
from pipeline.assembly.tracking import rewrite_links
from pipeline.audience.contacts import normalize_email
from pipeline.feedback.server import create_app
from pipeline.feedback.serving import tracking_config
from pipeline.message.headers import message_id
from pipeline.message.urls import recipient_links, recipient_tracking
from pipeline.storage.engines import make_engine, session
from pipeline.storage.models import (
    Contact,
    Delivery,
    MailingList,
    Run,
    Subscription,
    utcnow,
)
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.types import Recipient, Rendered
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings, load_settings
from tests.conftest import upgraded
from tests.support.uvicorn_thread import UvicornThread

SECRET = "test-secret-key-for-tokens-32-bytes+"
OLD_SECRET = "an-older-key-still-verifying-32-bytes+"

CAMPAIGN_HTML = """<!doctype html><html><body>
<p>Hi {{ contact.first_name | default("there") }}, from {{ contact.company | default("you") }}</p>
<a href="https://shop.example/kf9?x=1&amp;y=2">Shop</a>
<a href="https://shop.example/quote?ref={{ contact.attributes.code | urlencode }}">Quote</a>
<a href="mailto:hello@example.com">Mail us</a>
<a href="{{ unsubscribe_url }}">Unsubscribe</a> <a href="{{ preferences_url }}">Preferences</a>
<a href="{{ view_online_url }}">View online</a>
</body></html>
"""


@pytest.fixture
def settings(workspace_dir: Path, database_url: str) -> Settings:
    env = {"COMMS_SECRET": f"{SECRET},{OLD_SECRET}", "COMMS_DATABASE_URL": database_url}
    return load_settings(workspace_dir, env)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    upgraded(settings.database.url)
    engine = make_engine(settings.database.url)
    yield engine
    engine.dispose()


class ServerThread(UvicornThread):
    """uvicorn serving the app on a free loopback port in a background thread, set up as `comms serve`."""

    def __init__(self, app: Any, settings: Settings) -> None:
        # Trusting X-Forwarded-For from loopback lets a test speak as a proxy at another address.
        config = tracking_config(
            app, settings, host="127.0.0.1", port=0, log_level="warning", forwarded_allow_ips="127.0.0.1"
        )
        super().__init__(uvicorn.Server(config))


@pytest.fixture
def base_url(settings: Settings, engine: Engine, workspace_dir: Path) -> Iterator[str]:
    """The running server's URL; settings.tracking.base_url points at it, so minted links work."""
    settings.signup.lists = ["news"]
    workspace = Workspace.with_settings(workspace_dir, settings)
    with ServerThread(create_app(settings, engine, workspace=workspace), settings) as url:
        settings.tracking.base_url = url
        yield url


@dataclass
class Sent:
    """One delivery made for a test, with what its message would have contained."""

    delivery_id: int
    run_id: int
    contact_id: int
    email: str
    message_id: str
    links: tuple[str, ...]
    rendered: Rendered


@dataclass
class World:
    settings: Settings
    engine: Engine

    def add_contact(
        self,
        email: str,
        *,
        first_name: str | None = "Ada",
        lists: tuple[str, ...] = ("news",),
        **attributes: Any,
    ) -> int:
        with session(self.engine) as db:
            address, key = normalize_email(email)
            contact = Contact(email=address, email_key=key, first_name=first_name, attributes=attributes)
            db.add(contact)
            db.flush()
            for name in lists:
                found = db.scalars(select(MailingList).where(MailingList.name == name)).first()
                if found is None:
                    found = MailingList(name=name, description=f"The {name} list")
                    db.add(found)
                    db.flush()
                db.add(Subscription(contact_id=contact.id, list_id=found.id))
            assert contact.id is not None
            return contact.id

    def send(
        self,
        contact_id: int,
        *,
        html: str = CAMPAIGN_HTML,
        track: bool = True,
        honeypot: bool = False,
    ) -> Sent:
        """A finished run of one delivery to CONTACT_ID, its HTML tracked as a run start does
        (with the hidden honeypot link when HONEYPOT)."""
        tracked = rewrite_links(
            html,
            utm={},
            track=track,
            own_base_url=self.settings.tracking.base_url,
            honeypot_url=self.settings.brand.website if honeypot else None,
        )
        with session(self.engine) as db:
            contact = db.get(Contact, contact_id)
            assert contact is not None
            run = Run(
                campaign="spring",
                audience="news",
                status=RunStatus.finished,
                subject_template="Hello {{ contact.first_name }}",
                html_template=tracked.html,
                text_template="Hi {{ contact.first_name }}",
                meta={"links": list(tracked.links), "honeypot": tracked.honeypot},
                recipient_count=1,
            )
            db.add(run)
            db.flush()
            assert run.id is not None
            mid = message_id(run.id, contact_id, "example.com")
            delivery = Delivery(
                run_id=run.id,
                contact_id=contact_id,
                email=contact.email,
                status=DeliveryStatus.sent,
                attempts=1,
                message_id=mid,
                sent_at=utcnow() - timedelta(minutes=5),  # long enough ago that a click is a person's
            )
            db.add(delivery)
            db.flush()
            assert delivery.id is not None
            rendered = Personalizer(run.templates).render(
                Recipient.of(contact),
                recipient_links(self.settings, delivery.id),
                recipient_tracking(self.settings, delivery.id),
            )
            return Sent(delivery.id, run.id, contact_id, contact.email, mid, tracked.links, rendered)


@pytest.fixture
def world(settings: Settings, engine: Engine) -> World:
    return World(settings, engine)
