"""Outbox queries that must give the same answer on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine

from pipeline.storage import outbox
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Run
from pipeline.storage.statuses import DeliveryStatus, RunStatus


def test_reply_classes_are_the_hundreds_of_the_code(engine: Engine) -> None:
    with session(engine) as db:
        run = Run(campaign="c", audience="a", status=RunStatus.sending)
        db.add(run)
        db.flush()
        for code, status in (
            (250, "sent"),
            (451, "queued"),
            (452, "queued"),
            (550, "failed"),
            (599, "failed"),
        ):
            db.add(Delivery(run_id=run.id, email=f"{code}@example.com", status=status, last_code=code))
        db.add(Delivery(run_id=run.id, email="new@example.com", status=DeliveryStatus.queued))

    with engine.connect() as conn:
        assert outbox.reply_classes(conn) == {"2xx": 1, "4xx": 2, "5xx": 2}
