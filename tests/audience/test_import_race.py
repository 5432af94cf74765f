"""Two imports of the same address at once: the second skips what the first stored instead of failing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text

from pipeline.audience.importer import import_contacts
from pipeline.storage.engines import make_engine, session, upgrade
from pipeline.storage.models import Contact, MailingList, Subscription, email_hash, utcnow

# Long enough for any loaded machine; the test waits for an event, it does not time anything.
LOCK_WAIT_LIMIT_S = 60


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """PostgreSQL only: SQLite lets one writer in at a time, so an import there never races another."""
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def _wait_until_blocked(engine: Engine) -> None:
    """Return once some session of this database waits on a lock (the import, behind the other writer)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + LOCK_WAIT_LIMIT_S
    with engine.connect() as watcher:
        while not watcher.scalar(waiting):
            assert time.monotonic() < deadline, "the import never reached the contested address"
            time.sleep(0.05)
            watcher.rollback()  # a fresh snapshot of pg_stat_activity each time


def test_an_address_stored_by_a_concurrent_import_is_skipped(pg_engine: Engine, tmp_path: Path):
    path = tmp_path / "c.csv"
    path.write_text("email,first_name\nfirst@example.com,F\nrace@example.com,Mine\nlast@example.com,L\n")
    now = utcnow()
    with pg_engine.begin() as connection:
        list_id = connection.execute(
            insert(MailingList).values(name="news", description="", created_at=now).returning(MailingList.id)
        ).scalar_one()

    # Another import has stored race@ and subscribed it, and has not committed yet: ours looks
    # the address up, does not see it, and its insert then waits on the unique index.
    with pg_engine.connect() as other, ThreadPoolExecutor(max_workers=1) as pool:
        key = "race@example.com"
        contact_id = other.execute(
            insert(Contact)
            .values(email=key, email_key=key, email_hash=email_hash(key), first_name="Theirs", attributes={})
            .returning(Contact.id)
        ).scalar_one()
        other.execute(
            insert(Subscription).values(contact_id=contact_id, list_id=list_id, status="subscribed")
        )
        running = pool.submit(import_contacts, pg_engine, path, list_name="news")
        _wait_until_blocked(pg_engine)
        other.commit()
        summary = running.result()

    assert (summary.inserted, summary.unchanged, summary.rejected, summary.subscribed) == (2, 1, 0, 2)
    with session(pg_engine) as current:
        names = dict(current.execute(select(Contact.email, Contact.first_name)).all())
        subscribed = set(
            current.scalars(select(Contact.email).join(Subscription, Subscription.contact_id == Contact.id))
        )
    assert names == {"first@example.com": "F", "race@example.com": "Theirs", "last@example.com": "L"}
    assert subscribed == set(names)
