"""Refused at connect time: a server that will not take mail from us pauses the run instead of being
retried for days, and reconnects back off instead of hammering it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pipeline.storage.engines import session
from pipeline.storage.models import Suppression
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from tests.delivery.conftest import send_campaign
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import smtp_sections

CONNECTIONS = 4


def _paused_with(report, engine: Engine, recipients: int) -> str:
    """The run paused with nothing sent, failed or suppressed (the recipients are not to blame)."""
    assert report.run.status == RunStatus.paused
    assert report.counts[DeliveryStatus.queued] == recipients
    with session(engine) as db:
        assert db.exec(select(Suppression)).first() is None
    return report.run.status_reason


@pytest.mark.parametrize(
    "greeting", ["554 5.7.1 no mail from your network", "550 5.7.0 service refused to you"]
)
def test_a_5xx_greeting_pauses_the_run_at_once_with_the_servers_reason(
    ws_root: Path, engine: Engine, add_contacts, greeting: str
) -> None:
    add_contacts(60)
    with SmtpServer(greeting=greeting) as server:
        _, _, report = send_campaign(ws_root, smtp_sections(server.port, connections=CONNECTIONS))
        attempts = server.connects

    reason = _paused_with(report, engine, 60)
    assert reason == f"the SMTP server refused the connection: {greeting}"
    assert 1 <= attempts <= CONNECTIONS  # the connections already under way, then nothing more


def test_a_refused_login_pauses_the_run_at_once(
    ws_root: Path, engine: Engine, add_contacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_contacts(60)
    monkeypatch.setenv("COMMS_SMTP_PASSWORD", "not-the-password")
    with SmtpServer(credentials=("mailer", "the-password")) as server:
        sections = smtp_sections(server.port, connections=CONNECTIONS)
        sections["transport"] = sections["transport"].replace("smtp://", "smtp://mailer@")
        _, _, report = send_campaign(ws_root, sections)
        attempts = server.connects

    reason = _paused_with(report, engine, 60)
    assert reason.startswith("the SMTP server refused the connection: 535 5.7.8")
    assert 1 <= attempts <= CONNECTIONS
    assert server.accepted == 0


def test_a_421_greeting_counts_towards_the_connection_failure_pause_with_backoff(
    ws_root: Path, engine: Engine, add_contacts
) -> None:
    add_contacts(300)
    with SmtpServer(greeting="421 4.3.2 too busy, try later") as server:
        _, _, report = send_campaign(
            ws_root, smtp_sections(server.port, connections=CONNECTIONS, pause_after_connection_failures=6)
        )
        attempts = server.connects

    reason = _paused_with(report, engine, 300)
    assert reason.startswith("6 connection failures in a row; last: 421 4.3.2 too busy")
    # Each failure delays the next connection: 6 failures, plus those already under way at the pause.
    assert 6 <= attempts <= 6 + CONNECTIONS
