"""The file, console and memory transports, and choosing a transport from settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.delivery.transports import (
    ConsoleTransport,
    FileTransport,
    MemoryTransport,
    SmtpTransport,
    transport_for,
)
from pipeline.errors import SettingsError
from pipeline.types import Outgoing, SendStatus
from pipeline.workspace.settings import Settings


def test_file_transport_writes_one_eml_per_message_id(tmp_path: Path, build: Callable[..., Outgoing]) -> None:
    first = build()
    second = build(message_id="<7.other@kestrelforge.example>", to_email="b@example.com")

    async def send_all() -> list[SendStatus]:
        async with FileTransport(tmp_path / "outbox") as transport:
            # The same Message-ID again, as after a crash and resume: it replaces, never duplicates.
            return [(await transport.send(m)).status for m in (first, second, first)]

    assert asyncio.run(send_all()) == [SendStatus.sent] * 3
    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == [
        first.message_id.strip("<>") + ".eml",
        "7.other@kestrelforge.example.eml",
    ]
    assert files[0].read_bytes() == first.data
    assert files[1].read_bytes() == second.data


def test_file_transport_reports_an_unwritable_folder_as_retry(
    tmp_path: Path, build: Callable[..., Outgoing]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    transport = FileTransport(blocker)
    result = asyncio.run(transport.send(build()))
    assert result.status is SendStatus.retry
    assert "cannot write" in result.reply
    assert blocker.read_text() == "x"


def test_console_transport_prints_envelope_and_message(
    capsys: pytest.CaptureFixture[str], build: Callable[..., Outgoing]
) -> None:
    outgoing = build()
    result = asyncio.run(ConsoleTransport().send(outgoing))
    printed = capsys.readouterr().out
    assert result.status is SendStatus.sent
    assert f"MAIL FROM:<{outgoing.envelope_from}> RCPT TO:<zoe@example.com>" in printed
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in printed


def test_memory_transport_keeps_messages_on_its_instance(build: Callable[..., Outgoing]) -> None:
    one, other = MemoryTransport(), MemoryTransport()
    asyncio.run(one.send(build()))
    assert [m.recipients for m in one.outbox] == [("zoe@example.com",)]
    assert other.outbox == []


def test_transport_for_picks_the_configured_kind(settings: Settings, workspace_dir: Path) -> None:
    chosen = transport_for(settings, workspace_dir)
    assert isinstance(chosen, FileTransport) and chosen.folder == workspace_dir / "outbox"
    settings.transport.kind = "console"
    assert isinstance(transport_for(settings, workspace_dir), ConsoleTransport)
    settings.transport.kind = "smtp"
    settings.transport.url = "smtp://mailer%40corp@smtp.example.com"
    settings.smtp_password = "s3cret"
    smtp = transport_for(settings, workspace_dir)
    assert isinstance(smtp, SmtpTransport)
    assert (smtp.host, smtp.port, smtp.concurrency) == ("smtp.example.com", 587, 4)


@pytest.mark.parametrize(
    ("url", "security", "password", "message"),
    [
        (None, "starttls", None, "transport.url: smtp needs"),
        ("http://host", "starttls", None, "expected smtp://user@host:port \\(STARTTLS\\), smtps://"),
        ("smtp+plain://mail.example.com", "starttls", None, "plain SMTP to mail.example.com"),
        ("smtp://user:pw@host", "starttls", "pw", "put the password in COMMS_SMTP_PASSWORD"),
        ("smtp://user@host", "starttls", None, "COMMS_SMTP_PASSWORD is not set"),
        ("smtp://mail.example.com", "none", None, "plain SMTP to mail.example.com"),
        ("smtp://host:99999", "tls", None, "bad port"),
    ],
)
def test_smtp_settings_errors_are_one_line_and_name_the_setting(
    settings: Settings, url: str | None, security: str, password: str | None, message: str
) -> None:
    settings.transport.kind = "smtp"
    settings.transport.url = url
    settings.transport.security = security  # type: ignore[assignment]
    settings.smtp_password = password
    with pytest.raises(SettingsError, match=message) as caught:
        SmtpTransport.from_settings(settings)
    assert "\n" not in str(caught.value)


def test_plain_smtp_is_allowed_to_loopback_or_when_asked(settings: Settings) -> None:
    settings.transport.security = "none"
    for url in ("smtp://127.0.0.1:2525", "smtp://localhost", "smtp://[::1]:25"):
        settings.transport.url = url
        assert SmtpTransport.from_settings(settings).port in (2525, 25)
    settings.transport.security = "starttls"
    settings.transport.url = "smtp+plain://127.0.0.1"
    assert SmtpTransport.from_settings(settings).port == 25  # the scheme says plain, whatever security says
    settings.transport.url = "smtps://mail.example.com"
    assert SmtpTransport.from_settings(settings).port == 465
    settings.transport.security = "none"
    settings.transport.url = "smtp://relay.internal"
    settings.transport.allow_plain = True
    assert SmtpTransport.from_settings(settings).host == "relay.internal"
