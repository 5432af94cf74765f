"""The SMTP transport against a real aiosmtpd server on 127.0.0.1 that refuses, defers, drops or is down."""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipeline.delivery.transports import SmtpTransport
from pipeline.types import Outgoing, Rendered, SendResult, SendStatus
from tests.support.smtp_server import SmtpServer

Build = Callable[..., Outgoing]


def plain(server: SmtpServer, **options: object) -> SmtpTransport:
    return SmtpTransport(server.host, server.port, security="none", timeout_s=5, **options)  # type: ignore[arg-type]


async def send_each(transport: SmtpTransport, messages: list[Outgoing]) -> list[SendResult]:
    async with transport:
        return [await transport.send(message) for message in messages]


def numbered(build: Build, count: int) -> list[Outgoing]:
    return [
        build(to_email=f"r{n}@example.com", message_id=f"<7.{n}@kestrelforge.example>", delivery_id=n)
        for n in range(count)
    ]


@pytest.mark.parametrize("pipelining", [False, True])
def test_messages_arrive_byte_exact_over_one_reused_connection(build: Build, pipelining: bool) -> None:
    messages = numbered(build, 5)
    with SmtpServer(pipelining=pipelining) as server:
        results = asyncio.run(send_each(plain(server, connections=1), messages))
    # With PIPELINING offered, MAIL, RCPT and DATA go out together (RFC 2920), one round trip.
    assert server.pipelined == (5 if pipelining else 0)
    assert [r.status for r in results] == [SendStatus.sent] * 5
    assert all(r.code == 250 and "2.0.0" in r.reply for r in results)
    assert [m.data for m in server.messages] == [m.data for m in messages]
    assert [m.mail_from for m in server.messages] == [m.envelope_from for m in messages]
    assert [m.rcpt_tos for m in server.messages] == [m.recipients for m in messages]
    assert server.connections == 1


def test_pipelining_offered_is_not_used_when_turned_off(build: Build) -> None:
    with SmtpServer(pipelining=True) as server:
        results = asyncio.run(send_each(plain(server, pipelining=False), numbered(build, 2)))
    assert [r.status for r in results] == [SendStatus.sent] * 2
    assert server.pipelined == 0 and server.accepted == 2


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_550_fails_that_message_only_and_leaves_the_connection_usable(
    build: Build, pipelining: bool
) -> None:
    gone, kept = build(to_email="gone@example.com"), build(to_email="kept@example.com")
    with SmtpServer(refuse={"gone@example.com": "550 5.1.1 user unknown"}, pipelining=pipelining) as server:
        results = asyncio.run(send_each(plain(server, connections=1), [gone, kept]))
    assert results[0] == SendResult(SendStatus.permanent, 550, "5.1.1 user unknown")
    assert results[1].status is SendStatus.sent
    assert [m.rcpt_tos for m in server.messages] == [("kept@example.com",)]
    assert server.connections == 1


@pytest.mark.parametrize("pipelining", [False, True])
def test_each_recipient_gets_its_own_answer(build: Build, pipelining: bool) -> None:
    """One refused recipient of two: sent to the other, the refusal named; all refused: the first refusal."""
    message = build()
    some = replace(message, recipients=("gone@example.com", "kept@example.com"))
    none = replace(message, recipients=("gone@example.com", "away@example.com"))
    refuse = {"gone@example.com": "550 5.1.1 user unknown", "away@example.com": "450 4.2.1 mailbox busy"}
    with SmtpServer(refuse=refuse, pipelining=pipelining) as server:
        results = asyncio.run(send_each(plain(server, connections=1), [some, none, message]))
    assert results[0].status is SendStatus.sent
    assert results[0].reply.endswith("; refused: gone@example.com 550 5.1.1 user unknown")
    assert results[1] == SendResult(SendStatus.permanent, 550, "5.1.1 user unknown")
    assert results[2].status is SendStatus.sent
    assert [m.rcpt_tos for m in server.messages] == [("kept@example.com",), ("zoe@example.com",)]
    assert server.connections == 1


@pytest.mark.parametrize("pipelining", [False, True])
def test_lines_starting_with_a_dot_arrive_intact_without_dot_stuffing(build: Build, pipelining: bool) -> None:
    """The message bytes are SMTP-ready as built: no line starts with "." (QP writes it =2E), so the
    client sends them as they are and the server gets exactly them, whatever the text holds."""
    text = ".\n.leading dot\n..two\n" + "x" * 75 + ".after a soft break\n" + ". " * 60 + "\n"
    message = build(content=Rendered(subject="Dots", html=f"<p>\n{text}</p>\n", text=text))
    assert not any(line.startswith(b".") for line in message.data.split(b"\r\n"))
    with SmtpServer(pipelining=pipelining) as server:
        results = asyncio.run(send_each(plain(server), [message]))
    assert results[0].status is SendStatus.sent
    assert server.messages[0].data == message.data
    parsed = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
    plain_part = parsed.get_body(("plain",))
    assert plain_part is not None
    assert plain_part.get_content().replace("\r\n", "\n") == text


def test_a_451_is_temporary_and_the_retry_is_delivered(build: Build) -> None:
    first, second = numbered(build, 2)
    with SmtpServer(defer_every=2) as server:
        results = asyncio.run(send_each(plain(server), [first, second, second]))
    assert results[1] == SendResult(SendStatus.retry, 451, "4.3.0 try again later")
    assert [r.status for r in (results[0], results[2])] == [SendStatus.sent, SendStatus.sent]
    assert [m.data for m in server.messages] == [first.data, second.data]


def test_a_connection_dropped_mid_data_is_temporary_and_the_pool_reconnects(build: Build) -> None:
    first, second, third = numbered(build, 3)
    with SmtpServer(drop_after_data_every=2) as server:
        results = asyncio.run(send_each(plain(server, connections=1), [first, second, third, second]))
    assert [r.status for r in results] == [
        SendStatus.sent,
        SendStatus.retry,
        SendStatus.sent,
        SendStatus.sent,
    ]
    assert results[1].code is None
    assert [m.data for m in server.messages] == [first.data, third.data, second.data]
    assert server.connections == 2


def test_a_server_that_is_down_gives_temporary_results_until_it_is_back(build: Build) -> None:
    message = build()
    server = SmtpServer()
    transport = plain(server, connections=2)

    async def scenario() -> list[SendResult]:
        async with transport:
            down = [await transport.send(message) for _ in range(3)]
            await asyncio.to_thread(server.start)
            try:
                return [*down, await transport.send(message)]
            finally:
                await asyncio.to_thread(server.stop)

    results = asyncio.run(scenario())
    assert [r.status for r in results] == [SendStatus.retry] * 3 + [SendStatus.sent]
    assert all(r.code is None for r in results[:3])
    assert len(server.messages) == 1


def test_a_server_going_away_between_messages_is_survived(build: Build) -> None:
    first, second = numbered(build, 2)
    server = SmtpServer()
    transport = plain(server, connections=1)

    async def scenario() -> list[SendResult]:
        async with transport:
            await asyncio.to_thread(server.start)
            sent = await transport.send(first)
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            try:
                return [sent, await transport.send(second)]
            finally:
                await asyncio.to_thread(server.stop)

    results = asyncio.run(scenario())
    assert [r.status for r in results] == [SendStatus.sent, SendStatus.sent]


@pytest.mark.parametrize("connections", [1, 4])
def test_the_pool_really_sends_over_n_connections_at_once(build: Build, connections: int) -> None:
    messages = numbered(build, 12)

    async def send_concurrently(transport: SmtpTransport) -> list[SendResult]:
        async with transport:
            return await asyncio.gather(*(transport.send(m) for m in messages))

    with SmtpServer(data_delay_s=0.1) as server:
        results = asyncio.run(send_concurrently(plain(server, connections=connections)))
    assert [r.status for r in results] == [SendStatus.sent] * 12
    assert server.connections == connections
    assert server.peak_in_data == connections
    assert sorted(m.data for m in server.messages) == sorted(m.data for m in messages)


def test_a_reply_slower_than_the_timeout_is_a_retry(build: Build) -> None:
    with SmtpServer(data_delay_s=2) as server:
        transport = SmtpTransport(server.host, server.port, security="none", timeout_s=0.5, connections=1)
        results = asyncio.run(send_each(transport, [build()]))
    assert results[0].status is SendStatus.retry and results[0].code is None


def test_authentication_with_the_password_from_settings(build: Build) -> None:
    with SmtpServer(credentials=("mailer", "s3cret")) as server:
        good = asyncio.run(send_each(plain(server, username="mailer", password="s3cret"), [build()]))
        bad = asyncio.run(send_each(plain(server, username="mailer", password="wrong"), [build()]))
    assert good[0].status is SendStatus.sent
    # A refused login is the connection's problem, not this recipient's: retry, never fail the delivery.
    assert bad[0].status is SendStatus.retry and bad[0].code == 535
    assert len(server.messages) == 1


def test_authentication_with_login_when_plain_is_not_offered(build: Build) -> None:
    with SmtpServer(credentials=("mailer", "s3cret"), auth_mechanisms=("LOGIN",)) as server:
        good = asyncio.run(send_each(plain(server, username="mailer", password="s3cret"), [build()]))
        bad = asyncio.run(send_each(plain(server, username="mailer", password="wrong"), [build()]))
    assert good[0].status is SendStatus.sent
    assert bad[0].status is SendStatus.retry and bad[0].code == 535 and bad[0].at_connect
    assert len(server.messages) == 1


def test_a_server_without_starttls_says_which_setting_to_change(build: Build) -> None:
    with SmtpServer() as server:
        transport = SmtpTransport(server.host, server.port, security="starttls", timeout_s=5)
        [result] = asyncio.run(send_each(transport, [build()]))
    assert result.status is SendStatus.retry and result.code is None
    assert "smtp+plain://" in result.reply and '[transport] security = "none"' in result.reply
    assert server.messages == []


def test_an_address_that_is_not_ascii_goes_out_with_smtputf8(build: Build) -> None:
    message = build(to_email="zoë@exämple.com")
    with SmtpServer() as server:
        results = asyncio.run(send_each(plain(server), [message]))
    assert results[0].status is SendStatus.sent
    assert server.messages[0].rcpt_tos == ("zoë@exämple.com",)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), as PEM files (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "cert.pem", folder / "key.pem"


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_encrypted_connections_verify_the_server_certificate(
    build: Build, certificate: tuple[Path, Path], security: str
) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    message = build()
    with SmtpServer(tls_context=server_context, implicit_tls=security == "tls") as server:

        def transport(context: ssl.SSLContext | None) -> SmtpTransport:
            return SmtpTransport(
                server.host,
                server.port,
                security=security,
                timeout_s=5,
                tls_context=context,  # type: ignore[arg-type]
            )

        trusted = asyncio.run(send_each(transport(trusting), [message]))
        untrusted = asyncio.run(send_each(transport(None), [message]))
    assert trusted[0].status is SendStatus.sent
    assert untrusted[0].status is SendStatus.retry
    assert "certificate verify failed" in untrusted[0].reply.lower()
    assert [m.data for m in server.messages] == [message.data]
