"""A discarding SMTP sink on loopback, in a process of its own, for benchmarks.

Minimal on purpose: aiosmtpd tops out near 700 messages/s, below what the clients measured can
do. It offers PIPELINING (RFC 2920) as Postfix does: replies go out in command order, so a
client that pipelines gets them as it expects.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from pipeline.errors import BenchError

HOST = "127.0.0.1"
_EHLO = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n"


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(_EHLO if verb == b"EHLO" else b"250 sink\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                writer.write(b"250 2.0.0 discarded\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:  # MAIL RCPT RSET NOOP
                writer.write(b"250 OK\r\n")
            if not reader._buffer:  # type: ignore[attr-defined]  # flush once per batch of commands
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _serve() -> None:
    server = await asyncio.start_server(_session, HOST, 0, limit=64 * 1024 * 1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    """The sink's process (`python -m pipeline.bench.sink`; terminate it when done) and its port."""
    process = subprocess.Popen([sys.executable, "-m", "pipeline.bench.sink"], stdout=subprocess.PIPE)
    assert process.stdout is not None
    with process.stdout:  # the port is all it ever prints
        port = process.stdout.readline()
    if not port.strip().isdigit():
        process.kill()
        raise BenchError("the benchmark's SMTP sink did not start")
    return process, int(port)


if __name__ == "__main__":
    asyncio.run(_serve())
