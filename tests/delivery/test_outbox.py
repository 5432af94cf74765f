"""The outbox: one delivery per recipient per run, claims under leases, several workers sharing it."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from pipeline.delivery.engine import run_worker
from pipeline.delivery.transports import SmtpTransport
from pipeline.runs import control, start
from pipeline.storage import outbox
from pipeline.storage.engines import make_engine, session
from pipeline.storage.models import Delivery, utcnow
from pipeline.storage.statuses import DeliveryStatus
from tests.support.workspace import CAMPAIGN, configure, open_ws, smtp_sections


def _claim(
    engine: Engine, worker: str, limit: int, *, lease_s: float = 300, now=None
) -> list[outbox.Claimed]:
    with engine.begin() as conn:
        return outbox.claim_batch(conn, worker=worker, limit=limit, lease_s=lease_s, now=now or utcnow())


def test_a_run_snapshots_one_delivery_per_recipient(ws_root: Path, engine: Engine, add_contacts) -> None:
    emails = add_contacts(50)
    run = start.start_run(open_ws(ws_root), CAMPAIGN, started_by="test")

    with session(engine) as db:
        deliveries = db.exec(select(Delivery).where(Delivery.run_id == run.id)).scalars().all()
    assert run.recipient_count == 50
    assert sorted(d.email for d in deliveries) == sorted(emails)
    assert {d.status for d in deliveries} == {DeliveryStatus.queued}
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(Delivery).values(run_id=run.id, contact_id=deliveries[0].contact_id))


def test_claims_lease_disjoint_batches_and_an_expired_lease_is_claimed_again(
    ws_root: Path, engine: Engine, add_contacts
) -> None:
    add_contacts(30)
    start.start_run(open_ws(ws_root), CAMPAIGN, started_by="test")

    first = _claim(engine, "worker-a", 20)
    second = _claim(engine, "worker-b", 20)
    assert (len(first), len(second)) == (20, 10)
    assert not {c.delivery_id for c in first} & {c.delivery_id for c in second}
    assert _claim(engine, "worker-c", 20) == []

    # worker-a dies; once its lease has run out its deliveries go to whoever claims next.
    later = utcnow() + timedelta(seconds=301)
    with engine.begin() as conn:
        assert outbox.release_expired_leases(conn, later) == 30
    again = _claim(engine, "worker-c", 50, now=later)
    assert {c.delivery_id for c in again} == {c.delivery_id for c in first + second}
    assert {c.attempts for c in again} == {2}

    # A late answer from the dead worker must not undo the new holder's work.
    late = outbox.Outcome(
        first[0].delivery_id, first[0].run_id, DeliveryStatus.failed, utcnow(), reply="late"
    )
    with engine.begin() as conn:
        outbox.record(conn, "worker-a", [late])
    with session(engine) as db:
        assert db.get(Delivery, first[0].delivery_id).status == DeliveryStatus.sending


def _postgresql_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers share an outbox on PostgreSQL only (SQLite runs one)")


def test_concurrent_claims_on_postgresql_never_share_a_delivery(
    ws_root: Path, engine: Engine, add_contacts
) -> None:
    _postgresql_only(engine)
    add_contacts(600)
    start.start_run(open_ws(ws_root), CAMPAIGN, started_by="test")
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        own = make_engine(str(engine.url.render_as_string(hide_password=False)))
        mine: list[int] = []
        barrier.wait()
        while batch := _claim(own, name, 25):
            mine += [c.delivery_id for c in batch]
        claimed[name] = mine
        own.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = Counter(i for ids in claimed.values() for i in ids)
    assert len(everything) == 600 and set(everything.values()) == {1}
    assert sum(1 for ids in claimed.values() if ids) > 1  # they really did share the work


def test_two_workers_on_postgresql_drain_one_run_without_duplicates(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    _postgresql_only(engine)
    add_contacts(400)
    configure(ws_root, smtp_sections(smtp.port, connections=2, batch_size=20))
    ws = open_ws(ws_root)
    run = start.start_run(ws, CAMPAIGN, started_by="test")

    def worker() -> None:
        async def go() -> None:
            async with SmtpTransport.from_settings(ws.settings) as transport:
                await run_worker(ws, engine, transport, run_id=run.id)

        asyncio.run(go())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    received = Counter(rcpt for message in smtp.messages for rcpt in message.rcpt_tos)
    assert len(received) == 400 and set(received.values()) == {1}
    with session(engine) as db:
        workers = {d.leased_by for d in db.exec(select(Delivery)).scalars()}
    assert control.show_run(ws, run.id).counts[DeliveryStatus.sent] == 400
    assert workers == {None}  # every lease cleared when its outcome was recorded
