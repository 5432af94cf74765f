"""A small asyncio SMTP client for the sending hot path (RFC 5321, STARTTLS 3207, AUTH 4954, PIPELINING 2920).

Why not aiosmtplib: it re-scans every message with two regexes for line ends and leading dots and
parses every address with ``email.utils``, which was 44% of a run's CPU (issue 18), and it has no
PIPELINING. Outgoing.data is SMTP-ready by contract (CRLF line ends, no line starting with a dot:
see pipeline.message.mime), so here it is written as is. With PIPELINING a transaction costs two
round trips (MAIL+RCPT+DATA, then the data) instead of three plus one per recipient.

Errors: a reply that ends the connection set-up raises SmtpReplyError; a dead, slow or broken
connection raises OSError, TimeoutError or ssl.SSLError (see SmtpConnection.send for the rest).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass


class SmtpReplyError(Exception):
    """The server answered the connection set-up (greeting, EHLO, STARTTLS, AUTH) with a refusal."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


class StartTlsNotOffered(ConnectionError):
    """STARTTLS was asked for and the server does not offer it: nothing is sent in the clear."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str  # the lines after the code, joined by newlines ("5.1.1 user unknown")


@dataclass(frozen=True, slots=True)
class Transaction:
    """What one MAIL transaction came to: the deciding reply, and the recipients refused on the way."""

    reply: Reply
    accepted: bool  # the data was taken (for at least one recipient)
    refused: tuple[tuple[str, Reply], ...] = ()


class SmtpConnection:
    """One connection to one server; not for concurrent use (the transport pools several)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout_s: float) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout_s = timeout_s
        self.extensions: dict[str, str] = {}

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        security: str,
        tls_context: ssl.SSLContext | None,
        local_hostname: str,
        username: str | None,
        password: str | None,
        timeout_s: float,
        pipelining: bool = True,
    ) -> SmtpConnection:
        """Connect, read the greeting, EHLO, STARTTLS (SECURITY "starttls") and log in; TLS_CONTEXT
        is needed for "tls" and "starttls"."""
        if security != "none" and tls_context is None:
            raise ValueError(f"security {security!r} needs a TLS context")
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=tls_context if security == "tls" else None,
                server_hostname=host if security == "tls" else None,
            )
        connection = cls(reader, writer, timeout_s)
        try:
            await connection._expect(await connection._reply(), 220)
            await connection._hello(local_hostname)
            if security == "starttls":
                if "STARTTLS" not in connection.extensions:
                    raise StartTlsNotOffered("the server does not offer STARTTLS")
                await connection._expect(await connection._command(b"STARTTLS\r\n"), 220)
                assert tls_context is not None  # refused above
                async with asyncio.timeout(timeout_s):
                    await writer.start_tls(tls_context, server_hostname=host)
                await connection._hello(local_hostname)
            if username:
                await connection._login(username, password or "")
        except BaseException:
            connection.abort()
            raise
        if not pipelining:
            connection.extensions.pop("PIPELINING", None)
        return connection

    @property
    def usable(self) -> bool:
        """False once the server hung up or the connection was closed: open a new one."""
        return not (self._reader.at_eof() or self._writer.is_closing())

    async def send(self, mail_from: str, recipients: tuple[str, ...], data: bytes) -> Transaction:
        """One MAIL transaction for SMTP-ready DATA. A refusal is a Transaction (the connection is
        RSET and stays usable); OSError, TimeoutError or asyncio.IncompleteReadError mean the
        connection is broken and its state unknown, and a 421 closes it (the server is leaving)."""
        # RFC 6531: a non-ASCII address needs SMTPUTF8 on the whole transaction.
        utf8 = not all(address.isascii() for address in (mail_from, *recipients))
        mail = f"MAIL FROM:<{mail_from}>{' SMTPUTF8' if utf8 else ''}\r\n".encode()
        rcpts = [f"RCPT TO:<{rcpt}>\r\n".encode() for rcpt in recipients]
        if "PIPELINING" in self.extensions:
            self._writer.write(b"".join([mail, *rcpts, b"DATA\r\n"]))
            async with asyncio.timeout(self._timeout_s):
                mail_reply = await self._reply()
                rcpt_replies = [await self._reply() for _ in rcpts]
                data_reply = await self._reply()
        else:
            mail_reply = await self._command(mail)
            if mail_reply.code >= 300:
                return await self._refused(mail_reply)
            rcpt_replies = []
            for rcpt in rcpts:
                rcpt_replies.append(await self._command(rcpt))
            data_reply = None
        if mail_reply.code >= 300:
            return await self._refused(mail_reply, data_reply)
        refused = tuple(
            (rcpt, reply) for rcpt, reply in zip(recipients, rcpt_replies, strict=True) if reply.code >= 300
        )
        if len(refused) == len(recipients):
            return await self._refused(refused[0][1], data_reply, refused)
        if data_reply is None:
            data_reply = await self._command(b"DATA\r\n")
        if data_reply.code != 354:
            return await self._refused(data_reply, None, refused)
        # One write: two would cost a second system call and TCP segment a message, for 3 bytes.
        self._writer.writelines((data, b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))
        async with asyncio.timeout(self._timeout_s):
            await self._writer.drain()
            final = await self._reply()
        if final.code >= 300:
            return await self._refused(final, None, refused)
        return Transaction(final, accepted=True, refused=refused)

    async def quit(self) -> None:
        """QUIT politely and close; a server that does not answer is hung up on."""
        try:
            await self._command(b"QUIT\r\n")
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            await self.close()

    async def close(self) -> None:
        """Close and wait for it (a TLS connection finishes closing on later turns of the loop)."""
        self._writer.close()
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._writer.wait_closed()
        except (OSError, TimeoutError, ssl.SSLError):
            self.abort()

    def abort(self) -> None:
        self._writer.transport.abort()

    # -- internals ------------------------------------------------------------------------------

    async def _refused(
        self, reply: Reply, data_reply: Reply | None = None, refused: tuple[tuple[str, Reply], ...] = ()
    ) -> Transaction:
        """Undo a refused transaction with RSET so the connection carries on (RFC 5321 4.1.1.5).
        A pipelined DATA that a server answered 354 anyway gets an empty message first (RFC 2920 3.1)."""
        if reply.code == 421:
            await self.close()
            return Transaction(reply, accepted=False, refused=refused)
        if data_reply is not None and data_reply.code == 354:
            await self._command(b".\r\n")
        await self._command(b"RSET\r\n")
        return Transaction(reply, accepted=False, refused=refused)

    async def _command(self, line: bytes) -> Reply:
        self._writer.write(line)
        async with asyncio.timeout(self._timeout_s):
            return await self._reply()

    async def _reply(self) -> Reply:
        """Read one (possibly multi-line) reply; the caller holds the timeout."""
        lines = []
        while True:
            line = await self._reader.readline()
            if not line.endswith(b"\n"):
                raise asyncio.IncompleteReadError(line, None)
            lines.append(line[4:].rstrip(b"\r\n").decode("utf-8", errors="replace"))
            if line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    raise ConnectionError(f"not an SMTP reply: {line[:80]!r}") from None
                return Reply(code, "\n".join(lines))

    async def _expect(self, reply: Reply, code: int) -> None:
        if reply.code != code:
            raise SmtpReplyError(reply.code, reply.text)

    async def _hello(self, local_hostname: str) -> None:
        reply = await self._command(f"EHLO {local_hostname}\r\n".encode())
        if reply.code in (500, 502):  # an old server that knows no EHLO: HELO, no extensions
            reply = await self._command(f"HELO {local_hostname}\r\n".encode())
            self.extensions = {}
        else:
            self.extensions = {
                keyword.upper(): params
                for keyword, _, params in (line.partition(" ") for line in reply.text.split("\n")[1:])
                if keyword
            }
        await self._expect(reply, 250)

    async def _login(self, username: str, password: str) -> None:
        """AUTH PLAIN when offered, else LOGIN (RFC 4954; LOGIN is the old draft most servers keep)."""
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in mechanisms or "LOGIN" not in mechanisms:
            secret = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
            reply = await self._command(f"AUTH PLAIN {secret}\r\n".encode())
        else:
            reply = await self._command(b"AUTH LOGIN\r\n")
            for answer in (username, password):
                if reply.code != 334:
                    break
                reply = await self._command(base64.b64encode(answer.encode()) + b"\r\n")
        await self._expect(reply, 235)
