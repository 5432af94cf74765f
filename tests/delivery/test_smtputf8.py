"""Addresses that need SMTPUTF8 (a non-ASCII local part): flagged at import, sent where the server
offers the extension, failed alone with a plain reason where it does not."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pipeline.audience.importer import import_contacts
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Suppression
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from tests.delivery.conftest import send_campaign
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import smtp_sections

PEOPLE = ["zoë@example.com", "ann@example.com", "bob@example.com"]


def _import(root: Path, engine: Engine) -> int:
    path = root / "people.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "marketing_consent"])
        writer.writerows([email, "Pat", "true"] for email in PEOPLE)
    summary = import_contacts(engine, path, list_name="customers")
    assert summary.inserted == 3
    return summary.need_smtputf8


@pytest.mark.parametrize("offered", [True, False])
def test_a_non_ascii_address_goes_where_smtputf8_is_offered_and_fails_alone_elsewhere(
    ws_root: Path, engine: Engine, offered: bool
) -> None:
    assert _import(ws_root, engine) == 1
    with SmtpServer(smtputf8=offered) as server:
        _, run, report = send_campaign(ws_root, smtp_sections(server.port, connections=1))
        received = sorted(rcpt for message in server.messages for rcpt in message.rcpt_tos)

    assert report.run.status == RunStatus.finished  # the run goes on either way
    with session(engine) as db:
        deliveries = {d.email: d for d in db.scalars(select(Delivery).where(Delivery.run_id == run.id))}
        suppressed = list(db.scalars(select(Suppression)))
    if offered:
        assert received == sorted(PEOPLE)
        assert {d.status for d in deliveries.values()} == {DeliveryStatus.sent}
    else:
        assert received == ["ann@example.com", "bob@example.com"]
        zoe = deliveries["zoë@example.com"]
        assert zoe.status == DeliveryStatus.failed and zoe.attempts == 1
        assert "does not offer SMTPUTF8" in (zoe.last_reply or "")
        assert suppressed == []  # the server's limit, not a bad address
