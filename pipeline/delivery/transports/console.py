"""A transport that prints each message: see exactly what would go out, send nothing."""

from __future__ import annotations

import sys
from typing import TextIO

from pipeline.delivery.transports.base import Transport
from pipeline.types import Outgoing, SendResult, SendStatus


class ConsoleTransport(Transport):
    concurrency = 1

    def __init__(self, stream: TextIO | None = None) -> None:
        # Looked up at send time by default so pytest's capsys and redirections see the output.
        self._stream = stream

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, message: Outgoing) -> SendResult:
        stream = self._stream or sys.stdout
        stream.write(
            f"MAIL FROM:<{message.envelope_from}> RCPT TO:{','.join(f'<{r}>' for r in message.recipients)}\n"
        )
        stream.write(message.data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
        stream.write("-" * 78 + "\n")
        stream.flush()
        return SendResult(SendStatus.sent, 250, "2.0.0 printed")
