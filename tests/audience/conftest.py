"""Fixtures for the contacts area: a migrated database on each backend and a minimal workspace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from pipeline.storage.engines import make_engine, session
from pipeline.storage.models import Contact, MailingList, Subscription, SubscriptionStatus
from pipeline.workspace.folders import Workspace
from tests.conftest import upgraded

SETTINGS = """\
[sender]
from_name = "Test Sender"
from_email = "news@sender.example"
list_id_domain = "lists.sender.example"
unsubscribe_mailto = "unsubscribe@sender.example"

[database]
url = "{url}"

[brand]
company = "Test Ltd."
address = "1 Test Street"
logo_url = "https://sender.example/logo.png"
"""


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database upgraded to the current schema."""
    upgraded(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def workspace(tmp_path: Path, database_url: str) -> Workspace:
    """A workspace of our own (not the sample) whose comms.toml points at the test database."""
    root = tmp_path / "ws"
    (root / "audiences").mkdir(parents=True)
    (root / "comms.toml").write_text(SETTINGS.format(url=database_url), encoding="utf-8")
    return Workspace.open(root)


AddContact = Callable[..., Contact]


@pytest.fixture
def add_contact(engine: Engine) -> AddContact:
    """Store a contact subscribed (or not) to lists, creating the lists as needed."""

    def add(
        email: str,
        *,
        lists: dict[str, SubscriptionStatus] | tuple[str, ...] = ("customers",),
        **fields: Any,
    ) -> Contact:
        statuses = lists if isinstance(lists, dict) else dict.fromkeys(lists, SubscriptionStatus.subscribed)
        with session(engine) as current:
            contact = Contact(email=email, email_key=email.lower(), **fields)
            current.add(contact)
            current.flush()
            for name, status in statuses.items():
                found = current.scalars(select(MailingList).where(MailingList.name == name)).first()
                if found is None:
                    found = MailingList(name=name)
                    current.add(found)
                    current.flush()
                current.add(Subscription(contact_id=contact.id, list_id=found.id, status=status))
        return contact

    return add
