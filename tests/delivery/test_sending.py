"""Runs sent to a real SMTP server (aiosmtpd on 127.0.0.1) that accepts, defers, refuses, drops or is down."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, select

from pipeline.audience.contacts import suppress
from pipeline.runs import control, dispatch, start
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Suppression
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.types import SuppressionReason
from tests.delivery.conftest import send_campaign
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import CAMPAIGN, configure, open_ws, smtp_sections


def _deliveries(engine: Engine, run_id: int) -> dict[str, Delivery]:
    with session(engine) as db:
        return {d.email: d for d in db.exec(select(Delivery).where(Delivery.run_id == run_id)).scalars()}


def _received(server: SmtpServer) -> Counter[str]:
    return Counter(rcpt for message in server.messages for rcpt in message.rcpt_tos)


def test_every_recipient_receives_exactly_one_message(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    emails = add_contacts(1000)
    ws, run, report = send_campaign(ws_root, smtp_sections(smtp.port, connections=8, batch_size=200))

    assert report.run.status == RunStatus.finished
    assert report.counts[DeliveryStatus.sent] == 1000
    assert _received(smtp) == Counter({email: 1 for email in emails})
    deliveries = _deliveries(engine, run.id)
    sent_ids = {message.rcpt_tos[0]: message.data for message in smtp.messages}
    for email, delivery in deliveries.items():
        assert f"Message-ID: {delivery.message_id}".encode() in sent_ids[email]


def test_deferred_messages_are_all_delivered_on_retry(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    emails = add_contacts(60)
    smtp.defer_every = 3
    ws, run, report = send_campaign(ws_root, smtp_sections(smtp.port))

    assert report.run.status == RunStatus.finished
    assert _received(smtp) == Counter({email: 1 for email in emails})
    attempts = Counter(delivery.attempts for delivery in _deliveries(engine, run.id).values())
    assert attempts[2] == 20  # every third new message was deferred once, then taken
    assert report.counts[DeliveryStatus.sent] == 60


def test_unknown_mailbox_fails_that_delivery_only_and_suppresses_it(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    emails = add_contacts(30)
    gone = emails[7]
    smtp.refuse = {gone: "550 5.1.1 no such user"}
    ws, run, report = send_campaign(ws_root, smtp_sections(smtp.port))

    assert report.run.status == RunStatus.finished
    assert report.counts[DeliveryStatus.sent] == 29
    assert report.counts[DeliveryStatus.failed] == 1
    failed = _deliveries(engine, run.id)[gone]
    assert (failed.status, failed.last_code) == (DeliveryStatus.failed, 550)
    assert gone not in _received(smtp)
    with session(engine) as db:
        reasons = [s.reason for s in db.exec(select(Suppression)).scalars()]
    assert reasons == [SuppressionReason.hard_bounce]
    # The next run leaves the bounced address out from the start.
    assert start.start_run(ws, CAMPAIGN, started_by="test", again=True).recipient_count == 29


def test_connection_dropped_mid_data_is_retried(ws_root: Path, engine: Engine, add_contacts, smtp) -> None:
    emails = add_contacts(40)
    smtp.drop_after_data_every = 5
    ws, run, report = send_campaign(ws_root, smtp_sections(smtp.port))

    assert report.run.status == RunStatus.finished
    assert _received(smtp) == Counter({email: 1 for email in emails})
    assert sum(d.attempts == 2 for d in _deliveries(engine, run.id).values()) == 8


def test_server_down_at_the_start_pauses_the_run_which_resumes_and_completes(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    emails = add_contacts(25)
    smtp.stop()
    ws, run, paused = send_campaign(
        ws_root, smtp_sections(smtp.port, connections=2, pause_after_connection_failures=4)
    )

    assert paused.run.status == RunStatus.paused
    assert "connection failures in a row" in paused.run.status_reason
    assert paused.counts[DeliveryStatus.sent] == 0
    assert paused.counts[DeliveryStatus.queued] == 25  # nothing lost, nothing failed

    smtp.start()
    control.resume_run(ws, run.id)
    report = dispatch.dispatch_run(ws, run.id)

    assert report.run.status == RunStatus.finished
    assert _received(smtp) == Counter({email: 1 for email in emails})


def test_policy_refusals_never_suppress_pause_the_run_and_can_be_retried(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    emails = add_contacts(30)
    refused = emails[:3]
    smtp.refuse = {email: "550 5.7.1 sender reputation too low" for email in refused}
    ws, run, paused = send_campaign(
        ws_root, smtp_sections(smtp.port, connections=1, pause_after_policy_refusals=3)
    )

    assert paused.run.status == RunStatus.paused
    assert "policy refusals" in paused.run.status_reason
    assert paused.counts[DeliveryStatus.failed] == 3
    with session(engine) as db:
        assert db.exec(select(Suppression)).first() is None

    smtp.refuse = {}
    assert control.retry_run(ws, run.id) == 3
    report = dispatch.dispatch_run(ws, run.id)

    assert report.run.status == RunStatus.finished
    assert _received(smtp) == Counter({email: 1 for email in emails})


def test_a_suppression_recorded_while_sending_is_honoured(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    emails = add_contacts(40)
    last = emails[-1]
    sections = smtp_sections(smtp.port, connections=1)
    sections["rate"] = "per_second = 15\nper_domain_per_second = 15"
    configure(ws_root, sections)
    ws = open_ws(ws_root)
    run = start.start_run(ws, CAMPAIGN, started_by="test")

    sender = threading.Thread(target=dispatch.dispatch_run, args=(ws, run.id))
    sender.start()
    smtp.wait_for(3)
    with session(engine) as db:
        suppress(db, last, SuppressionReason.unsubscribe)
    sender.join()

    assert last not in _received(smtp)
    skipped = _deliveries(engine, run.id)[last]
    assert (skipped.status, skipped.skip_reason) == (DeliveryStatus.skipped, "suppressed")
    assert len(_received(smtp)) == 39


def test_cancel_stops_a_run_for_good(ws_root: Path, engine: Engine, add_contacts, smtp) -> None:
    add_contacts(10)
    configure(ws_root, smtp_sections(smtp.port))
    ws = open_ws(ws_root)
    run = start.start_run(ws, CAMPAIGN, started_by="test")

    cancelled = control.cancel_run(ws, run.id)

    assert cancelled.status == RunStatus.cancelled
    assert control.show_run(ws, run.id).counts[DeliveryStatus.cancelled] == 10
    assert smtp.messages == []
