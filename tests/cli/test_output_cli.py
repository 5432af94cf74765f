"""Output that scripts and logs read: real `comms` processes with their stdout piped into other programs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.cli import COMMS, comms

# What a cron job or a CI log has: no terminal and no COLUMNS telling Rich how wide one is.
PIPED_ENV = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "COMMS_WORKSPACE")}
PIPED_ENV["COMMS_SECRET"] = "test-secret-for-the-pipes"


def pipe(args: list[str], into: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """`comms ARGS | INTO`: two processes joined by a real pipe; (comms' result, INTO's output)."""
    producer = subprocess.Popen([*COMMS, *args], cwd=cwd, env=PIPED_ENV, stdout=subprocess.PIPE)
    consumer = subprocess.run(into, stdin=producer.stdout, capture_output=True, text=True, timeout=120)
    assert producer.stdout is not None
    producer.stdout.close()
    assert producer.wait(timeout=120) == 0
    assert consumer.returncode == 0, consumer.stderr
    return subprocess.CompletedProcess(args, 0), consumer.stdout


def _prepared(workspace_dir: Path) -> Path:
    for args in (
        ("db", "upgrade"),
        ("contacts", "import", "audiences/customers.csv", "--list", "customers"),
        ("contacts", "import", "audiences/staff.csv", "--list", "staff"),
    ):
        assert comms(*args, cwd=workspace_dir, env=PIPED_ENV).returncode == 0
    return workspace_dir


def test_plan_piped_into_cat_is_not_cut_at_80_columns(workspace_dir: Path) -> None:
    _, out = pipe(["plan", "--days", "100"], ["cat"], _prepared(workspace_dir))
    rows = [line for line in out.splitlines() if "plant-safety-weekly" in line]
    assert rows, out
    assert all("plant-safety-update" in row and "production-team" in row for row in rows)
    assert max(len(line) for line in out.splitlines()) > 80
    assert "…" not in out  # nothing truncated with an ellipsis


def test_send_ends_once_with_where_and_why_and_runs_list_json_goes_through_json_tool(
    workspace_dir: Path,
) -> None:
    root = _prepared(workspace_dir)
    assert comms("suppress", "alex.morgan@example.com", cwd=root, env=PIPED_ENV).returncode == 0
    sent = comms("send", "spring-launch", "--yes", cwd=root, env=PIPED_ENV)
    assert sent.returncode == 0, sent.stderr
    outbox = len(list((root / "outbox").glob("*.eml")))
    assert sent.stdout.count("messages went to") == 1
    assert f"messages went to .eml files in {root / 'outbox'}" in sent.stdout
    [why] = [line for line in sent.stdout.splitlines() if "on the audience's lists" in line]
    on_lists = int(why.split()[0])
    assert f"{outbox} in the audience" in why and "1 suppressed" in why
    assert f"{on_lists - outbox - 1} outside the audience's conditions" in why
    assert "\r" not in sent.stdout and "━" not in sent.stdout  # no progress bar outside a terminal

    _, out = pipe(["runs", "list", "--format", "json"], [sys.executable, "-m", "json.tool"], root)
    [run] = json.loads(out)
    assert run["campaign"] == "spring-launch" and run["status"] == "finished"
    assert run["sent"] == run["recipients"] == outbox and run["failed"] == 0 and run["left"] == 0
    assert run["created"].startswith("20") and "T" in run["created"]
    _, table = pipe(["runs", "list", "--format", "csv"], ["cat"], root)
    assert table.splitlines()[0] == "run,campaign,audience,status,sent,recipients,failed,left,created"


def test_every_command_help_has_an_example_and_keeps_square_brackets(workspace_dir: Path) -> None:
    import typer.main
    from typer.testing import CliRunner

    from pipeline.cli import app

    def commands(group: object, path: list[str]) -> list[list[str]]:
        found = []
        for name, sub in getattr(group, "commands", {}).items():
            found += commands(sub, [*path, name]) if hasattr(sub, "commands") else [[*path, name]]
        return found

    every = commands(typer.main.get_command(app), [])
    assert len(every) > 30
    runner = CliRunner()
    for path in every:
        shown = runner.invoke(app, [*path, "--help"])
        assert shown.exit_code == 0 and "Example:" in shown.output, path
    serve = comms("serve", "--help", cwd=workspace_dir).stdout
    assert "(default: [tracking] listen)" in " ".join(serve.split())


def test_contacts_show_says_since_when_a_list_was_left(workspace_dir: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from pipeline.storage.engines import make_engine, session
    from pipeline.storage.models import Subscription

    root = _prepared(workspace_dir)
    left_at = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    engine = make_engine(f"sqlite:///{root / 'comms.db'}")
    with session(engine) as db:
        db.execute(update(Subscription).values(status="unsubscribed", updated_at=left_at))
    engine.dispose()
    shown = comms("contacts", "show", "alex.morgan@example.com", cwd=root, env=PIPED_ENV)
    assert f"list customers: unsubscribed since {left_at.isoformat()}" in shown.stdout


def test_a_new_workspace_ignores_the_rejects_file_the_importer_writes(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    assert comms("init", str(root), cwd=tmp_path).returncode == 0
    assert comms("db", "upgrade", cwd=root, env=PIPED_ENV).returncode == 0
    (root / "people.csv").write_text("email\nnot-an-address\nok@example.com\n", encoding="utf-8")
    imported = comms("contacts", "import", "people.csv", cwd=root, env=PIPED_ENV)
    assert "rejected rows written to people.rejects.csv" in imported.stdout
    assert (root / "people.rejects.csv").is_file()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    ignored = subprocess.run(["git", "check-ignore", "people.rejects.csv"], cwd=root, capture_output=True)
    assert ignored.returncode == 0
