"""The commands as an operator runs them: real processes, one-line errors, never a traceback."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.storage.drivers import HEAD_REVISION
from pipeline.workspace.folders import Workspace
from tests.support.cli import comms as run_comms


@pytest.fixture
def comms(workspace: Workspace) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `comms ARGS --workspace WS` as a real process."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_comms(*args, "--workspace", str(workspace.root), cwd=workspace.root)

    return run


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_commands_refuse_an_outdated_schema_until_upgraded(workspace: Workspace, tmp_path: Path, comms):
    path = tmp_path / "c.csv"
    path.write_text("email;first_name\nann@example.com;=1+2\nbroken\n", encoding="utf-8-sig")

    head = HEAD_REVISION
    outdated = (
        f"comms: error: database is at revision none (empty database), code needs {head}: "
        "run `comms db upgrade`"
    )
    # `runs list` reads through the driver, not the engine, and is refused in the same words:
    # on SQLite before the file exists, and after (below).
    assert _one_line_error(comms("runs", "list")) == outdated
    assert _one_line_error(comms("contacts", "import", str(path))) == outdated
    assert _one_line_error(comms("runs", "list")) == outdated

    assert f"upgraded from revision (empty) to {head}" in comms("db", "upgrade").stdout
    assert head in comms("db", "status").stdout
    imported = comms("contacts", "import", str(path), "--list", "customers")
    assert imported.returncode == 0, imported.stderr
    assert "inserted 1, updated 0, unchanged 0, rejected 1 (fields 1)" in imported.stdout
    rejects = list(csv.reader(io.StringIO((tmp_path / "c.rejects.csv").read_text(encoding="utf-8"))))
    assert rejects[1][:2] == ["3", "expected 2 fields, found 1"]

    out = tmp_path / "out.csv"
    assert comms("contacts", "export", "--out", str(out)).returncode == 0
    assert (
        out.read_text(encoding="utf-8")
        == "email,first_name,last_name,locale,timezone\nann@example.com,'=1+2,,,\n"
    )


def test_people_commands(tmp_path: Path, comms):
    comms("db", "upgrade")
    path = tmp_path / "c.csv"
    path.write_text("email,first_name\nann@example.com,Ann\n", encoding="utf-8")
    comms("contacts", "import", str(path))

    shown = json.loads(comms("contacts", "show", "ANN@example.com", "--json").stdout)
    assert shown["contact"]["first_name"] == "Ann"

    assert comms("suppress", "ann@example.com", "--reason", "manual").returncode == 0
    assert comms("unsuppress", "ann@example.com").returncode == 0
    assert _one_line_error(comms("unsuppress", "ann@example.com")) == (
        "comms: error: ann@example.com is not suppressed"
    )
    assert comms("contacts", "delete", "ann@example.com", "--yes").returncode == 0
    erased = json.loads(comms("contacts", "show", "ann@example.com", "--json").stdout)
    assert erased["contact"] is None
    assert erased["suppression"]["reason"] == "erased"
    assert erased["suppression"]["email"] is None
    assert _one_line_error(comms("contacts", "show", "not an address")).startswith(
        "comms: error: invalid email 'not an address'"
    )


def test_audience_commands(workspace: Workspace, tmp_path: Path, comms):
    comms("db", "upgrade")
    path = tmp_path / "c.csv"
    path.write_text("email,plan\na@example.com,pro\nb@example.com,free\n", encoding="utf-8")
    comms("contacts", "import", str(path), "--list", "customers")
    (workspace.audiences_dir / "pro.toml").write_text(
        'description = "Pro plan"\nlists = ["customers"]\n'
        '[[where]]\nfield = "plan"\nop = "eq"\nvalue = "pro"\n'
    )
    (workspace.audiences_dir / "typo.toml").write_text(
        'lists = ["customers"]\n[[where]]\nfield = "plan"\nop = "is"\nvalue = "pro"\n'
    )
    (workspace.audiences_dir / "nolist.toml").write_text('lists = ["vips"]\n')

    listed = comms("audience", "list")
    assert listed.returncode == 1  # typo.toml is listed with its error, the others as usual
    assert "Pro plan" in listed.stdout and "unknown operator" in listed.stdout
    shown = comms("audience", "show", "pro", "--limit", "5")
    assert shown.returncode == 0, shown.stderr
    assert "pro: 1 contacts" in shown.stdout
    assert "a@example.com" in shown.stdout and "b@example.com" not in shown.stdout
    assert "FROM contact" in comms("audience", "explain", "pro").stdout

    exported = comms("contacts", "export", "--audience", "pro")
    assert exported.stdout.splitlines() == [
        "email,first_name,last_name,locale,timezone,plan",
        "a@example.com,,,,,pro",
    ]

    assert _one_line_error(comms("audience", "show", "typo")).startswith(
        "comms: error: audiences/typo.toml:4: where #1 (field \"plan\") op: unknown operator 'is'"
    )
    assert _one_line_error(comms("audience", "show", "nolist")) == (
        'comms: error: audiences/nolist.toml: lists: no list named "vips" in the database'
    )
