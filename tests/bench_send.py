"""Benchmark: the whole send pipeline against the bare transport, into a discarding SMTP sink on loopback.

    python -m tests.bench_send --recipients 20000 [--connections 4] [--dkim] [--database URL]

Prints, best of --repeat alternating rounds, for the same sink and the same number of connections:

- ceiling: pre-built message bytes pushed by aiosmtplib alone (no database, no rendering);
- pipeline: `start_run` (assemble, freeze, snapshot the audience into the outbox) and then
  `dispatch_run` (claim, personalise, build MIME, optionally DKIM-sign, send, record each outcome);
- messages per second, the pipeline's share of the ceiling, and the peak memory (RSS) of the
  process that sent, which should not grow with the number of recipients.

The sink is a minimal asyncio SMTP server in its own process (aiosmtpd tops out near 700
messages/s, below what the client can do); each phase also runs in a process of its own so
its peak memory is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
SECRET = "bench-secret-at-least-32-bytes-long"
CAMPAIGN = "billing-portal"  # the sample copy whose message is closest to 20 KB

# -- the sink ----------------------------------------------------------------------------------------


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Just enough SMTP for a client that does not pipeline: every command gets its reply, DATA is dropped."""
    writer.write(b"220 sink ESMTP\r\n")
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                writer.write(b"250 2.0.0 discarded\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:  # HELO MAIL RCPT RSET NOOP
                writer.write(b"250 OK\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _serve(port_queue: multiprocessing.Queue) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_session, HOST, 0, limit=64 * 1024 * 1024)
        port_queue.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU time of this process, all threads: a steadier figure than the rate on a busy machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the workspace -----------------------------------------------------------------------------------


def _workspace(root: Path, port: int, connections: int, database: str | None, dkim: bool) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from pipeline.workspace.init import init_workspace
    from tests.support.workspace import configure

    init_workspace(root)
    url = database or f"sqlite:///{root / 'comms.db'}"
    sections = {
        "database": f'url = "{url}"',
        "transport": f'kind = "smtp"\nurl = "smtp://{HOST}:{port}"\nsecurity = "none"\n'
        f"connections = {connections}",
        "rate": "per_second = 1000000\nper_domain_per_second = 1000000",
        "dispatch": "batch_size = 500",
        "approvals": "required = false",  # the gate is measured by its own tests, not here
    }
    if dkim:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (root / "dkim.pem").write_bytes(pem)
        sections["dkim"] = 'selector = "bench"\ndomain = "kestrelforge.example"\nkey_file = "dkim.pem"'
    configure(root, sections)


def _contacts(root: Path, count: int) -> None:
    from pipeline.audience.importer import import_contacts
    from pipeline.storage.engines import make_engine, upgrade
    from pipeline.workspace.folders import Workspace

    url = Workspace.open(root).settings.database.url
    upgrade(url)
    path = root / "bench.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "last_name", "company", "plan"])
        for i in range(count):
            writer.writerow(
                [f"person{i}@example{i % 50}.com", f"First{i}", f"Last{i}", f"Company {i}", "pro"]
            )
    engine = make_engine(url)
    import_contacts(engine, path, list_name="customers-billing-bench")
    engine.dispose()


# -- the two measurements ----------------------------------------------------------------------------


def _ceiling(port: int, count: int, connections: int, data: bytes, results: multiprocessing.Queue) -> None:
    from aiosmtplib import SMTP

    async def one_connection(share: int, offset: int) -> None:
        client = SMTP(hostname=HOST, port=port, use_tls=False, start_tls=False)
        await client.connect()
        for i in range(offset, offset + share):
            await client.sendmail("bounces@kestrelforge.example", [f"person{i}@example.com"], data)
        await client.quit()

    async def main() -> float:
        shares = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]
        offsets = [sum(shares[:i]) for i in range(connections)]
        start = time.perf_counter()
        await asyncio.gather(*(one_connection(s, o) for s, o in zip(shares, offsets, strict=True)))
        return time.perf_counter() - start

    cpu = _cpu_s()
    elapsed = asyncio.run(main())
    results.put({"elapsed_s": elapsed, "cpu_s": _cpu_s() - cpu, "peak_mb": _peak_rss_mb()})


def _pipeline(root: str, results: multiprocessing.Queue) -> None:
    from pipeline.runs import start
    from pipeline.workspace.folders import Workspace

    ws = Workspace.open(root)
    began = time.perf_counter()
    run = start.start_run(ws, CAMPAIGN, "bench", started_by="bench")  # a new run: everyone again
    started, cpu = time.perf_counter(), _cpu_s()
    report = start.dispatch_run(ws, run.id or 0)
    done = time.perf_counter()
    results.put(
        {
            "snapshot_s": started - began,
            "elapsed_s": done - started,
            "cpu_s": _cpu_s() - cpu,
            "sent": report.counts["sent"],
            "peak_mb": _peak_rss_mb(),
        }
    )


def _sample_message(root: Path) -> bytes:
    """One message of the campaign as the pipeline builds it, for the ceiling to send as is."""
    from pipeline.assembly.campaign import assemble
    from pipeline.assembly.personalize import Personalizer
    from pipeline.assembly.tracking import track_campaign
    from pipeline.message.headers import message_id
    from pipeline.message.mime import MessageBuilder
    from pipeline.message.urls import recipient_links, recipient_tracking
    from pipeline.types import Recipient
    from pipeline.workspace.folders import Workspace

    ws = Workspace.open(root)
    campaign, _ = track_campaign(assemble(ws, CAMPAIGN), ws.settings)
    links = recipient_links(ws.settings, 1)
    rendered = Personalizer(campaign.templates).render(
        Recipient("person0@example.com", "First0", "Last0", attributes={"company": "Company 0"}),
        links,
        recipient_tracking(ws.settings, 1),
    )
    builder = MessageBuilder(ws.settings, campaign=CAMPAIGN, department=campaign.department, run_id=1)
    return builder.build(
        rendered,
        to_email="person0@example.com",
        to_name="First0 Last0",
        message_id=message_id(1, 1, "kestrelforge.example"),
        links=links,
        delivery_id=1,
    ).data


def _in_child(target, *args) -> dict:  # type: ignore[no-untyped-def]
    results: multiprocessing.Queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=target, args=(*args, results))
    child.start()
    outcome = results.get()
    child.join()
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--dkim", action="store_true", help="sign every message (RSA-2048)")
    parser.add_argument("--database", help="database URL (default: a SQLite file); an empty database")
    parser.add_argument(
        "--repeat", type=int, default=3, help="alternate the two this many times; best of each"
    )
    args = parser.parse_args()
    os.environ["COMMS_SECRET"] = SECRET
    os.environ.pop("COMMS_SMTP_URL", None)
    os.environ.pop("COMMS_DATABASE_URL", None)

    ports: multiprocessing.Queue = multiprocessing.Queue()
    sink = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    sink.start()
    port = ports.get()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        _workspace(root, port, args.connections, args.database, args.dkim)
        (root / "audiences" / "bench.toml").write_text(
            'lists = ["customers-billing-bench"]\n', encoding="utf-8"
        )
        _contacts(root, args.recipients)
        data = _sample_message(root)

        ceilings, pipelines = [], []
        for _ in range(args.repeat):
            # Alternated, and the best of each kept: the machine is shared and noisy.
            ceilings.append(_in_child(_ceiling, port, args.recipients, args.connections, data))
            pipelines.append(_in_child(_pipeline, str(root)))
        ceiling = min(ceilings, key=lambda r: r["elapsed_s"])
        pipeline = min(pipelines, key=lambda r: r["elapsed_s"])
    sink.terminate()

    ceiling_rate = args.recipients / ceiling["elapsed_s"]
    pipeline_rate = pipeline["sent"] / pipeline["elapsed_s"]
    print(
        f"{args.recipients} recipients, {len(data) / 1024:.1f} KB messages, {args.connections} connections, "
        f"DKIM {'on' if args.dkim else 'off'}, database {args.database or 'SQLite'}"
    )
    share = pipeline_rate / ceiling_rate
    print(f"ceiling  (aiosmtplib, pre-built bytes): {ceiling_rate:6.0f}/s, peak {ceiling['peak_mb']:.0f} MB")
    print(
        f"pipeline (outbox, render, MIME, send):  {pipeline_rate:6.0f}/s, peak {pipeline['peak_mb']:.0f} MB"
    )
    print(f"pipeline / ceiling: {share:.0%}")
    print(
        f"CPU per message (all threads): ceiling {ceiling['cpu_s'] / args.recipients * 1000:.2f} ms,"
        f" pipeline {pipeline['cpu_s'] / pipeline['sent'] * 1000:.2f} ms"
    )
    print(f"snapshot (assemble, audience into the outbox): {pipeline['snapshot_s']:.1f} s")


if __name__ == "__main__":
    main()
