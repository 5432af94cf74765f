"""`comms bench send`: the whole send pipeline against bare clients, in one run, into one sink.

Every figure comes from one run against one discarding sink on loopback (pipeline.bench.sink), so
their ratios hold even on a shared, noisy machine where the absolute rates do not. Each client
runs in a freshly spawned process (fork+exec) and reports its own peak memory: VmHWM of its own
address space from /proc, which, unlike getrusage's ru_maxrss, does not carry the parent's peak
across fork and exec. Measured, for the same message bytes and the same number of connections:

- smtp-source (Postfix's C load generator) when installed: the physical limit of sink and wire;
- aiosmtplib alone and comms' own SMTP client alone, sending pre-built message bytes;
- comms send: a real run (outbox claim, personalise, MIME, send, record), without DKIM and signed
  with RSA-2048, Ed25519 and both, in one process and, with --processes N, in N sending processes
  (their CPU counted with the parent's, each one's own peak sampled from /proc while it runs);
  the processes that start the run (runs.apart: runs.prepare's assembly and checks, then
  runs.start's audience and snapshot) report their own peaks.

What a client pays once, whatever the audience (its imports; for comms send also opening the
workspace and starting the run: freeze, snapshot) is its start-up, shown apart and not counted in
its rate or its CPU per message, which are what grows with the audience.

Figures are not compared to targets here: this prints, a person judges (see MEASURED.md).
"""

from __future__ import annotations

import asyncio
import csv
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.bench.sink import HOST, start_sink
from pipeline.errors import BenchError

if TYPE_CHECKING:
    from pipeline.runs.prepare import Prepared

CAMPAIGN = "billing-portal"  # the sample copy whose message is closest to 25 KB
LIST = "customers-billing-bench"
SENDER = "bounces@kestrelforge.example"


@dataclass(frozen=True)
class Figure:
    name: str
    messages: int
    elapsed_s: float
    cpu_s: float  # the client process's own CPU, all threads, and its sending processes'
    peak_mb: float | None  # the client process's own peak RSS (VmHWM); None when not measurable
    sender_peaks_mb: tuple[float, ...] = ()  # each sending process's own peak (comms send --processes)
    startup_cpu_s: float = 0.0  # paid once before the first message, not in cpu_s (module docstring)
    starter_peaks_mb: tuple[float, ...] = ()  # comms send: the own peaks of the run's start (content, run)

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed_s

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s / self.messages * 1000


@dataclass(frozen=True)
class SendBench:
    recipients: int
    connections: int
    message_kb: float
    database: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    figures: list[Figure]

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


def own_peak_mb(pid: int | str = "self") -> float | None:
    """PID's own peak resident memory (VmHWM): its address space's, so not carried across exec."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _cpu_s() -> float:
    """This process's CPU and its finished children's (the sending processes of comms send)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def child_pids(pid: int) -> list[int]:
    """The processes PID started (and has not yet reaped), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class _ChildPeaks:
    """Each child process's own peak memory (VmHWM), sampled from /proc while it runs: VmHWM only
    grows, so the last sample is its peak to within one sampling interval."""

    def __init__(self, every_s: float = 0.05) -> None:
        self.peaks: dict[int, float] = {}
        self._every_s = every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self._every_s):
            for pid in child_pids(os.getpid()):
                peak = own_peak_mb(pid)
                if peak is not None:
                    self.peaks[pid] = max(self.peaks.get(pid, 0.0), peak)

    def __enter__(self) -> _ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _shares(count: int, connections: int) -> list[range]:
    bounds = [count * i // connections for i in range(connections + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(connections)]


# -- the measurements, each run in a spawned child ---------------------------------------------------


# Messages sent; wall and CPU seconds of start-up not to count; the sending processes' own peaks;
# the own peaks of the processes that started the run (comms send; () for the bare clients).
Measured = tuple[int, float, float, tuple[float, ...], tuple[float, ...]]


def _since(wall_s: float, cpu_s: float) -> tuple[float, float]:
    """Wall and CPU seconds since WALL_S and CPU_S (time.perf_counter(), _cpu_s())."""
    return time.perf_counter() - wall_s, _cpu_s() - cpu_s


def _aiosmtplib_alone(port: int, count: int, connections: int, data: bytes) -> Measured:
    entered = time.perf_counter(), _cpu_s()
    from aiosmtplib import SMTP

    startup = _since(*entered)

    async def one_connection(share: range) -> None:
        client = SMTP(hostname=HOST, port=port, use_tls=False, start_tls=False)
        await client.connect()
        for i in share:
            await client.sendmail(SENDER, [f"person{i}@example.com"], data)
        await client.quit()

    async def main() -> None:
        await asyncio.gather(*(one_connection(share) for share in _shares(count, connections)))

    asyncio.run(main())
    return count, *startup, (), ()


def _client_alone(port: int, count: int, connections: int, data: bytes) -> Measured:
    entered = time.perf_counter(), _cpu_s()
    from pipeline.delivery.transports.smtp import SmtpTransport
    from pipeline.types import Outgoing, SendStatus

    startup = _since(*entered)
    transport = SmtpTransport(HOST, port, security="none", connections=connections)

    async def one_connection(share: range) -> int:
        sent = 0
        for i in share:
            message = Outgoing(SENDER, (f"person{i}@example.com",), data, f"<{i}@bench>")
            sent += (await transport.send(message)).status is SendStatus.sent
        return sent

    async def main() -> int:
        async with transport:
            return sum(await asyncio.gather(*(one_connection(s) for s in _shares(count, connections))))

    return asyncio.run(main()), *startup, (), ()


# [dkim] tables of the signing variants measured, by the name they are shown under.
_DKIM = {
    "": None,
    ", DKIM RSA-2048": 'key_file = "dkim.pem"\nselector = "bench"',
    ", DKIM Ed25519": 'ed25519_key_file = "dkim-ed25519.pem"\ned25519_selector = "bench-ed"',
    ", DKIM RSA-2048 + Ed25519": 'key_file = "dkim.pem"\nselector = "bench"\n'
    'ed25519_key_file = "dkim-ed25519.pem"\ned25519_selector = "bench-ed"',
}


def _comms_send(root: str, variant: str, processes: int) -> Measured:
    """As `comms send` does it: the run started in a process of its own, which has its content
    prepared in another (runs.apart), and sent from here."""
    entered = time.perf_counter(), _cpu_s()
    from pipeline.runs import apart, dispatch
    from pipeline.workspace.folders import Workspace
    from pipeline.workspace.tomlfile import replace_tables

    keys = _DKIM[variant]
    dkim_table = None if keys is None else f'domain = "kestrelforge.example"\n{keys}'
    replace_tables(Path(root) / "comms.toml", {"dkim": dkim_table})
    ws = Workspace.open(root)
    run_id, starter_peaks = apart.in_fresh_process("pipeline.bench.send:_start_run", root)
    startup = _since(*entered)  # the children's CPU with it: _cpu_s counts the children waited for
    if processes == 1:
        report = dispatch.dispatch_run(ws, run_id, processes=1)
        return report.counts["sent"], *startup, (), starter_peaks
    with _ChildPeaks() as children:
        report = dispatch.dispatch_run(ws, run_id, processes=processes)
    return report.counts["sent"], *startup, tuple(children.peaks.values()), starter_peaks


def _start_run(root: str) -> tuple[int, tuple[float, ...]]:
    """In the process that starts the run: the run's id, and the own peaks of the process that
    prepared its content and of this one, each read as it ends."""
    from pipeline.runs import apart, start
    from pipeline.workspace.folders import Workspace

    prepared, prepare_peak = apart.in_fresh_process("pipeline.bench.send:_prepare", root)
    ws = Workspace.open(root)
    run = start.start_run(ws, prepared, "bench", started_by="bench", again=True)  # everyone again
    return run.id or 0, tuple(peak for peak in (prepare_peak, own_peak_mb()) if peak is not None)


def _prepare(root: str) -> tuple[Prepared, float | None]:
    """In the process that prepares the run: its content and that process's own peak, read as it ends."""
    from pipeline.runs.prepare import prepare_at

    return prepare_at(Path(root), CAMPAIGN), own_peak_mb()


def _measured(name: str, measure: Callable[..., Measured], *args: Any) -> Figure:
    """In a fresh interpreter (runs.apart), MEASURE(*ARGS) as figure NAME: the process imports only
    what that measure needs, so its peak is that client's own, not the CLI's."""
    entered = time.perf_counter(), _cpu_s()
    sent, startup_s, startup_cpu_s, sender_peaks, starter_peaks = measure(*args)
    elapsed, cpu = _since(*entered)
    return Figure(
        name,
        sent,
        elapsed - startup_s,
        cpu - startup_cpu_s,
        own_peak_mb(),
        sender_peaks,
        startup_cpu_s,
        starter_peaks,
    )


def _in_child(name: str, measure: Callable[..., Measured], *args: Any) -> Figure:
    from pipeline.runs import apart

    try:
        figure: Figure = apart.in_fresh_process("pipeline.bench.send:_measured", name, measure, *args)
    except Exception as exc:
        raise BenchError(f"{name} failed: {exc}") from None
    return figure


def _smtp_source(port: int, count: int, connections: int, size: int) -> Figure | None:
    """Postfix's smtp-source with messages of SIZE bytes; None when it is not installed. Its peak is
    sampled from /proc while it runs, its CPU comes from wait4 (a child's own, never inherited)."""
    program = shutil.which("smtp-source") or next(
        (p for p in ("/usr/sbin/smtp-source",) if os.access(p, os.X_OK)), None
    )
    if program is None:
        return None
    command = [program, "-s", str(connections), "-l", str(size), "-m", str(count)]
    command += ["-f", SENDER, "-t", "person@example.com", f"{HOST}:{port}"]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak: float | None = None
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        sampled = own_peak_mb(child.pid)
        peak = max(peak or 0.0, sampled or 0.0) or None
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        return None
    return Figure("smtp-source (Postfix)", count, elapsed, usage.ru_utime + usage.ru_stime, peak)


# -- setting it up -----------------------------------------------------------------------------------


def _workspace(root: Path, port: int, connections: int, database: str | None, recipients: int) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from pipeline.audience.importer import import_contacts
    from pipeline.storage.engines import make_engine, upgrade
    from pipeline.workspace.init import init_workspace
    from pipeline.workspace.tomlfile import replace_tables

    init_workspace(root)
    url = database or f"sqlite:///{root / 'comms.db'}"
    replace_tables(
        root / "comms.toml",
        {
            "database": f'url = "{url}"',
            "transport": f'kind = "smtp"\nurl = "smtp://{HOST}:{port}"\nsecurity = "none"\n'
            f"connections = {connections}",
            "rate": "per_second = 1000000\nper_domain_per_second = 1000000",
            "dispatch": "batch_size = 500",
            "approvals": "required = false",  # the gate is measured by its own tests, not here
        },
    )
    keys: list[tuple[str, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey]] = [
        ("dkim.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("dkim-ed25519.pem", ed25519.Ed25519PrivateKey.generate()),
    ]
    for name, key in keys:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (root / name).write_bytes(pem)
    (root / "audiences" / "bench.toml").write_text(f'lists = ["{LIST}"]\n', encoding="utf-8")
    upgrade(url)
    path = root / "bench.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "last_name", "company", "plan"])
        for i in range(recipients):
            writer.writerow([f"person{i}@example{i % 50}.com", f"First{i}", f"Last{i}", f"Co {i}", "pro"])
    engine = make_engine(url)
    try:
        import_contacts(engine, path, list_name=LIST)
    finally:
        engine.dispose()


def _sample_message(root: Path) -> bytes:
    """One message of the campaign as a run builds it, for the bare clients to send as is."""
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


def bench_send(
    recipients: int = 20_000,
    connections: int = 4,
    database: str | None = None,
    dkim: bool = True,
    repeat: int = 1,
    processes: int = 1,
) -> SendBench:
    """Set up a throw-away workspace with RECIPIENTS contacts and measure every client, REPEAT
    rounds one after the other, keeping each client's fastest (a shared machine is noisy).
    DATABASE is the URL of an empty database (default: a SQLite file in the workspace). With
    PROCESSES above 1, comms send is measured in that many sending processes too."""
    saved = {name: os.environ.pop(name, None) for name in ("COMMS_SMTP_URL", "COMMS_DATABASE_URL")}
    os.environ.setdefault("COMMS_SECRET", "bench-secret-of-at-least-thirty-two-bytes")
    sink, port = start_sink()
    best: dict[str, Figure] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "ws"
            _workspace(root, port, connections, database, recipients)
            data = _sample_message(root)
            load_before = os.getloadavg()
            sends = [(1, "comms send")]
            if processes > 1:
                sends.append((processes, f"comms send, {processes} processes"))
            for _ in range(repeat):
                for figure in [
                    _smtp_source(port, recipients, connections, len(data)),
                    _in_child("aiosmtplib alone", _aiosmtplib_alone, port, recipients, connections, data),
                    _in_child("comms SMTP client alone", _client_alone, port, recipients, connections, data),
                    *(
                        _in_child(name + variant, _comms_send, str(root), variant, count)
                        for count, name in sends
                        for variant in _DKIM
                        if dkim or not variant
                    ),
                ]:
                    kept = best.get(figure.name) if figure is not None else None
                    if figure is not None and (kept is None or figure.rate > kept.rate):
                        best[figure.name] = figure
            load_after = os.getloadavg()
    finally:
        sink.terminate()
        sink.wait()
        for name, value in saved.items():
            if value is not None:
                os.environ[name] = value
    figures = list(best.values())
    kb = len(data) / 1024
    return SendBench(recipients, connections, kb, database or "SQLite", load_before, load_after, figures)
