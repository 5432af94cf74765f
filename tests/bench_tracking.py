"""Benchmark: what click and open tracking adds to each recipient's render, on one core.

    python tests/bench_tracking.py [CAMPAIGN] [--recipients N]

The campaign is assembled once; the loop renders every recipient's subject, HTML and text with the
compiled Personalizer, once from the untracked HTML and once from the HTML pipeline.assembly.tracking makes
for a run (each tracked link minting its signed click token, plus the open pixel).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipeline.assembly.campaign import assemble
from pipeline.assembly.personalize import Personalizer
from pipeline.assembly.tracking import track_campaign
from pipeline.message.urls import recipient_links, recipient_tracking
from pipeline.types import Recipient
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("campaign", nargs="?", default="spring-launch")
    parser.add_argument("--recipients", type=int, default=10_000)
    args = parser.parse_args()
    ws = Workspace.open(REPO)
    settings = load_settings(REPO, {"COMMS_SECRET": "bench-key-at-least-32-bytes-long"})
    campaign = assemble(ws, args.campaign)
    tracked, tracked_html = track_campaign(campaign, settings)
    links = tracked_html.links
    people = [Recipient(f"person{i}@example.com", first_name=f"Name{i}") for i in range(args.recipients)]
    print(f"{args.campaign}: {len(links)} tracked links, {len(tracked.html) // 1024} KB HTML")
    for label, source, track in (("untracked", campaign, False), ("tracked", tracked, True)):
        personalizer = Personalizer(source.templates)
        start = time.perf_counter()
        for delivery_id, person in enumerate(people, start=1):
            extra = recipient_tracking(settings, delivery_id) if track else None
            personalizer.render(person, recipient_links(settings, delivery_id), extra)
        elapsed = time.perf_counter() - start
        each_us = elapsed / len(people) * 1e6
        print(f"{label:>9}: {len(people) / elapsed:8,.0f} renders/s  ({each_us:.1f} µs each)")


if __name__ == "__main__":
    main()
