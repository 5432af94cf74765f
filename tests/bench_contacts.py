"""Benchmark: contact import speed, and time and peak memory to stream a million-contact audience.

    python -m tests.bench_contacts                      # SQLite, in a temporary folder
    python -m tests.bench_contacts --pg postgresql://postgres@127.0.0.1:5432/postgres

Targets (issue 3): import >= 20,000 rows/s; streaming 1,000,000 contacts under 150 MB peak.
Streaming runs in a fresh child process and reports its own peak (VmHWM: getrusage's ru_maxrss
would carry this process's peak, the import's, across fork and exec).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from pipeline.audience.importer import import_contacts
from pipeline.audience.segments import Audience, Condition, stream_audience
from pipeline.bench.send import own_peak_mb
from pipeline.storage.engines import analyze, make_engine, session, upgrade
from pipeline.storage.models import Contact, MailingList, Subscription, email_hash
from tests.conftest import fresh_postgres_database

IMPORT_ROWS = 100_000
STREAM_ROWS = 1_000_000
COUNTRIES = ["PL", "DE", "FR", "GB", "ES", "IT", "NL", "SE"]
AUDIENCE = Audience(
    name="bench",
    path=Path("audiences/bench.toml"),
    description="every customer with a plan, in a 1M-contact database",
    lists=("customers",),
    where=(Condition(field="plan", op="exists"),),
)


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["email", "first_name", "last_name", "locale", "timezone", "country", "plan", "age", "vip"]
        )
        for i in range(rows):
            out.writerow(
                [
                    f"Person.{i}@company{i % 500}.example.com",
                    f"First{i}",
                    f"Last{i}",
                    "en-GB",
                    "Europe/London",
                    rng.choice(COUNTRIES),
                    rng.choice(["free", "pro", "enterprise"]),
                    str(18 + i % 60),
                    rng.choice(["true", "false"]),
                ]
            )


def fill(url: str, rows: int) -> None:
    """ROWS subscribed contacts written straight through executemany (this part is not measured)."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        list_id = connection.execute(
            insert(MailingList)
            .values(name="customers", description="", created_at=now)
            .returning(MailingList.id)
        ).scalar_one()
    step = 10_000
    for start in range(0, rows, step):
        contacts = []
        for i in range(start + 1, min(start + step, rows) + 1):
            key = f"member{i}@example.com"
            attributes = {"plan": "pro" if i % 3 else "free", "age": 18 + i % 60, "country": COUNTRIES[i % 8]}
            contacts.append(
                {
                    "id": i,
                    "email": key,
                    "email_key": key,
                    "email_hash": email_hash(key),
                    "first_name": f"First{i}",
                    "attributes": attributes,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with engine.begin() as connection:
            connection.execute(insert(Contact), contacts)
            connection.execute(
                insert(Subscription),
                [
                    {
                        "contact_id": c["id"],
                        "list_id": list_id,
                        "status": "subscribed",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for c in contacts
                ],
            )
    analyze(engine, ("contact", "subscription", "mailing_list"))  # as the importer does
    engine.dispose()


def stream_child(url: str) -> None:
    """In a fresh process: stream the audience and print count, seconds and peak RSS in MB."""
    engine = make_engine(url)
    before_mb = own_peak_mb()
    started = time.perf_counter()
    count = 0
    with session(engine) as current:
        for contact in stream_audience(current, AUDIENCE, batch=2000):
            count += len(contact.email) > 0 and bool(contact.attributes)
    elapsed = time.perf_counter() - started
    peak_mb = own_peak_mb()
    print(f"{count} {elapsed:.2f} {peak_mb:.0f} {before_mb:.0f}")


@contextmanager
def database(pg_server: str | None, folder: Path, name: str) -> Iterator[str]:
    if pg_server is None:
        yield f"sqlite:///{folder / (name + '.db')}"
        return
    yield from fresh_postgres_database(pg_server.replace("postgresql://", "postgresql+psycopg://", 1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pg", metavar="URL", help="run on PostgreSQL (a server URL; a scratch database is made)"
    )
    parser.add_argument("--stream-child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--import-rows", type=int, default=IMPORT_ROWS)
    parser.add_argument("--stream-rows", type=int, default=STREAM_ROWS)
    args = parser.parse_args()
    if args.stream_child:
        stream_child(args.stream_child)
        return
    backend = "PostgreSQL" if args.pg else "SQLite"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "contacts.csv"
        write_csv(source, args.import_rows)
        for list_name in (None, "customers"):
            with database(args.pg, folder, f"import_{list_name or 'plain'}") as url:
                upgrade(url)
                engine = make_engine(url)
                started, cpu_started = time.perf_counter(), time.process_time()
                summary = import_contacts(engine, source, list_name=list_name)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                engine.dispose()
            # The machine is shared: rows per CPU-second of this process shows the code's own cost
            # (for SQLite that is all of it; PostgreSQL's server time is not included).
            print(
                f"{backend}: imported {summary.inserted:,} contacts"
                f"{' with --list' if list_name else ''} in {elapsed:.2f} s"
                f" = {summary.inserted / elapsed:,.0f} rows/s (target >= 20,000);"
                f" {summary.inserted / cpu:,.0f} rows per CPU-second;"
                f" load average {os.getloadavg()[0]:.2f}"
            )
        with database(args.pg, folder, "stream") as url:
            upgrade(url)
            fill(url, args.stream_rows)
            child = subprocess.run(
                [sys.executable, "-m", "tests.bench_contacts", "--stream-child", url],
                capture_output=True,
                text=True,
                check=True,
            )
            count, seconds, peak_mb, baseline_mb = child.stdout.split()
        print(
            f"{backend}: streamed a {int(count):,}-contact audience in {float(seconds):.1f} s,"
            f" peak memory {peak_mb} MB (process before streaming: {baseline_mb} MB; target < 150 MB)"
        )


if __name__ == "__main__":
    main()
