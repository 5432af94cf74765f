"""`comms bench send`: parse, call pipeline.bench.send, print the figures."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from pipeline.cli.common import console

bench_app = typer.Typer(help="Benchmarks that print figures, on loopback.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


@bench_app.command("send")
def send(
    recipients: Annotated[int, typer.Option(min=1, help="Contacts in the throw-away workspace.")] = 20_000,
    connections: Annotated[int, typer.Option(min=1, help="SMTP connections of every client.")] = 4,
    database: Annotated[
        str | None, typer.Option(help="URL of an empty database (default: a SQLite file).")
    ] = None,
    dkim: Annotated[
        bool, typer.Option(help="Also measure comms send signing with RSA, Ed25519 and both (DKIM).")
    ] = True,
    repeat: Annotated[int, typer.Option(min=1, help="Rounds; each client's fastest is shown.")] = 1,
    processes: Annotated[
        int, typer.Option(min=1, help="Also measure comms send in this many sending processes.")
    ] = 1,
) -> None:
    """Messages per second, CPU per message and each process's own peak memory of comms send
    (its sending processes and the one that starts the run included), its SMTP client, aiosmtplib
    and (when installed) Postfix's smtp-source, in one run into one sink.

    \b
    Example:
      comms bench send --recipients 5000 --repeat 3 --processes 2
    """
    from pipeline.bench.send import bench_send

    result = bench_send(recipients, connections, database, dkim, repeat, processes)
    console.print(
        f"{result.recipients} recipients, {result.message_kb:.1f} KB messages, {result.connections}"
        f" connections, database {result.database}; load average"
        f" {' '.join(f'{x:.2f}' for x in result.load_before)} before,"
        f" {' '.join(f'{x:.2f}' for x in result.load_after)} after"
    )
    table = Table(box=box.SIMPLE)
    columns = (
        "client",
        "msgs/s",
        "CPU ms/msg",
        "msgs/CPU-s",
        "peak MB (own)",
        "senders' peak MB",
        "start's peaks MB",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "client" else "right")
    for f in result.figures:
        peak = "?" if f.peak_mb is None else f"{f.peak_mb:.0f}"
        senders = " ".join(f"{mb:.0f}" for mb in f.sender_peaks_mb) or "-"
        starter = " ".join(f"{mb:.0f}" for mb in f.starter_peaks_mb) or "-"
        row = (f"{f.rate:.0f}", f"{f.cpu_ms:.2f}", f"{1000 / f.cpu_ms:.0f}", peak, senders, starter)
        table.add_row(f.name, *row)
    console.print(table)
    startups = ", ".join(f"{f.name} {f.startup_cpu_s:.2f}" for f in result.figures if f.startup_cpu_s)
    console.print(
        f"start-up, paid once and not counted above (imports; comms: the run's start), s of CPU: {startups}"
    )
    comms, baseline = result.figure("comms send"), result.figure("aiosmtplib alone")
    limit = result.figure("smtp-source (Postfix)")
    if comms and baseline:
        # Per CPU-second as well: on a loaded machine a process's rate says more about its share of the CPU.
        console.print(
            f"comms send / aiosmtplib alone: {comms.rate / baseline.rate:.2f}x the rate,"
            f" {baseline.cpu_ms / comms.cpu_ms:.2f}x the messages per CPU-second"
        )
    if comms and limit:
        console.print(f"comms send / smtp-source: {comms.rate / limit.rate:.0%} of the rate")
    several = result.figure(f"comms send, {processes} processes")
    if several and limit:
        console.print(
            f"comms send, {processes} processes / smtp-source: {several.rate / limit.rate:.0%} of the rate"
        )
