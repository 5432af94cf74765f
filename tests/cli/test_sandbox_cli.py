"""A copy file that tries to run code: `comms plan`, `preview` and `send` refuse it, run nothing
and send nothing (the file transport's outbox stays empty)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import comms

# Each would run `touch` in an unsandboxed Jinja (os is in the globals of Jinja's own modules).
PAYLOADS = [
    "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
    "{{ lipsum.__globals__['os'].popen('touch PWNED').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ contact.email.__class__.__init__.__globals__ }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_payload_in_the_copy_runs_nowhere_and_nothing_is_sent(workspace_dir: Path, payload: str) -> None:
    env = {"COMMS_SECRET": "s" * 40, "COMMS_SMTP_PASSWORD": "hunter2-password"}
    assert comms("db", "upgrade", cwd=workspace_dir).returncode == 0
    assert (
        comms(
            "contacts", "import", "audiences/customers.csv", "--list", "customers", cwd=workspace_dir
        ).returncode
        == 0
    )
    copy = workspace_dir / "templates" / "copy" / "spring-launch.md"
    text = copy.read_text(encoding="utf-8")
    lines = text.splitlines()
    at = lines.index("---", 1) + 2  # the first body line
    copy.write_text(text.replace(lines[at - 1], f"{payload} {lines[at - 1]}", 1), encoding="utf-8")

    planned = comms("plan", "--days", "400", cwd=workspace_dir, env=env)
    previewed = comms("preview", "spring-launch", cwd=workspace_dir, env=env)
    sent = comms("send", "spring-launch", "--yes", cwd=workspace_dir, env=env)

    assert not (workspace_dir / "PWNED").exists()
    assert f"templates/copy/spring-launch.md:{at}:" in planned.stdout + planned.stderr
    for result in (previewed, sent):
        assert result.returncode == 1
        assert result.stderr.startswith(f"comms: error: templates/copy/spring-launch.md:{at}: ")
        assert len(result.stderr.strip().splitlines()) == 1
    outbox = workspace_dir / "outbox"
    assert not outbox.exists() or not any(outbox.iterdir())
