"""Transports hand finished messages to the world; the workspace's [transport] kind picks one."""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import Settings
from pipeline.transports.base import SendResult, SendStatus, Transport
from pipeline.transports.console import ConsoleTransport
from pipeline.transports.file import FileTransport
from pipeline.transports.memory import MemoryTransport
from pipeline.transports.smtp import SmtpTransport

__all__ = [
    "ConsoleTransport",
    "FileTransport",
    "MemoryTransport",
    "SendResult",
    "SendStatus",
    "SmtpTransport",
    "Transport",
    "transport_for",
]


def transport_for(settings: Settings, root: Path) -> Transport:
    """The configured transport, not yet opened; a relative file path is taken from ROOT."""
    kind = settings.transport.kind
    if kind == "smtp":
        return SmtpTransport.from_settings(settings)
    if kind == "console":
        return ConsoleTransport()
    return FileTransport(root / settings.transport.path)
