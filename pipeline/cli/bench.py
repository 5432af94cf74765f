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
    dkim: Annotated[bool, typer.Option(help="Also measure comms send with RSA DKIM signing.")] = True,
    repeat: Annotated[int, typer.Option(min=1, help="Rounds; each client's fastest is shown.")] = 1,
) -> None:
    """Messages per second, CPU per message and each process's own peak memory of comms send,
    its SMTP client, aiosmtplib and (when installed) Postfix's smtp-source, in one run into one sink.

    \b
    Example:
      comms bench send --recipients 5000 --repeat 3
    """
    from pipeline.bench.send import bench_send

    result = bench_send(recipients, connections, database, dkim, repeat)
    console.print(
        f"{result.recipients} recipients, {result.message_kb:.1f} KB messages, {result.connections}"
        f" connections, database {result.database}; load average"
        f" {' '.join(f'{x:.2f}' for x in result.load_before)} before,"
        f" {' '.join(f'{x:.2f}' for x in result.load_after)} after"
    )
    table = Table(box=box.SIMPLE)
    for column in ("client", "msgs/s", "CPU ms/msg", "msgs/CPU-s", "peak MB (own)"):
        table.add_column(column, justify="left" if column == "client" else "right")
    for f in result.figures:
        peak = "?" if f.peak_mb is None else f"{f.peak_mb:.0f}"
        table.add_row(f.name, f"{f.rate:.0f}", f"{f.cpu_ms:.2f}", f"{1000 / f.cpu_ms:.0f}", peak)
    console.print(table)
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
