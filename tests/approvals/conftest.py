"""Fixtures for approvals: the sample workspace requiring approvals, on a real database and SMTP server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.delivery.conftest import add_contacts, engine, ws_root  # noqa: F401  (fixtures)
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import configure, smtp_sections

LEAD = "hannah.reid@kestrelforge.example"
APPROVALS = f'required = true\napprovers = ["{LEAD}", "Sam Okafor"]\nlead_time = "2 days"'


@pytest.fixture
def approving_root(ws_root: Path, smtp: SmtpServer) -> Path:  # noqa: F811  (ws_root is the fixture)
    """The sample on the test database, sending to the SMTP test server, approvals required."""
    configure(ws_root, smtp_sections(smtp.port) | {"approvals": APPROVALS})
    return ws_root
