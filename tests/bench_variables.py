"""Benchmark: the audience-wide variable check (pipeline.runs.variables) over 10,000 contacts.

    python -m tests.bench_variables [--contacts N]

It runs before every run is created, so it must be quick: render only, no MIME, contacts streamed
from the database (SQLite here, in a temporary folder). Prints contacts per second and the peak
Python memory of the check itself (tracemalloc), which must not grow with the audience.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
import tracemalloc
from pathlib import Path

from pipeline.assembly.campaign import assemble
from pipeline.audience.importer import import_contacts
from pipeline.audience.segments import load_audience, stream_people
from pipeline.checks.variables import missing_variables
from pipeline.storage.engines import make_engine, session, upgrade
from pipeline.workspace.folders import Workspace

REPO = Path(__file__).resolve().parent.parent
CAMPAIGN = "spring-launch"  # audience "customers": list "customers", marketing_consent = true


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    args = parser.parse_args()
    ws = Workspace.open(REPO)
    campaign = assemble(ws, CAMPAIGN)
    audience = load_audience(ws, campaign.audience)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        path = Path(folder) / "people.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["email", "first_name", "marketing_consent", "plan", "company"])
            for i in range(args.contacts):
                first = "" if i % 7 == 0 else f"First{i}"
                writer.writerow(
                    [f"person{i}@example{i % 50}.com", first, "true", "pro" if i % 2 else "free", ""]
                )
        import_contacts(engine, path, list_name="customers")
        for label, traced in (("timed", False), ("timed again", False), ("memory (tracemalloc)", True)):
            if traced:
                tracemalloc.start()
            started = time.perf_counter()
            with session(engine) as db:
                found = missing_variables(campaign, stream_people(db, audience))
            elapsed = time.perf_counter() - started
            figure = f"{args.contacts / elapsed:,.0f} per second"
            if traced:
                figure = f"peak {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MiB"
                tracemalloc.stop()
            print(f"{label}: {args.contacts:,} contacts, {figure}, {len(found)} variables missing")
        engine.dispose()


if __name__ == "__main__":
    main()
