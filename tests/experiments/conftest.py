"""A/B fixtures: the sample workspace's test campaign (tooling-offer) sent over real SMTP to contacts
spread over departments and mailbox domains, with the real tracking server answering its links."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from pipeline.audience.importer import import_contacts
from pipeline.feedback.server import create_app
from pipeline.runs.dispatch import dispatch_run
from pipeline.runs.start import start_run
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Run
from pipeline.storage.statuses import RunStatus
from pipeline.workspace.folders import Workspace
from tests.delivery.conftest import engine, ws_root
from tests.feedback.conftest import ServerThread
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import configure, open_ws, smtp_sections

# The sample workspace on the test database, as tests/delivery has it.
__all__ = ["engine", "lab", "ws_root"]

CAMPAIGN = "tooling-offer"  # templates/copy/tooling-offer.md: variants `offer` (control) and `question`
OFFER_SUBJECT = "Launch offer: 10% off KF-9 tooling until 30 April"
QUESTION_SUBJECT = "is your tooling ready for the KF-9?"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
DEPARTMENTS = ("sales", "finance", "production")
DOMAINS = ("example.com", "example.org", "example.net")
PEOPLE = 160  # share 50%: 40 per arm, 80 held; the small test's minimum is 32 per arm


def small_test(root: Path) -> None:
    """The sample test made to fit a test's audience: a 30-point lift from 10% needs 32 per arm."""
    copy = root / "templates" / "copy" / f"{CAMPAIGN}.md"
    text = copy.read_text(encoding="utf-8")
    text = re.sub(r"lift: 10%", "lift: 30%", text)
    text = re.sub(r"baseline: 8%", "baseline: 10%", text)
    copy.write_text(text, encoding="utf-8")


def add_customers(root: Path, engine: Engine, count: int) -> list[str]:
    """COUNT consenting customers through the real importer, over 3 departments x 3 domains."""
    path = root / "ab-customers.csv"
    emails = [f"person{i}@{DOMAINS[i % 3]}" for i in range(count)]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "marketing_consent", "department"])
        for i, email in enumerate(emails):
            writer.writerow([email, f"First{i}", "true", DEPARTMENTS[(i // 3) % 3]])
    import_contacts(engine, path, list_name="customers")
    return emails


def messages(smtp: SmtpServer) -> dict[str, list[EmailMessage]]:
    """What each recipient received, in order."""
    found: dict[str, list[EmailMessage]] = {}
    for message in smtp.messages:
        parsed = message_from_bytes(message.data, policy=policy.default)
        for to in message.rcpt_tos:
            found.setdefault(to, []).append(parsed)  # type: ignore[arg-type]
    return found


def variants(engine: Engine, run_id: int) -> dict[str, tuple[str, str]]:
    """email -> (variant, status) of the run's deliveries, as the outbox has them."""
    with session(engine) as db:
        rows = db.scalars(select(Delivery).where(Delivery.run_id == run_id)).all()
    return {row.email or "": (row.variant, row.status) for row in rows}


@dataclass
class Lab:
    root: Path
    ws: Workspace
    engine: Engine
    smtp: SmtpServer
    base_url: str

    def click(self, message: EmailMessage) -> None:
        """A person clicks the message's first tracked link in a browser."""
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        first = re.search(rf'href="({re.escape(self.base_url)}/c/[^"]+)"', html)
        assert first is not None, "the message has a tracked link"
        response = httpx.get(first[1], headers=BROWSER, follow_redirects=False)
        assert response.status_code == 302

    def send_arms(self) -> Run:
        """PEOPLE customers, the run started and its arms sent here; the rest stays held."""
        add_customers(self.root, self.engine, PEOPLE)
        run = start_run(self.ws, CAMPAIGN, started_by="test")
        report = dispatch_run(self.ws, run.id)
        assert report.run.status == RunStatus.sending and report.waiting_for_decision
        return report.run

    def arm_messages(self, run: Run, variant: str) -> list[EmailMessage]:
        received = messages(self.smtp)
        return [received[email][0] for email, (v, _) in variants(self.engine, run.id).items() if v == variant]

    def engage(self, run: Run, clicks: dict[str, int], unsubscribes: dict[str, int] | None = None) -> None:
        """So many people of each arm click (the first ones) and unsubscribe (the last ones)."""
        for variant, count in clicks.items():
            for message in self.arm_messages(run, variant)[:count]:
                self.click(message)
        for variant, count in (unsubscribes or {}).items():
            for message in self.arm_messages(run, variant)[-count:]:
                self.unsubscribe(message)

    def unsubscribe(self, message: EmailMessage) -> None:
        """What Gmail does on "Unsubscribe": the RFC 8058 one-click POST."""
        [url] = re.findall(r"<(http[^>]+)>", str(message["List-Unsubscribe"]))
        response = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
        assert response.status_code == 200


@pytest.fixture
def lab(ws_root: Path, engine: Engine, smtp: SmtpServer) -> Iterator[Lab]:
    """The sample workspace (tests/delivery's ws_root) sending to SMTP, with a test made small."""
    configure(ws_root, smtp_sections(smtp.port))
    small_test(ws_root)
    settings = open_ws(ws_root).settings
    with ServerThread(create_app(settings, engine), settings) as url:
        configure(ws_root, {"tracking": f'base_url = "{url}"'})
        ws = open_ws(ws_root)
        # The test's tracking server is plain http on loopback; a real one must be https (RFC 8058).
        ws.settings.checks.severity.update(
            {"deliverability.one-click": "warning", "deliverability.insecure-link": "warning"}
        )
        yield Lab(ws_root, ws, engine, smtp, url)
