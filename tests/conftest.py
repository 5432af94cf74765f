"""Shared fixtures: a throwaway copy of the sample workspace, and a fresh database on each backend.

The suite always runs on SQLite; with COMMS_TEST_DATABASE_URL set (a PostgreSQL
server URL), every test that asks for `database_url` runs on PostgreSQL too, in
a database of its own that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipeline.workspace.init import init_workspace
from tests.support.smtp_server import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that accepts everything and keeps it."""
    with SmtpServer() as server:
        yield server


APPROVALS_ON = "[approvals]\nrequired = true\n"


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    """A copy of the sample workspace at the repository root (what `comms init` makes), safe to edit.

    Approvals are turned off here, so that tests of sending need not approve first; the tests of
    approvals (tests/approvals/) turn them back on.
    """
    root = tmp_path / "ws"
    init_workspace(root)
    settings = root / "comms.toml"
    text = settings.read_text(encoding="utf-8")
    assert APPROVALS_ON in text, "the sample comms.toml requires approvals in its [approvals] table"
    settings.write_text(text.replace(APPROVALS_ON, "[approvals]\nrequired = false\n"), encoding="utf-8")
    # SpamAssassin takes seconds a message and is on some machines only: the tests that want it say so.
    with settings.open("a", encoding="utf-8") as appended:
        appended.write("\n[checks]\nspamassassin = false\n")
    return root


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) on SQLite, and on PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'comms.db'}"
        return
    server = os.environ.get("COMMS_TEST_DATABASE_URL")
    if not server:
        pytest.skip("COMMS_TEST_DATABASE_URL not set")
    yield from fresh_postgres_database(server)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database, for tests that only make sense there (SKIP LOCKED, workers)."""
    server = os.environ.get("COMMS_TEST_DATABASE_URL")
    if not server:
        pytest.skip("COMMS_TEST_DATABASE_URL not set")
    yield from fresh_postgres_database(server)


def fresh_postgres_database(server: str) -> Iterator[str]:
    """A new, empty database on SERVER for the caller's lifetime (tests and benchmarks)."""
    name = f"comms_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
