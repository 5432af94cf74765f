"""The whole loop: a run sent over real SMTP, its List-Unsubscribe URL used, the next run leaves them out."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
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
from pipeline.storage.engines import make_engine, session, upgrade
from pipeline.storage.models import Event
from pipeline.workspace.folders import Workspace
from tests.feedback.conftest import SECRET, ServerThread
from tests.support.smtp_server import SmtpServer

PEOPLE = ["ada@example.com", "bob@example.com", "cy@example.com"]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def ws(
    workspace_dir: Path, database_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Workspace:
    """The sample workspace sending through the test SMTP server, with a `news` audience."""
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    monkeypatch.setenv("COMMS_DATABASE_URL", database_url)
    monkeypatch.delenv("COMMS_SMTP_URL", raising=False)
    toml = workspace_dir / "comms.toml"
    smtp_transport = f'kind = "smtp"\nurl = "smtp://127.0.0.1:{smtp.port}"\nsecurity = "none"'
    toml.write_text(toml.read_text().replace('kind = "file"', smtp_transport))
    (workspace_dir / "audiences" / "news.toml").write_text('lists = ["news"]\n')
    upgrade(database_url)
    return Workspace.open(workspace_dir)


def received(smtp: SmtpServer, email: str) -> list[EmailMessage]:
    return [
        message_from_bytes(m.data, policy=policy.default)  # type: ignore[misc]
        for m in smtp.messages
        if m.rcpt_tos == (email,)
    ]


def test_one_click_unsubscribe_from_a_received_message_leaves_the_contact_out_of_the_next_run(
    ws: Workspace, smtp: SmtpServer, tmp_path: Path
) -> None:
    engine: Engine = make_engine(ws.settings.database.url)
    contacts = tmp_path / "people.csv"
    with contacts.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name"])
        writer.writerows([email, email.split("@")[0].title()] for email in PEOPLE)
    import_contacts(engine, contacts, list_name="news")

    with ServerThread(create_app(ws.settings, engine), ws.settings) as base_url:
        ws.settings.tracking.base_url = base_url
        # The test's tracking server is plain http on loopback; a real one must be https (RFC 8058).
        ws.settings.checks.severity.update(
            {"deliverability.one-click": "warning", "deliverability.insecure-link": "warning"}
        )
        first = start_run(ws, "spring-launch", "news", started_by="test")
        dispatch_run(ws, first.id)
        assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == PEOPLE

        [message] = received(smtp, "ada@example.com")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        [https_url] = re.findall(r"<(http[^>]+)>", message["List-Unsubscribe"])
        assert https_url.startswith(f"{base_url}/u/") and "ada" not in https_url

        # What Gmail and Apple Mail do on "Unsubscribe": a POST with the RFC 8058 body, no cookies.
        response = httpx.post(https_url, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
        assert response.status_code == 200

        # A tracked link in the received HTML leads to that person's own rendering of the campaign link.
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        [click, *_] = re.findall(rf'href="({re.escape(base_url)}/c/[^"]+)"', html)
        browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"}
        response = httpx.get(click, headers=browser, follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"].startswith("https://kestrelforge.example")

        second = start_run(ws, "spring-launch", "news", started_by="test", again=True)
        assert second.recipient_count == 2
        dispatch_run(ws, second.id)
        assert len(received(smtp, "ada@example.com")) == 1
        assert len(received(smtp, "bob@example.com")) == len(received(smtp, "cy@example.com")) == 2

    with session(engine) as db:
        kinds = sorted(e.kind for e in db.scalars(select(Event)))
    assert kinds == ["click", "unsubscribe"]
    engine.dispose()
