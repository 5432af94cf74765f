"""Migrations: an empty database and one at the first revision with rows both reach head intact."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlmodel import SQLModel

from pipeline.errors import SchemaOutdated
from pipeline.storage import engines
from pipeline.storage.drivers import HEAD_REVISION
from pipeline.workspace.folders import Workspace
from tests.support.cli import in_fresh_interpreter

ROWS_AT_0001 = [
    "INSERT INTO contact (id, email, email_key, email_hash, attributes, created_at, updated_at) VALUES"
    " (1, 'A@example.com', 'a@example.com', 'h1', '{\"plan\": \"pro\"}',"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),"
    " (2, 'b@example.com', 'b@example.com', 'h2', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO mailing_list (id, name, description, created_at) VALUES (1, 'news', '', CURRENT_TIMESTAMP)",
    "INSERT INTO subscription (contact_id, list_id, status, created_at, updated_at)"
    " VALUES (1, 1, 'subscribed', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO suppression (email_hash, email, reason, note, created_at)"
    " VALUES ('h3', NULL, 'erased', '', CURRENT_TIMESTAMP)",
]
TABLES = ("contact", "mailing_list", "subscription", "suppression", "run", "delivery", "event")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(engines.MIGRATIONS_DIR))
    return config


def _upgrade_to(url: str, revision: str) -> None:
    engine = engines.make_engine(url)
    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_the_schema_check_needs_the_newest_migration():
    # connect() compares the database with HEAD_REVISION rather than loading Alembic's scripts.
    assert ScriptDirectory.from_config(_config()).get_current_head() == HEAD_REVISION


def test_an_empty_database_upgrades_to_the_schema_of_the_models(database_url: str):
    assert engines.upgrade(database_url).current is None

    engine = engines.make_engine(database_url)
    try:
        assert engines.schema_status(engine).up_to_date
        with engine.connect() as connection:
            # models.py and the migrations describe the same tables, columns, types and indexes.
            assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    finally:
        engine.dispose()
    assert engines.upgrade(database_url).up_to_date  # a second upgrade changes nothing


def test_a_database_at_the_first_revision_keeps_every_row(database_url: str, workspace: Workspace):
    _upgrade_to(database_url, "0001")
    engine = engines.make_engine(database_url)
    with engine.begin() as connection:
        for statement in ROWS_AT_0001:
            connection.execute(text(statement))
    head = HEAD_REVISION
    with pytest.raises(
        SchemaOutdated, match=rf"^database is at revision 0001, code needs {head}: run `comms db upgrade`$"
    ):
        engines.connect(workspace.settings)

    assert engines.upgrade(database_url).current == "0001"

    with engine.connect() as connection:
        counts = {table: connection.scalar(text(f"SELECT count(*) FROM {table}")) for table in TABLES}
        email = connection.scalar(text("SELECT email FROM contact WHERE id = 1"))
    engine.dispose()
    assert counts == {
        "contact": 2,
        "mailing_list": 1,
        "subscription": 1,
        "suppression": 1,
        "run": 0,
        "delivery": 0,
        "event": 0,
    }
    assert email == "A@example.com"
    engines.connect(workspace.settings).dispose()


def test_an_empty_database_is_refused_until_upgraded(workspace: Workspace):
    head = HEAD_REVISION
    with pytest.raises(SchemaOutdated, match=rf"revision none \(empty database\), code needs {head}"):
        engines.connect(workspace.settings)


def test_commands_on_a_current_database_do_not_load_alembic(database_url: str, workspace: Workspace):
    # Alembic is a tenth of a second and 10 MB of every command's start.
    engines.upgrade(database_url)
    result, loaded = in_fresh_interpreter(
        "import sys; from pipeline.storage import engines; from pipeline.workspace.folders import Workspace; "
        "print(engines.connect(Workspace.open(sys.argv[1]).settings).dialect.name)",
        str(workspace.root),
    )
    assert result.stdout.split() == [database_url.partition(":")[0].partition("+")[0]]
    assert "alembic" not in loaded


def test_a_database_upgraded_by_a_newer_comms_is_refused(database_url: str, workspace: Workspace):
    engines.upgrade(database_url)
    engine = engines.make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_newer'"))
    engine.dispose()
    with pytest.raises(
        SchemaOutdated,
        match=r"^database is at revision 0099_newer, which this comms does not know: "
        r"it was upgraded by a newer version$",
    ):
        engines.connect(workspace.settings)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    engine = engines.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (
            connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            == engines.Database().busy_timeout_s * 1000
        )
    engine.dispose()


def test_plain_postgresql_urls_use_psycopg_3():
    engine = engines.make_engine("postgresql://user@127.0.0.1:1/none")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()
