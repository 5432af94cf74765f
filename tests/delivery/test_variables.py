"""The audience-wide variable check: every contact rendered once, each missing value counted."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import Engine

from pipeline.assembly.campaign import assemble
from pipeline.audience.importer import import_contacts
from pipeline.audience.segments import load_audience, stream_people
from pipeline.checks.variables import missing_variables
from pipeline.storage.engines import session
from tests.support.workspace import CAMPAIGN, open_ws

GREETING = 'Hi {{ contact.first_name | default("there") }},'


def _people(ws_root: Path, engine: Engine) -> None:
    path = ws_root / "people.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "marketing_consent", "city", "plan"])
        for i in range(40):
            first = "" if i % 4 == 0 else f"First{i}"
            city = f"City{i}" if i < 38 else ""
            writer.writerow([f"p{i:02d}@example.com", first, "true", city, "pro" if i % 2 else "free"])
    import_contacts(engine, path, list_name="customers")


def test_each_missing_variable_is_counted_with_where_and_who(ws_root: Path, engine: Engine) -> None:
    _people(ws_root, engine)
    copy = ws_root / "templates" / "copy" / f"{CAMPAIGN}.md"
    text = copy.read_text(encoding="utf-8")
    line = text.splitlines().index(GREETING) + 1
    body = (
        "Hi {{ contact.first_name }} from {{ contact.city }},\n"
        "{% if contact.vip %}VIP{% endif %}{% if contact.pet is defined %}{{ contact.pet }}{% endif %}"
        " {{ contact.nickname | default('friend') }} {{ contact.last_name | default('') }}"
    )
    copy.write_text(text.replace(GREETING, body), encoding="utf-8")
    ws = open_ws(ws_root)
    campaign = assemble(ws, CAMPAIGN)

    with session(engine) as db:
        found = missing_variables(campaign, stream_people(db, load_audience(ws, "customers")))

    shown = Path("templates/copy") / f"{CAMPAIGN}.md"
    assert [(f.name, f.path, f.line, f.missing, f.recipients, f.examples) for f in found] == [
        (
            "contact.first_name",
            shown,
            line,
            10,
            40,
            ("p00@example.com", "p04@example.com", "p08@example.com"),
        ),
        ("contact.city", shown, line, 2, 40, ("p38@example.com", "p39@example.com")),
    ]
    assert found[0].message.startswith("contact.first_name is missing for 10 of 40 recipients (e.g. p00@")


def test_a_variable_in_the_layout_is_located_there(ws_root: Path, engine: Engine) -> None:
    _people(ws_root, engine)
    footer = ws_root / "templates" / "partials" / "footer.mjml"
    lines = footer.read_text(encoding="utf-8").splitlines()
    at = next(i for i, text in enumerate(lines) if "{{ contact.email }}" in text)
    lines[at] = lines[at].replace("{{ contact.email }}", "{{ contact.email }} in {{ contact.city }}")
    footer.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ws = open_ws(ws_root)

    with session(engine) as db:
        found = missing_variables(assemble(ws, CAMPAIGN), stream_people(db, load_audience(ws, "customers")))

    assert [(f.name, str(f.path), f.line, f.missing) for f in found] == [
        ("contact.city", "templates/partials/footer.mjml", at + 1, 2)
    ]
