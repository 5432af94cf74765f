"""The transport interface: hand one message over, get back sent, retry (later) or permanent."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from pipeline.types import Outgoing, SendResult


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
