"""SMTP delivery through a pool of long-lived connections of our own client (smtp_client.py).

One connection carries one transaction at a time, so concurrency comes from several:
``concurrency`` connections, each reused for many messages and reopened when the server drops
it. Every outcome is a SendResult, never an exception:

- connection set-up failed (refused, TLS, greeting, EHLO, AUTH): retry and `at_connect`, with
  the server's code where it answered (the engine pauses the run on a 5xx greeting or a refused
  AUTH); the next connection waits a backoff that doubles with each failure in a row;
- the connection broke mid-transaction, or a timeout: retry; the connection is discarded and
  the next send reconnects;
- a reply to MAIL, RCPT or DATA: 2xx sent, 4xx retry, 5xx permanent, with code and text.
  A refusal is followed by RSET, so a 550 for one recipient leaves the connection usable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from typing import Literal
from urllib.parse import unquote, urlsplit

from pipeline.delivery.transports.base import Transport
from pipeline.delivery.transports.smtp_client import (
    SmtpConnection,
    SmtpReplyError,
    StartTlsNotOffered,
    Transaction,
)
from pipeline.errors import SettingsError
from pipeline.types import Outgoing, SendResult, SendStatus
from pipeline.workspace.settings import Settings, shown_url

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
# Waits before reconnecting after connection failures in a row: doubling from the first, at most the last.
_RECONNECT_FIRST_S = 0.25
_RECONNECT_MAX_S = 60.0
# What breaks a connection: a dead or slow peer, a TLS failure, a reply cut short.
_BROKEN = (OSError, TimeoutError, asyncio.IncompleteReadError)
# URL scheme -> security: smtp:// takes [transport] security (STARTTLS unless set), the others say it.
SCHEMES: dict[str, Security | None] = {"smtp": None, "smtps": "tls", "smtp+plain": "none"}
NO_STARTTLS = (
    "the server offers no STARTTLS: for a development server on loopback use smtp+plain:// or"
    ' [transport] security = "none"; for implicit TLS (port 465) smtps:// or security = "tls"'
)


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
    status = SendStatus.permanent if code >= 500 else SendStatus.retry
    return SendResult(status, code, text)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _result(done: Transaction) -> SendResult:
    if not done.accepted:
        return _by_code(done.reply.code, done.reply.text)
    reply = done.reply.text
    if done.refused:
        reply += "; refused: " + ", ".join(f"{rcpt} {r.code} {r.text}" for rcpt, r in done.refused)
    return SendResult(SendStatus.sent, done.reply.code, reply)


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
        pipelining: bool = True,
    ) -> None:
        """TLS_CONTEXT replaces the system trust store (a private CA); None verifies as usual.
        PIPELINING False never pipelines, even when the server offers it (to compare, or for a
        server that offers it and gets it wrong)."""
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
        self._security = security
        self._username = username or None
        self._password = password if username else None
        self._timeout_s = timeout_s
        self._tls_context = tls_context
        self._pipelining = pipelining
        self._local_hostname = "localhost"
        self._slots: list[SmtpConnection | None] = []
        self._idle: asyncio.Queue[int] = asyncio.Queue()
        self._open = False
        self._connect_failures = 0  # in a row, over the whole pool
        self._reconnect_at = 0.0  # loop time before which no connection is attempted

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        config = settings.transport
        if not config.url:
            raise SettingsError("transport.url: smtp needs smtp://user@host:port (or COMMS_SMTP_URL)")
        url = urlsplit(config.url)
        shown = shown_url(config.url)
        if url.scheme not in SCHEMES or not url.hostname:
            raise SettingsError(
                "transport.url: expected smtp://user@host:port (STARTTLS), smtps:// (implicit TLS)"
                f" or smtp+plain:// (loopback), got {shown!r}"
            )
        if url.password is not None:
            raise SettingsError(
                f"transport.url {shown!r}: put the password in COMMS_SMTP_PASSWORD, not in the URL"
            )
        try:
            port = url.port
        except ValueError:
            raise SettingsError(f"transport.url: bad port in {shown!r}") from None
        return cls(
            url.hostname,
            port,
            username=unquote(url.username) if url.username else None,
            password=settings.smtp_password,
            security=SCHEMES[url.scheme] or config.security,
            allow_plain=config.allow_plain,
            connections=config.connections,
            timeout_s=config.timeout_s,
        )

    async def open(self) -> None:
        """Create the pool; connections open lazily, so a server that is down costs each send a
        quick retry result instead of failing the whole run up front."""
        # The name EHLO gives (RFC 5321 4.1.1.1); getfqdn may ask DNS, so once and off the loop.
        self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        self._slots = [None] * self.concurrency
        self._idle = asyncio.Queue()
        for slot in range(self.concurrency):
            self._idle.put_nowait(slot)
        self._open = True

    async def close(self) -> None:
        slots, self._slots, self._open = self._slots, [], False
        await asyncio.gather(*(c.quit() for c in slots if c is not None and c.usable))
        for connection in slots:
            if connection is not None and not connection.usable:
                await connection.close()

    async def send(self, message: Outgoing) -> SendResult:
        if not self._open:
            raise RuntimeError("SmtpTransport.send() before open(): use `async with transport:`")
        slot = await self._idle.get()
        try:
            connection = self._slots[slot]
            if connection is None or not connection.usable:
                if connection is not None:
                    await connection.close()
                self._slots[slot] = None
                opened = await self._connect()
                if isinstance(opened, SendResult):
                    return opened
                self._slots[slot] = connection = opened
            if "SMTPUTF8" not in connection.extensions and not all(
                address.isascii() for address in (message.envelope_from, *message.recipients)
            ):
                reason = "the server does not offer SMTPUTF8, which a non-ASCII address needs (RFC 6531)"
                return SendResult(SendStatus.permanent, None, reason)
            try:
                done = await connection.send(message.envelope_from, message.recipients, message.data)
            except _BROKEN as exc:
                # Disconnected or timed out mid-transaction: the connection's state is unknown.
                connection.abort()
                self._slots[slot] = None
                return SendResult(SendStatus.retry, None, _describe(exc))
            except BaseException:  # cancelled mid-transaction: never reuse a half-spoken connection
                connection.abort()
                self._slots[slot] = None
                raise
            return _result(done)
        finally:
            if self._open:
                self._idle.put_nowait(slot)

    async def _connect(self) -> SmtpConnection | SendResult:
        """A new connection, after the backoff earlier failures asked for; a SendResult if refused."""
        loop = asyncio.get_running_loop()
        wait_s = self._reconnect_at - loop.time()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        if self._tls_context is None and self._security != "none":
            # Once a transport: loading the system's CA bundle takes tens of milliseconds.
            self._tls_context = ssl.create_default_context()
        try:
            connection = await SmtpConnection.open(
                self.host,
                self.port,
                security=self._security,
                tls_context=self._tls_context,
                local_hostname=self._local_hostname,
                username=self._username,
                password=self._password,
                timeout_s=self._timeout_s,
                pipelining=self._pipelining,
            )
        except (SmtpReplyError, *_BROKEN) as exc:
            self._connect_failures += 1
            backoff_s = _RECONNECT_FIRST_S * 2 ** min(self._connect_failures - 1, 16)
            self._reconnect_at = loop.time() + min(backoff_s, _RECONNECT_MAX_S)
            code = exc.code if isinstance(exc, SmtpReplyError) else None
            reply = NO_STARTTLS if isinstance(exc, StartTlsNotOffered) else _describe(exc)
            return SendResult(SendStatus.retry, code, reply, at_connect=True)
        self._connect_failures = 0
        return connection
