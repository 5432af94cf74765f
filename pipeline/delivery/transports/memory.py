"""A transport that keeps every message on the instance: for tests and dry runs."""

from __future__ import annotations

from pipeline.delivery.transports.base import Transport
from pipeline.types import Outgoing, SendResult, SendStatus


class MemoryTransport(Transport):
    concurrency = 1

    def __init__(self) -> None:
        self.outbox: list[Outgoing] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, message: Outgoing) -> SendResult:
        self.outbox.append(message)
        return SendResult(SendStatus.sent, 250, "2.0.0 kept in memory")
