"""The transport interface: hand one message over, get back sent, temporary or permanent."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self

from pipeline.message.mime import Outgoing


class SendStatus(StrEnum):
    sent = "sent"
    temporary = "temporary"  # try again later: 4xx, timeout, refused or dropped connection
    permanent = "permanent"  # do not retry this message: 5xx


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    code: int | None  # the SMTP reply code; None when no reply came (no connection, timeout, drop)
    reply: str  # the server's text, enhanced status code included ("5.1.1 user unknown")
    # The failure came while opening the connection (greeting, EHLO, STARTTLS, AUTH), before this
    # message was offered: it says something about the server or our account, not the recipient.
    at_connect: bool = False


class Transport(Protocol):
    """Whoever opens a transport closes it (``async with transport:``), so a caller keeps its
    connections for a whole run. Concrete transports subclass this to inherit the context manager."""

    concurrency: int  # how many send() calls may be in flight at once

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, message: Outgoing) -> SendResult:
        """Never raises for a per-message outcome: the result says what happened."""
        ...

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
