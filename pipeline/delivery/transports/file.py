"""A transport that writes each message as an .eml file: runs on a machine with no mail server."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from pipeline.delivery.transports.base import Transport
from pipeline.types import Outgoing, SendResult, SendStatus

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def file_name(message: Outgoing) -> str:
    """Named after the Message-ID (which names run and contact), so a resend after a crash
    replaces its own file instead of adding a second copy."""
    return _UNSAFE.sub("_", message.message_id.strip("<>")).lstrip(".") + ".eml"


class FileTransport(Transport):
    concurrency = 1

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        pass

    async def send(self, message: Outgoing) -> SendResult:
        """Write to a temporary name and rename, so a reader never sees half a message. No fsync:
        that survives a killed process, which is the crash the outbox is designed around."""
        target = self.folder / file_name(message)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            partial.write_bytes(message.data)
            os.replace(partial, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            return SendResult(SendStatus.retry, None, f"cannot write {target}: {exc.strerror}")
        return SendResult(SendStatus.sent, 250, f"2.0.0 written to {target.name}")
