"""SMTP delivery through a pool of long-lived aiosmtplib connections.

aiosmtplib has no PIPELINING and one SMTP object serialises its transactions behind a lock, so
concurrency comes from several objects: ``concurrency`` connections, each reused for many messages
and reopened when the server drops it. Every outcome is a SendResult, never an exception:

- connection set-up failed (refused, TLS, greeting, EHLO, AUTH): temporary and `at_connect`, with
  the server's code where it answered (the engine pauses the run on a 5xx greeting or a refused
  AUTH); the next connection waits a backoff that doubles with each failure in a row;
- the connection broke mid-transaction, or a timeout: temporary; the connection is discarded and
  the next send reconnects;
- a reply to MAIL, RCPT or DATA: 2xx sent, 4xx temporary, 5xx permanent, with code and text.
  aiosmtplib sends RSET after a refusal, so a 550 for one recipient leaves the connection usable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from typing import Literal
from urllib.parse import unquote, urlsplit

from aiosmtplib import (
    SMTP,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponseException,
)

from pipeline.delivery.transports.base import Transport
from pipeline.errors import SettingsError
from pipeline.types import Outgoing, SendResult, SendStatus
from pipeline.workspace.settings import Settings

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
# Waits before reconnecting after connection failures in a row: doubling from the first, at most the last.
_RECONNECT_FIRST_S = 0.25
_RECONNECT_MAX_S = 60.0
_CLOSE_WAIT_S = 2.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _by_code(code: int, text: str) -> SendResult:
    if 200 <= code < 300:
        return SendResult(SendStatus.sent, code, text)
    status = SendStatus.permanent if code >= 500 else SendStatus.temporary
    return SendResult(status, code, text)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class SmtpTransport(Transport):
    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        security: Security = "starttls",
        allow_plain: bool = False,
        connections: int = 4,
        timeout_s: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """TLS_CONTEXT replaces the system trust store (a private CA); None verifies as usual."""
        if security == "none" and not allow_plain and not _is_loopback(host):
            raise SettingsError(
                f"transport.security: plain SMTP to {host} would expose mail and password;"
                " use starttls or tls, or set allow_plain = true"
            )
        if username and not password:
            raise SettingsError(f"COMMS_SMTP_PASSWORD is not set for SMTP user {username}")
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        self.concurrency = connections
        self._options = {
            "hostname": host,
            "port": self.port,
            "username": username or None,
            "password": password if username else None,
            "use_tls": security == "tls",
            "start_tls": security == "starttls",
            "timeout": timeout_s,
            "tls_context": tls_context,
        }
        self._clients: list[SMTP] = []
        self._idle: asyncio.Queue[SMTP] = asyncio.Queue()
        self._connect_failures = 0  # in a row, over the whole pool
        self._reconnect_at = 0.0  # loop time before which no connection is attempted

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        config = settings.transport
        if not config.url:
            raise SettingsError("transport.url: smtp needs smtp://user@host:port (or COMMS_SMTP_URL)")
        url = urlsplit(config.url)
        if url.scheme != "smtp" or not url.hostname:
            raise SettingsError(f"transport.url: expected smtp://user@host:port, got {config.url!r}")
        if url.password is not None:
            raise SettingsError("transport.url: put the password in COMMS_SMTP_PASSWORD, not in the URL")
        try:
            port = url.port
        except ValueError:
            raise SettingsError(f"transport.url: bad port in {config.url!r}") from None
        return cls(
            url.hostname,
            port,
            username=unquote(url.username) if url.username else None,
            password=settings.smtp_password,
            security=config.security,
            allow_plain=config.allow_plain,
            connections=config.connections,
            timeout_s=config.timeout_s,
        )

    async def open(self) -> None:
        """Create the pool; connections open lazily, so a server that is down costs each send a
        quick temporary result instead of failing the whole run up front."""
        self._clients = [SMTP(**self._options) for _ in range(self.concurrency)]
        self._idle = asyncio.Queue()
        for client in self._clients:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        closing = [client.protocol for client in self._clients if client.protocol is not None]
        for client in self._clients:
            if client.is_connected:
                try:
                    await client.quit()
                except (SMTPException, OSError):
                    client.close()
        self._clients = []
        # A TLS connection finishes closing (close_notify, then the socket) on later turns of the
        # loop: wait for it, or a loop that ends right after leaves the socket open.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CLOSE_WAIT_S
        while any(protocol.transport is not None for protocol in closing) and loop.time() < deadline:
            await asyncio.sleep(0.01)

    async def send(self, message: Outgoing) -> SendResult:
        if not self._clients:
            raise RuntimeError("SmtpTransport.send() before open(): use `async with transport:`")
        client = await self._idle.get()
        try:
            return await self._send_on(client, message)
        finally:
            self._idle.put_nowait(client)

    async def _send_on(self, client: SMTP, message: Outgoing) -> SendResult:
        if not client.is_connected:
            refused = await self._connect(client)
            if refused is not None:
                return refused
        # RFC 6531: an address that is not ASCII needs SMTPUTF8 on the whole transaction.
        addresses = (message.envelope_from, *message.recipients)
        options = [] if all(address.isascii() for address in addresses) else ["SMTPUTF8"]
        try:
            refused, reply = await client.sendmail(
                message.envelope_from, message.recipients, message.data, mail_options=options
            )
        except SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            return _by_code(first.code, first.message)
        except SMTPResponseException as exc:
            return _by_code(exc.code, exc.message)
        except (SMTPNotSupported, ValueError) as exc:
            return SendResult(SendStatus.permanent, None, _describe(exc))
        except (SMTPException, OSError) as exc:
            # Disconnected or timed out mid-transaction: the connection's state is unknown.
            client.close()
            return SendResult(SendStatus.temporary, None, _describe(exc))
        if refused:
            reply += "; refused: " + ", ".join(f"{rcpt} {r.code} {r.message}" for rcpt, r in refused.items())
        return SendResult(SendStatus.sent, 250, reply)

    async def _connect(self, client: SMTP) -> SendResult | None:
        """Open CLIENT's connection, after the backoff earlier failures asked for; None when open."""
        loop = asyncio.get_running_loop()
        wait_s = self._reconnect_at - loop.time()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        try:
            await client.connect()
        except (SMTPException, OSError) as exc:
            client.close()
            self._connect_failures += 1
            backoff_s = _RECONNECT_FIRST_S * 2 ** min(self._connect_failures - 1, 16)
            self._reconnect_at = loop.time() + min(backoff_s, _RECONNECT_MAX_S)
            code = getattr(exc, "code", None)
            reply = f"{code} {exc.message}" if isinstance(exc, SMTPResponseException) else _describe(exc)
            return SendResult(SendStatus.temporary, code, reply, at_connect=True)
        self._connect_failures = 0
        return None
