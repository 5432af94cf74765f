"""Failures outside comms' own checks (files, the database) still reach a person as one line."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.support.cli import assert_one_line_error, comms
from tests.support.workspace import configure


def test_an_unwritable_output_path_is_one_line(workspace_dir: Path) -> None:
    assert comms("db", "upgrade", cwd=workspace_dir).returncode == 0
    result = comms("contacts", "export", "--out", "/nonexistent/dir/contacts.csv", cwd=workspace_dir)
    assert_one_line_error(result, "/nonexistent/dir/contacts.csv", "No such file or directory")


def test_an_unreachable_database_is_one_line(workspace_dir: Path) -> None:
    env = {"COMMS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/comms"}
    result = comms("audience", "show", "customers", cwd=workspace_dir, env=env)
    assert_one_line_error(result, "127.0.0.1", "refused")
    # `runs list` reads through the driver itself, not the engine: told in the same words.
    assert comms("runs", "list", cwd=workspace_dir, env=env).stderr == result.stderr


BUSY_S = 1.5


def test_a_locked_database_is_one_line_after_one_wait(workspace_dir: Path) -> None:
    assert comms("db", "upgrade", cwd=workspace_dir).returncode == 0
    configure(workspace_dir, {"database": f"busy_timeout_s = {BUSY_S}"})
    holder = sqlite3.connect(workspace_dir / "comms.db", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE run SET status = status")  # takes the lock: no one else reads
        shown = comms("runs", "show", cwd=workspace_dir)
        started = time.monotonic()
        listed = comms("runs", "list", cwd=workspace_dir)
        waited = time.monotonic() - started
    finally:
        holder.close()
    assert_one_line_error(shown, "comms.db", "database is locked")
    assert listed.stderr == shown.stderr
    # [database] busy_timeout_s, once: not sqlite3's 5 s, nor once for the driver and again for the engine.
    assert BUSY_S <= waited < 2 * BUSY_S


def test_a_file_that_is_not_utf8_is_one_line(workspace_dir: Path) -> None:
    (workspace_dir / "audiences" / "latin1.toml").write_bytes('description = "Caf\xe9"\n'.encode("latin-1"))
    assert comms("db", "upgrade", cwd=workspace_dir).returncode == 0
    result = comms("audience", "show", "latin1", cwd=workspace_dir)
    assert_one_line_error(result, "audiences/latin1.toml", "not UTF-8")


def test_secrets_in_comms_toml_are_refused(workspace_dir: Path) -> None:
    settings = workspace_dir / "comms.toml"
    settings.write_text(settings.read_text().replace("[transport]\n", '[transport]\npassword = "hunter2"\n'))
    result = comms("preview", "spring-launch", cwd=workspace_dir)
    assert_one_line_error(result, "comms.toml:", "transport.password", "environment")
