"""Benchmark: `comms report period` over 1,000,000 deliveries and 3,000,000 events.

    python -m tests.bench_reports                      # SQLite, in a temporary folder
    python -m tests.bench_reports --pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Target (issue 12): under 10 s and 200 MB on both backends. The data is written in bulk (executemany in
one transaction on SQLite, COPY on PostgreSQL); the report runs as the real command in a fresh child
process, which prints its own wall time, CPU time (what the figure is on a shared, loaded machine) and
peak resident memory (VmHWM from /proc/self/status). PostgreSQL's own CPU is not in the child's CPU time.
"""

# ruff: noqa: E501 -- bulk-load SQL and COPY column lists are kept on one line each

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from pipeline.storage.engines import analyze, make_engine, upgrade
from pipeline.workspace.init import init_workspace
from tests.conftest import fresh_postgres_database

RUNS = 100
PER_RUN = 10_000
CONTACTS = 100_000
DEPARTMENTS = ["sales", "finance", "production", "hr", "it", "logistics"]
START = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)

CHILD = """
import os, sys, time
from pipeline.cli import main
sys.argv = ["comms", "report", "period", "2026-Q4", "--compare", "previous", "--format", "json"]
started = time.perf_counter()
try:
    main()
finally:
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]
    cpu = sum(os.times()[:2])
    print(f"BENCH seconds={time.perf_counter() - started:.2f} cpu_s={cpu:.2f} peak_mb={int(hwm) / 1024:.0f}", file=sys.stderr)
"""


def _rows() -> Iterator[tuple[list[tuple], list[tuple], list[tuple]]]:
    """Per run: (run row, deliveries, events), about three events per delivery."""
    rng = random.Random(12)
    delivery_id = event_id = 0
    for run in range(1, RUNS + 1):
        started = START + timedelta(hours=20 * run)
        runs = [(run, f"campaign-{run % 10}", DEPARTMENTS[run % 6], "customers", started)]
        deliveries, events = [], []
        first = rng.randrange(CONTACTS - PER_RUN)
        for offset in range(PER_RUN):
            delivery_id += 1
            contact = first + offset + 1
            sent = started + timedelta(seconds=offset // 50)
            deliveries.append(
                (
                    delivery_id,
                    run,
                    contact,
                    f"p{contact}@d{contact % 300}.example",
                    sent,
                    DEPARTMENTS[contact % 6],
                    f"d{contact % 300}.example",
                )
            )
            roll = rng.random()
            kinds: list[tuple[str, bool, str, int | None]] = [
                ("open", roll < 0.35, "apple-privacy-proxy" if roll < 0.35 else "", None)
            ]
            if roll > 0.3:
                kinds.append(("open", False, "", None))
            if roll > 0.4:
                kinds.append(("click", roll > 0.9, "scanner-burst" if roll > 0.9 else "", int(roll * 40) % 4))
            if roll > 0.6:
                kinds.append(("click", False, "", 0))
            if roll > 0.7:
                kinds.append(("open", False, "", None))
            if roll > 0.995:
                kinds.append(("unsubscribe", False, "one-click", None))
            for kind, machine, reason, link in kinds:
                event_id += 1
                events.append(
                    (
                        event_id,
                        delivery_id,
                        kind,
                        link,
                        machine,
                        reason,
                        sent + timedelta(minutes=30 + event_id % 600),
                    )
                )
        yield runs, deliveries, events


def _sqlite(path: Path) -> tuple[int, int]:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    iso = "%Y-%m-%d %H:%M:%S.%f"
    db.executemany(
        "INSERT INTO contact (id, email, email_key, email_hash, attributes, created_at, updated_at) VALUES (?, ?, ?, ?, '{}', ?, ?)",
        (
            (
                i,
                f"p{i}@d{i % 300}.example",
                f"p{i}@d{i % 300}.example",
                f"h{i}",
                START.strftime(iso),
                START.strftime(iso),
            )
            for i in range(1, CONTACTS + 1)
        ),
    )
    deliveries = events = 0
    for runs, rows, evs in _rows():
        db.executemany(
            "INSERT INTO run (id, campaign, department, audience, status, started_by, template_hash, subject_template, html_template, text_template, meta, recipient_count, status_reason, created_at, started_at) "
            "VALUES (?, ?, ?, ?, 'finished', 'bench', '', 'Subject', '', '', '{\"links\": [\"a\", \"b\", \"c\", \"d\"]}', 10000, '', ?, ?)",
            ((r[0], r[1], r[2], r[3], r[4].strftime(iso), r[4].strftime(iso)) for r in runs),
        )
        db.executemany(
            "INSERT INTO delivery (id, run_id, contact_id, email, status, attempts, message_id, last_reply, skip_reason, sent_at, department, domain, locale, timezone, seed) "
            "VALUES (?, ?, ?, ?, 'sent', 1, '', '', '', ?, ?, ?, '', '', 0)",
            ((d[0], d[1], d[2], d[3], d[4].strftime(iso), d[5], d[6]) for d in rows),
        )
        db.executemany(
            "INSERT INTO event (id, delivery_id, kind, link_index, machine, reason, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, '{}', ?)",
            ((e[0], e[1], e[2], e[3], e[4], e[5], e[6].strftime(iso)) for e in evs),
        )
        deliveries += len(rows)
        events += len(evs)
    db.commit()
    db.close()
    return deliveries, events


def _copy(cursor, table: str, columns: str, rows) -> None:  # type: ignore[no-untyped-def]
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _postgres(url: str) -> tuple[int, int]:
    import psycopg

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    deliveries = events = 0
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        _copy(
            cur,
            "contact",
            "id, email, email_key, email_hash, attributes, created_at, updated_at",
            (
                (i, f"p{i}@d{i % 300}.example", f"p{i}@d{i % 300}.example", f"h{i}", "{}", START, START)
                for i in range(1, CONTACTS + 1)
            ),
        )
        for runs, rows, evs in _rows():
            _copy(
                cur,
                "run",
                "id, campaign, department, audience, status, started_by, template_hash, subject_template, html_template, text_template, meta, recipient_count, status_reason, created_at, started_at",
                (
                    (
                        r[0],
                        r[1],
                        r[2],
                        r[3],
                        "finished",
                        "bench",
                        "",
                        "Subject",
                        "",
                        "",
                        '{"links": ["a", "b", "c", "d"]}',
                        PER_RUN,
                        "",
                        r[4],
                        r[4],
                    )
                    for r in runs
                ),
            )
            _copy(
                cur,
                "delivery",
                "id, run_id, contact_id, email, status, attempts, message_id, last_reply, skip_reason, sent_at, department, domain, locale, timezone, seed",
                (
                    (d[0], d[1], d[2], d[3], "sent", 1, "", "", "", d[4], d[5], d[6], "", "", False)
                    for d in rows
                ),
            )
            _copy(
                cur,
                "event",
                "id, delivery_id, kind, link_index, machine, reason, detail, created_at",
                ((*e[:6], "{}", e[6]) for e in evs),
            )
            deliveries += len(rows)
            events += len(evs)
        conn.commit()
    return deliveries, events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", help="a PostgreSQL server URL (a fresh database is made and dropped)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        init_workspace(root)
        databases = (
            fresh_postgres_database(args.pg) if args.pg else iter([f"sqlite:///{Path(tmp) / 'bench.db'}"])
        )
        url = next(databases)
        try:
            upgrade(url)
            started = time.perf_counter()
            deliveries, events = _postgres(url) if args.pg else _sqlite(Path(tmp) / "bench.db")
            engine = make_engine(url)
            analyze(engine, ("contact", "run", "delivery", "event"))
            engine.dispose()
            backend = "postgresql" if args.pg else "sqlite"
            print(
                f"{backend}: wrote {deliveries:,} deliveries and {events:,} events in {time.perf_counter() - started:.0f} s"
            )
            env = {**os.environ, "COMMS_DATABASE_URL": url, "COMMS_WORKSPACE": str(root)}
            child = subprocess.run(
                [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=False
            )
            line = next((x for x in child.stderr.splitlines() if x.startswith("BENCH")), child.stderr[-500:])
            print(
                f"{backend}: comms report period 2026-Q4 --compare previous: {line}, exit {child.returncode}"
            )
            print(
                child.stdout[:0]
                or f"{backend}: report reach {child.stdout.count('reach')} keys, {len(child.stdout):,} bytes of JSON"
            )
        finally:
            for _ in databases:
                pass


if __name__ == "__main__":
    main()
