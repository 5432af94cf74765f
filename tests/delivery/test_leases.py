"""Leases: a live worker keeps what it claimed however long the pace makes it wait, and wherever it runs."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pipeline.delivery import engine as dispatch
from pipeline.runs import start
from pipeline.runs.dispatch import dispatch_run
from pipeline.storage import outbox
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, utcnow
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from tests.delivery.conftest import send_campaign
from tests.support.workspace import CAMPAIGN, configure, open_ws, smtp_sections


def test_a_slow_domain_outlasting_the_lease_still_gets_one_copy_each(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    # Twelve recipients at one domain, paced at 4 a second, wait up to 3 s in the queue: three
    # times the 1 s lease. A lease that is not kept alive expires under the waiting deliveries,
    # the worker claims them again and sends them twice.
    emails = add_contacts(12, domain="slow.example")
    sections = smtp_sections(smtp.port, connections=2, batch_size=50, lease_s=1)
    sections["rate"] = "per_second = 1000\nper_domain_per_second = 4"
    ws, run, report = send_campaign(ws_root, sections)

    assert report.run.status == RunStatus.finished
    assert report.counts[DeliveryStatus.sent] == 12
    received = Counter(rcpt for message in smtp.messages for rcpt in message.rcpt_tos)
    assert received == Counter({email: 1 for email in emails})


def _lease_one(engine: Engine, run_id: int, worker: str, lease_s: float) -> int:
    with engine.begin() as conn:
        (claimed,) = outbox.claim_batch(
            conn, worker=worker, limit=1, lease_s=lease_s, now=utcnow(), run_id=run_id
        )
    return claimed.delivery_id


def test_a_live_lease_of_another_machine_with_the_same_hostname_is_never_taken(
    ws_root: Path, engine: Engine, add_contacts, smtp, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    # Two machines cloned from one image share a hostname and (in the root PID namespace) the
    # namespace's inode: a pid that does not exist here says nothing about a worker over there.
    emails = add_contacts(10)
    configure(ws_root, smtp_sections(smtp.port))
    ws = open_ws(ws_root)
    run = start.start_run(ws, CAMPAIGN, started_by="test")
    with monkeypatch.context() as other_machine:
        other_machine.setattr(dispatch, "_boot_id", lambda: "0123456789ab")
        elsewhere = dispatch.worker_name()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_here = f"{dispatch.worker_name().partition(':')[0]}:{gone.stdout.strip()}:00000000"
    assert elsewhere.partition(":")[0] != dead_here.partition(":")[0]
    lease_s = 2.0
    theirs = _lease_one(engine, run.id, elsewhere, lease_s)
    lease_ran_out = utcnow() + timedelta(seconds=lease_s)
    abandoned = _lease_one(engine, run.id, dead_here, 300)

    with caplog.at_level(logging.WARNING, logger="comms.dispatch"):
        report = dispatch_run(ws, run.id)

    assert report.run.status == RunStatus.finished
    assert f"requeued 1 deliveries left in flight by {dead_here}" in caplog.text
    assert elsewhere not in caplog.text
    with session(engine) as db:
        sent_at = {d.id: d.sent_at for d in db.exec(select(Delivery)).scalars()}
    assert sent_at[abandoned] is not None
    assert outbox.aware(sent_at[theirs]) >= lease_ran_out  # only once the other machine's lease ran out
    received = Counter(rcpt for message in smtp.messages for rcpt in message.rcpt_tos)
    assert received == Counter({email: 1 for email in emails})
