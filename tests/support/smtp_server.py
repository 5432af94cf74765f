"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 that can accept, refuse, defer, drop or be down.

Usage (sync or async tests alike: the server runs its own event loop in a thread, so a client on
the test's loop, in another thread or in a subprocess talks to it over a real socket)::

    with SmtpServer(refuse={"gone@example.com": "550 5.1.1 user unknown"}, defer_every=3) as server:
        ...send to 127.0.0.1:server.port...
        server.wait_for(10)                 # block until 10 messages were accepted
        server.messages                     # [Received(mail_from, rcpt_tos, data), ...] in arrival order

Knobs (keyword arguments; also plain attributes, safe to change while running):

- ``refuse={address: "550 5.1.1 user unknown"}``: the RCPT reply for those recipients.
- ``defer_every=N``: every Nth new message gets ``451 4.3.0`` after DATA; its retry (same
  Message-ID, or same bytes when there is none) is accepted.
- ``drop_after_data_every=N``: every Nth new message has its connection cut after the data
  arrived and before any reply (the client cannot know whether it was taken); its retry is accepted.
- ``data_delay_s``: hold each DATA reply that long, so concurrent connections overlap visibly.
- ``hold_after=N``: once N messages were accepted, hold every further DATA reply until ``release()``
  (a test can then act "mid-run" without racing the sender).
- ``credentials=("user", "password")``: require AUTH (PLAIN/LOGIN, allowed without TLS here); a
  wrong password gets ``535 5.7.8``; ``auth_mechanisms=("LOGIN",)`` offers only those.
- ``greeting="554 5.7.1 go away"``: greet every connection with that instead of 220, then hang up.
- ``pipelining=True``: offer PIPELINING (RFC 2920) in the EHLO reply; ``pipelined`` then counts the
  MAIL commands that arrived together with the next command, before their reply went out.
- ``tls_context``: offer STARTTLS with that server context; ``implicit_tls=True`` wraps the whole
  connection in TLS instead.
- ``record=False``: count accepted messages without keeping them (a sink for benchmarks).

``stop()`` then ``start()`` simulates a server that is down for a while (same port).
Counters: ``accepted``, ``connections`` (client connections that sent mail), ``connects`` (every
connection opened, mail or not), ``open_connections`` (open now), ``peak_in_data`` (most messages
inside DATA at the same moment).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class _Handler:
    """aiosmtpd hooks; all state lives on the owning SmtpServer behind its lock."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # Counted here rather than on connect: the controller's own start-up probe never sends MAIL,
        # and the peer (host, port) stays the same across STARTTLS.
        if self.owner.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        # The next command already waiting unread means the client did not wait for this reply.
        waiting = bool(server._reader._buffer)  # type: ignore[attr-defined]
        with self.owner._lock:
            self.owner._peers.add(session.peer)
            self.owner.pipelined += waiting
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.owner.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = self.owner.refuse.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        owner = self.owner
        data = envelope.original_content or b""
        fate = owner._fate(data)
        if fate == "drop":
            await _hang_up(server)
        if fate == "defer":
            return "451 4.3.0 try again later"
        held = False
        while owner.hold_after is not None and owner.accepted >= owner.hold_after:
            held = True
            await asyncio.sleep(0.01)
        if held and _peer_gone(server):
            # A client killed while held has its end of file in the socket, whether or not this
            # loop has read it yet: a message whose sender is gone is never accepted (a busy
            # machine can take longer than any wait to let the loop see the close).
            await _hang_up(server)
        with owner._lock:
            owner._in_data += 1
            owner.peak_in_data = max(owner.peak_in_data, owner._in_data)
        try:
            if owner.data_delay_s:
                await asyncio.sleep(owner.data_delay_s)
        finally:
            with owner._lock:
                owner._in_data -= 1
        owner._accept(Received(envelope.mail_from, tuple(envelope.rcpt_tos), data))
        return "250 2.0.0 OK queued"


async def _hang_up(server: SMTP) -> None:
    """Drop the connection without a reply; connection_lost() then cancels the waiting coroutine."""
    assert server.transport is not None
    server.transport.abort()
    await asyncio.Event().wait()


def _peer_gone(server: SMTP) -> bool:
    """Whether the client has closed or reset its end, asked of the socket itself, not of what the
    event loop has noticed so far: POLLRDHUP, which a pipelining client's next commands, still
    unread before its end of file, do not hide (a peek at the first byte would see them)."""
    assert server.transport is not None
    poller = select.poll()
    poller.register(server.transport.get_extra_info("socket").fileno(), select.POLLRDHUP)
    gone = select.POLLRDHUP | select.POLLHUP | select.POLLERR
    return any(events & gone for _, events in poller.poll(0))


class _Smtp(SMTP):
    """aiosmtpd's protocol, counting connections and greeting with the owner's refusal if it has one."""

    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner
        self._greeted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not the same connection again after STARTTLS
            with self._owner._arrived:
                self._owner.connects += 1
                self._owner.open_connections += 1
                self._owner._arrived.notify_all()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        with self._owner._arrived:
            self._owner.open_connections -= 1
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        refusal = self._owner.greeting
        if not self._greeted and refusal is not None:
            self._greeted = True
            await super().push(refusal)
            assert self.transport is not None
            self.transport.close()
            return
        self._greeted = True
        await super().push(status)


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        return _Smtp(self._owner, self.handler, **self.SMTP_kwargs)


class SmtpServer:
    def __init__(
        self,
        *,
        refuse: dict[str, str] | None = None,
        defer_every: int = 0,
        drop_after_data_every: int = 0,
        data_delay_s: float = 0.0,
        credentials: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        record: bool = True,
        port: int | None = None,
        greeting: str | None = None,
        pipelining: bool = False,
        auth_mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN"),
        smtputf8: bool = True,
    ) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.refuse = dict(refuse or {})
        self.defer_every = defer_every
        self.drop_after_data_every = drop_after_data_every
        self.data_delay_s = data_delay_s
        self.credentials = credentials
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.record = record
        self.smtputf8 = smtputf8
        self.greeting = greeting
        self.pipelining = pipelining
        self.auth_mechanisms = auth_mechanisms
        self.pipelined = 0
        self.hold_after: int | None = None
        self.accepted = 0
        self.connects = 0
        self.open_connections = 0
        self.peak_in_data = 0
        self._in_data = 0
        self._new_messages = 0
        self._held_back: set[bytes] = set()
        self._peers: set[object] = set()
        self._messages: list[Received] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._controller: Controller | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "ready_timeout": 10,
            "enable_SMTPUTF8": self.smtputf8,
        }
        if self.credentials is not None:
            # AUTH is enforced in handle_MAIL: aiosmtpd's own auth_required warns on every
            # connection when TLS is not required too, which is the point of a loopback test.
            kwargs |= {"authenticator": self._authenticate, "auth_require_tls": False}
            kwargs["auth_exclude_mechanism"] = {"LOGIN", "PLAIN"} - set(self.auth_mechanisms)
        if self.implicit_tls:
            kwargs["ssl_context"] = self.tls_context
        elif self.tls_context is not None:
            kwargs |= {"tls_context": self.tls_context, "require_starttls": True}
        controller = _Controller(self, _Handler(self), **kwargs)
        controller.start()
        # The controller's start-up probe is a connection too, not a client's: wait for it, forget it.
        with self._arrived:
            self._arrived.wait_for(lambda: self.connects > 0, timeout=10)
            self.connects = 0
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def release(self) -> None:
        """Let held DATA replies go (see ``hold_after``)."""
        self.hold_after = None

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what arrived ----------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Distinct client connections that sent at least one MAIL FROM."""
        with self._lock:
            return len(self._peers)

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        """Block until COUNT messages were accepted; AssertionError after TIMEOUT_S."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while self.accepted < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.accepted} of {count} messages arrived in {timeout_s} s")
                self._arrived.wait(left)

    # -- internals (called from the server thread) -----------------------------------------------

    def _fate(self, data: bytes) -> str:
        """'accept', 'defer' or 'drop' for this message; a held-back message is accepted next time."""
        found = _MESSAGE_ID.search(data)
        key = found.group(1) if found else hashlib.sha256(data).digest()
        with self._lock:
            if key in self._held_back:
                return "accept"
            self._new_messages += 1
            n = self._new_messages
            for every, fate in ((self.drop_after_data_every, "drop"), (self.defer_every, "defer")):
                if every and n % every == 0:
                    self._held_back.add(key)
                    return fate
        return "accept"

    def _accept(self, received: Received) -> None:
        with self._arrived:
            self.accepted += 1
            if self.record:
                self._messages.append(received)
            self._arrived.notify_all()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        user, password = self.credentials
        ok = isinstance(auth_data, LoginPassword) and auth_data == (user.encode(), password.encode())
        return AuthResult(success=ok, handled=False)  # handled=True would mean "I already replied"


MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def message_ids_by_recipient(server: SmtpServer) -> dict[str, list[bytes]]:
    """Every Message-ID each recipient got, one entry per copy received."""
    received: dict[str, list[bytes]] = {}
    for message in server.messages:
        found = MESSAGE_ID.search(message.data)
        assert found is not None
        for rcpt in message.rcpt_tos:
            received.setdefault(rcpt, []).append(found[1])
    return received
