"""Who may use the studio: loopback only unless a token is set; the token on every request; a test
send only from the studio's own page; and `comms studio` stopping cleanly with pages open."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from email import message_from_bytes, policy
from pathlib import Path
from subprocess import PIPE

import httpx
import pytest

from tests.feedback.conftest import SECRET
from tests.studio.conftest import serve_studio
from tests.support.cli import COMMS, assert_one_line_error, comms
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import configure, smtp_sections

TOKEN = "a-studio-token-long-enough-0123456789"


def test_another_host_is_refused_without_a_token(workspace_dir: Path) -> None:
    refused = comms(
        "studio", "--host", "0.0.0.0", "--port", "0", cwd=workspace_dir, env={"COMMS_STUDIO_TOKEN": ""}
    )
    assert_one_line_error(refused, "listens on 127.0.0.1 only", "COMMS_STUDIO_TOKEN")
    short = comms(
        "studio", "--host", "0.0.0.0", "--port", "0", cwd=workspace_dir, env={"COMMS_STUDIO_TOKEN": "short"}
    )
    assert_one_line_error(short, "COMMS_STUDIO_TOKEN must be at least 16 characters")


def test_with_a_token_every_request_must_carry_it(workspace_dir: Path) -> None:
    with serve_studio(workspace_dir, token=TOKEN) as url:
        for path in (
            "/",
            "/campaigns/spring-launch",
            "/runs",
            "/events",
            "/static/studio.js",
            "/contacts?q=ab",
        ):
            assert httpx.get(url + path, timeout=60).status_code == 401, path
        assert httpx.get(url + "/", params={"token": "wrong-" + TOKEN}, timeout=60).status_code == 401
        assert httpx.get(url + "/", headers={"Authorization": "Bearer nope"}, timeout=60).status_code == 401
        assert (
            httpx.get(url + "/", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60).status_code == 200
        )

        with httpx.Client(base_url=url, timeout=60) as browser:
            first = browser.get("/runs", params={"token": TOKEN, "limit": "3"})
            assert first.status_code == 303 and first.headers["location"] == "/runs?limit=3"
            assert (
                "HttpOnly" in first.headers["set-cookie"] and "SameSite=strict" in first.headers["set-cookie"]
            )
            assert browser.get("/").status_code == 200  # the cookie carries it from now on


def test_without_a_token_only_a_loopback_host_name_is_answered(workspace_dir: Path) -> None:
    with serve_studio(workspace_dir) as url:
        assert httpx.get(url + "/", headers={"Host": "localhost"}, timeout=60).status_code == 200
        # A page whose domain was rebound to 127.0.0.1 sends its own name as Host.
        assert httpx.get(url + "/", headers={"Host": "attacker.example"}, timeout=60).status_code == 421


def test_a_test_send_goes_out_as_comms_send_to_and_only_from_the_studios_page(
    workspace_dir: Path, database_url: str, engine: object, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(workspace_dir, smtp_sections(smtp.port))
    monkeypatch.setenv("COMMS_DATABASE_URL", database_url)
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    with serve_studio(workspace_dir) as url:
        target = f"{url}/campaigns/spring-launch"
        form = {"to": "reviewer@example.com, second@example.com"}
        for origin in (None, "null", "http://attacker.example"):
            headers = {"Origin": origin} if origin else {}
            assert httpx.post(target, data=form, headers=headers, timeout=60).status_code == 403
        assert httpx.get(target, params=form, timeout=60).status_code == 200  # GET and HEAD send nothing
        assert httpx.head(target, params=form, timeout=60).status_code == 200
        assert smtp.messages == []

        bad = httpx.post(target, data={"to": "not an address"}, headers={"Origin": url}, timeout=60)
        assert 'id="test-result">test send:' in bad.text and smtp.messages == []

        sent = httpx.post(target, data=form, headers={"Origin": url}, timeout=120)
        assert sent.status_code == 200
        assert "sent: reviewer@example.com (as preview)" in sent.text
        assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["reviewer@example.com", "second@example.com"]
        parsed = message_from_bytes(smtp.messages[0].data, policy=policy.default)
        assert parsed["Subject"].startswith("[TEST] Alex, meet the KF-9")


def test_stopping_the_studio_ends_open_event_streams_at_once(
    workspace_dir: Path, database_url: str, engine: object
) -> None:
    env = {**os.environ, "COMMS_DATABASE_URL": database_url, "COMMS_SECRET": SECRET}
    env.pop("COMMS_WORKSPACE", None)
    command = [*COMMS, "studio", "--port", "0"]
    with subprocess.Popen(
        command, cwd=workspace_dir, env=env, stdout=PIPE, stderr=PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # blocks until the studio listens (or dies)
            assert line.startswith("comms studio on http://127.0.0.1:"), line
            with httpx.stream("GET", f"{line.split()[3]}/events", timeout=60) as stream:
                lines = stream.iter_lines()
                while next(lines) != "event: ready":
                    pass
                asked = time.monotonic()
                process.send_signal(signal.SIGTERM)
                rest = list(lines)  # the server ends the stream; the client does not hang up first
            _, log = process.communicate(timeout=120)
            took = time.monotonic() - asked
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, log
    assert "timeout graceful shutdown exceeded" not in log and "Traceback" not in log, log
    assert "event: change" not in rest
    print(f"studio stopped {took:.2f} s after SIGTERM with an event stream open")
