"""Transports hand finished messages to the world; the workspace's [transport] kind picks one."""

from __future__ import annotations

from pathlib import Path

from pipeline.delivery.transports.base import Transport
from pipeline.delivery.transports.console import ConsoleTransport
from pipeline.delivery.transports.file import FileTransport
from pipeline.delivery.transports.memory import MemoryTransport
from pipeline.delivery.transports.smtp import SmtpTransport
from pipeline.workspace.settings import Settings

__all__ = [
    "ConsoleTransport",
    "FileTransport",
    "MemoryTransport",
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
