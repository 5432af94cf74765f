"""Benchmark: messages built per second for 10,000 recipients of a sample campaign, on one core.

    python tests/bench_assemble.py [CAMPAIGN] [--recipients N]

Assembly (MJML, premailer) runs once, as in a real run, and is timed apart; the per-recipient loop
is what a worker does for each delivery: signed links, the compiled render, and MIME assembled by
pipeline.message.mime.MessageBuilder. Issue 2 asks for at least 3,000 messages per second.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipeline.assembly.campaign import assemble
from pipeline.assembly.personalize import Personalizer
from pipeline.message.headers import message_id
from pipeline.message.mime import MessageBuilder
from pipeline.message.urls import recipient_links
from pipeline.types import Recipient
from pipeline.workspace.folders import Workspace

REPO = Path(__file__).resolve().parent.parent
PLANS = ("pro", "free", "trial")


def recipients(count: int) -> list[Recipient]:
    return [
        Recipient(
            email=f"person{i}@example{i % 50}.com",
            first_name=None if i % 7 == 0 else f"Name{i}",
            last_name=f"Family{i}",
            attributes={"plan": PLANS[i % 3], "company": f"Company {i % 300} Ltd.", "country": "GB"},
        )
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaign", nargs="?", help="a campaign of the sample workspace (default: the first)")
    parser.add_argument("--recipients", type=int, default=10_000)
    args = parser.parse_args()

    ws = Workspace.open(REPO)
    ws.settings.secrets = [
        "benchmark-secret-at-least-32-bytes-long"
    ]  # links are signed per recipient, as in a run
    name = args.campaign or ws.campaign_names()[0]
    people = recipients(args.recipients)

    started = time.perf_counter()
    campaign = assemble(ws, name)
    assembled_s = time.perf_counter() - started
    personalizer = Personalizer(campaign.templates)
    builder = MessageBuilder(ws.settings, campaign=name, department=campaign.department, run_id=1)
    domain = ws.settings.sender.from_email.rpartition("@")[2]

    started = time.perf_counter()
    for delivery_id, person in enumerate(people, start=1):
        personalizer.render(person, recipient_links(ws.settings, delivery_id))
    render_s = time.perf_counter() - started

    started = time.perf_counter()
    size = 0
    for delivery_id, person in enumerate(people, start=1):
        links = recipient_links(ws.settings, delivery_id)
        outgoing = builder.build(
            personalizer.render(person, links),
            to_email=person.email,
            to_name=person.first_name,
            message_id=message_id(1, delivery_id, domain),
            links=links,
            delivery_id=delivery_id,
        )
        size += len(outgoing.data)
    built_s = time.perf_counter() - started

    count = len(people)
    print(f"campaign {name!r}: HTML template {len(campaign.html.encode()) / 1024:.1f} KB")
    print(f"assembly, once per run (Markdown, Jinja, MJML, premailer): {assembled_s * 1000:.0f} ms")
    print(f"render only (links + subject, HTML, text):  {count / render_s:8,.0f} per second")
    print(f"render + MIME ({size / count / 1024:.1f} KB messages):     {count / built_s:8,.0f} per second")


if __name__ == "__main__":
    main()
