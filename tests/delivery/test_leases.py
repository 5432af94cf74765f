"""Leases: a live worker keeps what it claimed however long the pace makes it wait."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import Engine

from pipeline.storage.models import DeliveryStatus, RunStatus
from tests.delivery.conftest import send_campaign
from tests.support.workspace import smtp_sections


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
