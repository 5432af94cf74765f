"""The SMTP transport against Postfix's own SMTP server code: smtp-sink (a test server from the
postfix package that discards mail, dumps each transaction to a file, and refuses on request).
It offers PIPELINING unless told to refuse something, so both paths meet a real MTA's parser."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.delivery.transports import SmtpTransport
from pipeline.types import Outgoing, SendResult, SendStatus
from tests.support.smtp_server import HOST, free_port

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
pytestmark = pytest.mark.skipif(not os.access(SMTP_SINK, os.X_OK), reason="postfix's smtp-sink is missing")

Build = Callable[..., Outgoing]
Sink = Callable[..., tuple[int, Path]]


@pytest.fixture
def smtp_sink() -> Iterator[Sink]:
    """smtp_sink(*options) -> (port, folder of dumped transactions), stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []
    # Not under pytest's tmp_path: smtp-sink drops to nobody when started as root, who must reach it.
    top = tempfile.TemporaryDirectory(prefix="smtp-sink-")
    Path(top.name).chmod(0o755)

    def start(*options: str) -> tuple[int, Path]:
        port, folder = free_port(), Path(top.name) / f"sink{len(started)}"
        folder.mkdir()
        folder.chmod(0o777)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        command = [SMTP_SINK, *user, *options, "-d", f"{folder}/%M.", f"{HOST}:{port}", "64"]
        started.append(subprocess.Popen(command))
        deadline = time.monotonic() + 10
        while True:  # listening is the event to wait on: it has no other way to say so
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return port, folder
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    yield start
    for process in started:
        process.terminate()
        process.wait()
    top.cleanup()


def numbered(build: Build, count: int) -> list[Outgoing]:
    return [
        build(to_email=f"r{n}@example.com", message_id=f"<7.{n}@kestrelforge.example>", delivery_id=n)
        for n in range(count)
    ]


def send_all(port: int, messages: list[Outgoing], connections: int = 1) -> list[SendResult]:
    async def scenario() -> list[SendResult]:
        transport = SmtpTransport(HOST, port, security="none", timeout_s=5, connections=connections)
        async with transport:
            return await asyncio.gather(*(transport.send(m) for m in messages))

    return asyncio.run(scenario())


def dumped(folder: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(folder.iterdir())]


def test_messages_reach_postfix_pipelined_over_several_connections(build: Build, smtp_sink: Sink) -> None:
    port, folder = smtp_sink()
    messages = numbered(build, 6)
    results = send_all(port, messages, connections=2)
    assert [r.status for r in results] == [SendStatus.sent] * 6
    assert all(r.code == 250 for r in results)
    transactions = dumped(folder)
    assert len(transactions) == 6
    for message in messages:
        (mine,) = [t for t in transactions if message.message_id.encode() in t]
        assert f"X-Rcpt-Args: <{message.recipients[0]}>".encode() in mine
        # smtp-sink writes the data with LF line ends, after a Received header of its own, and a blank line.
        assert mine.endswith(message.data.replace(b"\r\n", b"\n") + b"\n")


@pytest.mark.parametrize(
    ("option", "status", "code"),
    [("-r", SendStatus.retry, 450), ("-f", SendStatus.permanent, 500)],
)
def test_postfix_refusing_recipients(
    build: Build, smtp_sink: Sink, option: str, status: SendStatus, code: int
) -> None:
    port, folder = smtp_sink(option, "RCPT")
    results = send_all(port, numbered(build, 2))
    assert [(r.status, r.code) for r in results] == [(status, code)] * 2
    assert dumped(folder) == []


def test_postfix_hanging_up_at_data_is_temporary_without_a_code(build: Build, smtp_sink: Sink) -> None:
    port, folder = smtp_sink("-q", "DATA")
    results = send_all(port, numbered(build, 1))
    assert results[0].status is SendStatus.retry and results[0].code is None
    assert dumped(folder) == []
