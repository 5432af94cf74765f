"""`comms send` of an A/B test killed (SIGKILL) in the test phase, resumed, then decided: every contact
keeps the variant frozen for them, and nobody gets two different messages."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Run
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from tests.experiments.conftest import (
    CAMPAIGN,
    OFFER_SUBJECT,
    QUESTION_SUBJECT,
    add_customers,
    messages,
    small_test,
    variants,
)
from tests.support.cli import comms_bytes, start_comms
from tests.support.smtp_server import SmtpServer, message_ids_by_recipient
from tests.support.workspace import SECRET, configure, smtp_sections

ENV = {"COMMS_SECRET": SECRET}


def test_killed_in_the_test_phase_resumed_and_decided_keeps_variants_and_sends_nobody_twice(
    ws_root: Path, engine: Engine, smtp: SmtpServer
) -> None:
    workspace_dir = ws_root
    configure(workspace_dir, smtp_sections(smtp.port, connections=4, batch_size=20))
    small_test(workspace_dir)
    emails = add_customers(workspace_dir, engine, 160)

    smtp.hold_after = 30  # mid test phase, however fast or slow the machine is
    process = start_comms("send", CAMPAIGN, "--yes", cwd=workspace_dir, env=ENV)
    smtp.wait_for(30, timeout_s=120)
    process.kill()
    process.wait(timeout=30)
    smtp.release()
    with session(engine) as db:
        (run,) = db.scalars(select(Run)).all()
        in_flight = db.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.sending)).all()
    assert run.status == RunStatus.sending and in_flight  # killed with claims under a lease
    before = {email: variant for email, (variant, _) in variants(engine, run.id).items()}
    assert sum(1 for v in before.values() if v) == 80 and sum(1 for v in before.values() if not v) == 80

    resumed = comms_bytes("runs", "resume", str(run.id), cwd=workspace_dir, env=ENV, timeout=300)

    assert resumed.returncode == 0, resumed.stderr.decode()
    assert b"80 held until the decision" in resumed.stdout
    after = variants(engine, run.id)
    assert {email: variant for email, (variant, _) in after.items()} == before  # nobody changed arm
    arms = {email for email, variant in before.items() if variant}
    assert set(messages(smtp)) == arms  # only the arms so far

    decided = comms_bytes("ab", "decide", str(run.id), cwd=workspace_dir, env=ENV, timeout=300)

    assert decided.returncode == 0, decided.stderr.decode()
    received = message_ids_by_recipient(smtp)
    assert set(received) == set(emails)
    assert all(len(set(ids)) == 1 for ids in received.values())  # any second copy has the same Message-ID
    final = variants(engine, run.id)
    subjects = {"offer": OFFER_SUBJECT, "question": QUESTION_SUBJECT}
    for email, got in messages(smtp).items():
        variant, status = final[email]
        assert status == DeliveryStatus.sent
        if before[email]:
            assert variant == before[email]
        assert all(subjects[variant] in str(message["Subject"]) for message in got), email
    with session(engine) as db:
        assert db.get(Run, run.id).status == RunStatus.finished  # type: ignore[union-attr]
