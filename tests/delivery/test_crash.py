"""`comms send` and `comms worker` as real processes, killed (SIGKILL) or stopped (SIGTERM) mid-run,
then resumed: in one process, and in several sending processes (--processes) whose parent or
children are killed."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from pipeline.bench.send import child_pids
from pipeline.runs import start
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Run
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from tests.service.conftest import wait_until
from tests.support.cli import comms_bytes, start_comms
from tests.support.smtp_server import SmtpServer, message_ids_by_recipient
from tests.support.workspace import CAMPAIGN, configure, open_ws, smtp_sections
from tests.support.zygote import Forked


def _start_sending(
    root: Path, smtp: SmtpServer, hold_after: int, processes: int = 1, command: tuple[str, ...] = ()
) -> Forked:
    """`comms send` (or COMMAND) in a process, with the server holding its replies after HOLD_AFTER
    messages, so the process is mid-run when the test acts however fast or slow the machine is."""
    smtp.hold_after = hold_after
    configure(root, smtp_sections(smtp.port, connections=4, batch_size=40))
    with (root / "send.log").open("wb") as log:
        return start_comms(
            *(command or ("send", CAMPAIGN, "--yes")), f"--processes={processes}", cwd=root, stderr=log
        )


def _wait_for_line(path: Path, text: str, process: Forked, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(encoding="utf-8", errors="replace"):
        assert process.poll() is None and time.monotonic() < deadline, path.read_text(encoding="utf-8")
        time.sleep(0.05)


def _sent(engine: Engine) -> int:
    with session(engine) as db:
        return db.exec(select(func.count()).where(Delivery.status == DeliveryStatus.sent)).scalar_one()


def _held(smtp: SmtpServer, engine: Engine, count: int) -> None:
    """Until COUNT messages were accepted, and recorded as sent: the rest wait for their replies."""
    smtp.wait_for(count, timeout_s=60)
    wait_until(lambda: _sent(engine) == count, 60, f"{count} deliveries recorded as sent")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"


def _kill_mid_run(root: Path, smtp: SmtpServer, engine: Engine, after: int, processes: int = 1) -> Run:
    """`comms send` killed (SIGKILL) once AFTER messages arrived and were recorded; the run it leaves
    behind, with no sending process of it still alive."""
    process = _start_sending(root, smtp, hold_after=after, processes=processes)
    _held(smtp, engine, after)
    senders = child_pids(process.pid)
    assert len(senders) == (processes if processes > 1 else 0)
    process.kill()
    process.wait(timeout=30)
    wait_until(lambda: all(_gone(pid) for pid in senders), 30, "the senders to die with their parent")
    # Their connections close a moment after they show as gone (a loaded machine's kernel takes its
    # time): released before, a held message would be accepted from a sender that is no more.
    wait_until(lambda: smtp.open_connections == 0, 30, "the killed senders' connections to close")
    smtp.release()
    interrupted = _only_run(engine)
    assert interrupted.status == RunStatus.sending  # nobody got to pause it
    return interrupted


def _exactly_once(smtp: SmtpServer, emails: list[str]) -> None:
    assert Counter(rcpt for message in smtp.messages for rcpt in message.rcpt_tos) == Counter(
        dict.fromkeys(emails, 1)
    )


def _only_run(engine: Engine) -> Run:
    with session(engine) as db:
        (run,) = db.exec(select(Run)).scalars().all()
    return run


@pytest.mark.parametrize("processes", [1, 2])
def test_killed_mid_run_then_resumed_sends_everyone_once(
    ws_root: Path, engine: Engine, add_contacts, smtp: SmtpServer, processes: int
) -> None:
    emails = add_contacts(300)
    interrupted = _kill_mid_run(ws_root, smtp, engine, after=60, processes=processes)
    assert len(smtp.messages) < 300
    with session(engine) as db:
        leased = db.exec(select(Delivery).where(Delivery.status == DeliveryStatus.sending)).scalars().all()
    assert leased  # claimed by the dead process under a lease that has not run out

    resumed = comms_bytes("runs", "resume", str(interrupted.id), f"--processes={processes}", cwd=ws_root)

    assert resumed.returncode == 0, resumed.stderr.decode()
    # What was in flight at the kill never got its reply: those connections died with the process.
    _exactly_once(smtp, emails)
    with session(engine) as db:
        deliveries = db.exec(select(Delivery)).scalars().all()
    assert {d.status for d in deliveries} == {DeliveryStatus.sent}
    assert _only_run(engine).status == RunStatus.finished


@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_finishes_in_flight_pauses_the_run_and_exits_cleanly(
    ws_root: Path, engine: Engine, add_contacts, smtp: SmtpServer, processes: int
) -> None:
    emails = add_contacts(300)
    process = _start_sending(ws_root, smtp, hold_after=40, processes=processes)
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

    resumed = comms_bytes("runs", "resume", str(run.id), cwd=ws_root)

    assert resumed.returncode == 0, resumed.stderr.decode()
    received = message_ids_by_recipient(smtp)
    assert set(received) == set(emails)
    assert len(smtp.messages) == 300  # a clean stop leaves nothing to send twice


def test_a_second_send_after_a_kill_refuses_and_names_the_run_to_resume(
    ws_root: Path, engine: Engine, add_contacts, smtp: SmtpServer
) -> None:
    emails = add_contacts(200)
    interrupted = _kill_mid_run(ws_root, smtp, engine, after=40)

    second = comms_bytes("send", CAMPAIGN, "--yes", cwd=ws_root)

    assert second.returncode == 1
    error = second.stderr.decode()
    assert f"already has run {interrupted.id} to customers" in error
    assert f"comms runs resume {interrupted.id}" in error
    assert _only_run(engine).id == interrupted.id  # no second run beside it
    resumed = comms_bytes("runs", "resume", str(interrupted.id), cwd=ws_root)
    assert resumed.returncode == 0, resumed.stderr.decode()
    after = len(smtp.messages)
    third = comms_bytes("send", CAMPAIGN, "--yes", cwd=ws_root)
    assert third.returncode == 1 and b"all 200 already received it" in third.stderr
    assert len(smtp.messages) == after
    received = message_ids_by_recipient(smtp)
    assert set(received) == set(emails)
    assert all(len(set(ids)) == 1 for ids in received.values())  # nobody got two different messages


def test_a_killed_sending_process_is_replaced_and_everyone_gets_exactly_one_message(
    ws_root: Path, engine: Engine, add_contacts, smtp: SmtpServer
) -> None:
    emails = add_contacts(300)
    process = _start_sending(ws_root, smtp, hold_after=60, processes=2)
    _held(smtp, engine, 60)
    doomed, survivor = child_pids(process.pid)

    os.kill(doomed, signal.SIGKILL)
    _wait_for_line(ws_root / "send.log", f"sending process {doomed} ended (signal 9)", process)
    smtp.release()

    assert process.wait(timeout=120) == 0, (ws_root / "send.log").read_text()
    _exactly_once(smtp, emails)
    assert _gone(doomed) and _gone(survivor)
    with session(engine) as db:
        assert {d.status for d in db.exec(select(Delivery)).scalars()} == {DeliveryStatus.sent}
    assert _only_run(engine).status == RunStatus.finished


def test_comms_worker_in_two_processes_sends_every_run_once_and_stops_on_sigterm(
    ws_root: Path, engine: Engine, add_contacts, smtp: SmtpServer
) -> None:
    emails = add_contacts(200)
    process = _start_sending(ws_root, smtp, hold_after=50, processes=2, command=("worker",))
    run = start.start_run(open_ws(ws_root), CAMPAIGN, started_by="test")
    _held(smtp, engine, 50)
    assert len(child_pids(process.pid)) == 2
    smtp.release()
    wait_until(lambda: _only_run(engine).status == RunStatus.finished, 120, f"run {run.id} to finish")

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=60) == 0
    _exactly_once(smtp, emails)
