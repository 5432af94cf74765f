"""Shared fixtures: a throwaway copy of the sample workspace, and a fresh database on each backend.

The suite always runs on SQLite; with COMMS_TEST_DATABASE_URL set (a PostgreSQL
server URL), every test that asks for `database_url` runs on PostgreSQL too, in
a database of its own that is dropped afterwards.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipeline.storage.engines import upgrade
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

# For tests of what no query decides (pages, downloads, charts, PDFs, signatures): both backends hand
# them the same rows, which the tests of the queries check on each, so a PostgreSQL run of them
# would double their time and test nothing more.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


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


_templates: dict[str, str] = {}  # backend -> a database at the current schema, built once a session


def upgraded(url: str) -> None:
    """What upgrade(URL) makes of the empty database at URL, copied from a template that the real
    migrations built once this session: a test's schema costs a copy, not thirty DDL statements
    (a third of a second a test on PostgreSQL). tests/audience/test_migrations.py runs them on
    each test's database itself."""
    target = make_url(url)
    backend = target.get_backend_name()
    if backend == "sqlite":
        assert target.database is not None
        if backend not in _templates:
            template = Path(tempfile.mkdtemp(prefix="comms-schema-")) / "template.db"
            upgrade(f"sqlite:///{template}")
            _templates[backend] = str(template)
            atexit.register(shutil.rmtree, template.parent, ignore_errors=True)
        shutil.copyfile(_templates[backend], target.database)
        return
    server = os.environ["COMMS_TEST_DATABASE_URL"]
    if backend not in _templates:
        name = f"comms_test_schema_{uuid.uuid4().hex[:12]}"
        _administer(server, f'CREATE DATABASE "{name}"')
        atexit.register(_administer, server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        upgrade(target.set(database=name).render_as_string(hide_password=False))
        _templates[backend] = name
    _administer(
        server,
        f'DROP DATABASE "{target.database}" WITH (FORCE)',
        f'CREATE DATABASE "{target.database}" TEMPLATE "{_templates[backend]}"',
    )


def _administer(server: str, *statements: str) -> None:
    """STATEMENTS, in order, on SERVER outside any transaction (where CREATE and DROP DATABASE run)."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


def fresh_postgres_database(server: str) -> Iterator[str]:
    """A new, empty database on SERVER for the caller's lifetime (tests and benchmarks)."""
    name = f"comms_test_{uuid.uuid4().hex[:12]}"
    _administer(server, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        _administer(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
