"""`comms send` as a real process, killed (SIGKILL) or stopped (SIGTERM) mid-run, then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import Engine, select

from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, DeliveryStatus, Run, RunStatus
from tests.support.cli import COMMS
from tests.support.smtp_server import SmtpServer, message_ids_by_recipient
from tests.support.workspace import CAMPAIGN, SECRET, configure, smtp_sections


def _comms(root: Path, *args: str) -> list[str]:
    return [*COMMS, *args, "--workspace", str(root)]


def _env() -> dict[str, str]:
    return os.environ | {"COMMS_SECRET": SECRET}


def _start_sending(root: Path, smtp: SmtpServer, hold_after: int) -> subprocess.Popen[bytes]:
    """`comms send` in a process, with the server holding its replies after HOLD_AFTER messages, so
    the process is mid-run when the test acts however fast or slow the machine is."""
    smtp.hold_after = hold_after
    configure(root, smtp_sections(smtp.port, connections=4, batch_size=40))
    with (root / "send.log").open("wb") as log:
        return subprocess.Popen(
            _comms(root, "send", CAMPAIGN, "--yes"), env=_env(), stdout=subprocess.DEVNULL, stderr=log
        )


def _wait_for_line(path: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(encoding="utf-8", errors="replace"):
        assert process.poll() is None and time.monotonic() < deadline, path.read_text(encoding="utf-8")
        time.sleep(0.05)


def _kill_mid_run(root: Path, smtp: SmtpServer, engine: Engine, after: int) -> Run:
    """`comms send` killed (SIGKILL) once AFTER messages arrived; the run it leaves behind."""
    process = _start_sending(root, smtp, hold_after=after)
    smtp.wait_for(after, timeout_s=60)
    process.kill()
    process.wait(timeout=30)
    smtp.release()
    interrupted = _only_run(engine)
    assert interrupted.status == RunStatus.sending  # nobody got to pause it
    return interrupted


def _only_run(engine: Engine) -> Run:
    with session(engine) as db:
        (run,) = db.exec(select(Run)).scalars().all()
    return run


def test_killed_mid_run_then_resumed_sends_everyone_once(
    ws_root: Path, engine: Engine, add_contacts, smtp: SmtpServer
) -> None:
    emails = add_contacts(300)
    interrupted = _kill_mid_run(ws_root, smtp, engine, after=60)
    assert len(smtp.messages) < 300
    with session(engine) as db:
        leased = db.exec(select(Delivery).where(Delivery.status == DeliveryStatus.sending)).scalars().all()
    assert leased  # claimed by the dead process under a lease that has not run out

    resumed = subprocess.run(
        _comms(ws_root, "runs", "resume", str(interrupted.id)), env=_env(), capture_output=True, timeout=120
    )

    assert resumed.returncode == 0, resumed.stderr.decode()
    received = message_ids_by_recipient(smtp)
    assert set(received) == set(emails)  # no recipient without a copy
    assert all(len(set(ids)) == 1 for ids in received.values())  # any second copy has the same Message-ID
    with session(engine) as db:
        deliveries = db.exec(select(Delivery)).scalars().all()
    assert {d.status for d in deliveries} == {DeliveryStatus.sent}
    assert _only_run(engine).status == RunStatus.finished


def test_sigterm_finishes_in_flight_pauses_the_run_and_exits_cleanly(
    ws_root: Path, engine: Engine, add_contacts, smtp: SmtpServer
) -> None:
    emails = add_contacts(300)
    process = _start_sending(ws_root, smtp, hold_after=40)
    smtp.wait_for(40, timeout_s=60)
    process.send_signal(signal.SIGTERM)
    _wait_for_line(ws_root / "send.log", "stopping on a signal", process)
    smtp.release()  # the messages in flight finish
    assert process.wait(timeout=60) == 2  # paused

    run = _only_run(engine)
    assert run.status == RunStatus.paused
    with session(engine) as db:
        statuses = {d.status for d in db.exec(select(Delivery)).scalars()}
    assert DeliveryStatus.sending not in statuses  # in-flight finished, the rest given back
    sent_before = len(smtp.messages)
    assert sent_before < 300

    resumed = subprocess.run(
        _comms(ws_root, "runs", "resume", str(run.id)), env=_env(), capture_output=True, timeout=120
    )

    assert resumed.returncode == 0, resumed.stderr.decode()
    received = message_ids_by_recipient(smtp)
    assert set(received) == set(emails)
    assert len(smtp.messages) == 300  # a clean stop leaves nothing to send twice


def test_a_second_send_after_a_kill_refuses_and_names_the_run_to_resume(
    ws_root: Path, engine: Engine, add_contacts, smtp: SmtpServer
) -> None:
    emails = add_contacts(200)
    interrupted = _kill_mid_run(ws_root, smtp, engine, after=40)

    second = subprocess.run(_comms(ws_root, "send", CAMPAIGN, "--yes"), env=_env(), capture_output=True)

    assert second.returncode == 1
    error = second.stderr.decode()
    assert f"already has run {interrupted.id} to customers" in error
    assert f"comms runs resume {interrupted.id}" in error
    assert _only_run(engine).id == interrupted.id  # no second run beside it
    resumed = subprocess.run(
        _comms(ws_root, "runs", "resume", str(interrupted.id)), env=_env(), capture_output=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr.decode()
    after = len(smtp.messages)
    third = subprocess.run(_comms(ws_root, "send", CAMPAIGN, "--yes"), env=_env(), capture_output=True)
    assert third.returncode == 1 and b"all 200 already received it" in third.stderr
    assert len(smtp.messages) == after
    received = message_ids_by_recipient(smtp)
    assert set(received) == set(emails)
    assert all(len(set(ids)) == 1 for ids in received.values())  # nobody got two different messages
