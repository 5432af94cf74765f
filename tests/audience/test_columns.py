"""Real exports from other tools, one type per column, --map and --preview: what lands in the database."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pipeline.audience.columns import parse_mapping
from pipeline.audience.importer import ImportOptions, import_contacts, preview_import
from pipeline.audience.segments import count_audience, load_audience
from pipeline.errors import AudienceError, ContactError
from pipeline.storage.engines import session
from pipeline.storage.models import ContactField
from pipeline.workspace.folders import Workspace
from tests.support.cli import comms

from .test_import import _contacts

# Mailchimp's audience export (subscribed_members_export_*.csv): merge fields by their labels, then
# its own columns in capitals.
MAILCHIMP = (
    "Email Address,First Name,Last Name,Address,Phone Number,Birthday,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,"
    "CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,"
    "NOTES,TAGS\n"
    'jane@example.com,Jane,Doe,"1 Main St, Springfield",0123 456789,03/14,4,2026-01-05 10:22:01,'
    "203.0.113.5,2026-01-05 10:23:40,203.0.113.5,40.7,-74.0,-5,-4,America/New_York,US,NY,"
    '2026-02-01 08:00:00,123456789,a1b2c3,,"""Customers"""\n'
    "raj@example.com,Raj,Patel,,,,2,2026-03-01 09:00:00,,,,51.5,-0.12,0,1,Europe/London,GB,,"
    "2026-03-01 09:00:00,987654321,d4e5f6,,\n"
)
# listmonk's subscriber export: uuid, email, name, attributes (a JSON object), status, timestamps.
LISTMONK = (
    "uuid,email,name,attributes,status,created_at,updated_at\n"
    '5e2d0c1a-0000-4000-8000-000000000001,ana@example.com,Ana María López,"{""city"": ""Madrid"", '
    '""projects"": 3}",enabled,2026-01-02 10:00:00+00,2026-01-02 10:00:00+00\n'
    "5e2d0c1a-0000-4000-8000-000000000002,li@example.com,Li,{},enabled,2026-01-03 11:00:00+00,"
    "2026-01-03 11:00:00+00\n"
)
# Mautic's contact export: field aliases as headers, its id and timestamps among them.
MAUTIC = (
    "id,firstname,lastname,email,company,position,phone,points,city,country,preferred_locale,timezone,"
    "last_active,date_added,date_modified,stage\n"
    "17,Marek,Nowak,marek@example.com,Stalprofil,Buyer,+48 22 123 45 67,25,Wrocław,Poland,pl_PL,"
    "Europe/Warsaw,2026-10-01 12:00:00,2025-05-05 09:00:00,2026-10-01 12:00:00,Lead\n"
)


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _rejects(path: Path) -> dict[int, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {int(row[0]): row[1] for row in list(csv.reader(handle))[1:]}


def test_a_mailchimp_export_imports_as_it_is(engine: Engine, tmp_path: Path) -> None:
    summary = import_contacts(engine, _write(tmp_path, "mc.csv", MAILCHIMP))
    assert (summary.inserted, summary.rejected) == (2, 0)
    jane = _contacts(engine)["jane@example.com"]
    assert (jane.first_name, jane.last_name, jane.timezone) == ("Jane", "Doe", "America/New_York")
    assert jane.attributes["Address"] == "1 Main St, Springfield"
    assert jane.attributes["Phone Number"] == "0123 456789"
    assert jane.attributes["Birthday"] == "03/14"  # no year: not a date
    assert jane.attributes["MEMBER_RATING"] == 4 and jane.attributes["LATITUDE"] == 40.7
    assert jane.attributes["TAGS"] == '"Customers"'
    for bookkeeping in ("LEID", "EUID", "LAST_CHANGED", "Email Address", "email"):
        assert bookkeeping not in jane.attributes


def test_a_listmonk_export_splits_the_name_and_unpacks_attributes(engine: Engine, tmp_path: Path) -> None:
    summary = import_contacts(engine, _write(tmp_path, "lm.csv", LISTMONK))
    assert (summary.inserted, summary.rejected) == (2, 0)
    contacts = _contacts(engine)
    ana = contacts["ana@example.com"]
    assert (ana.first_name, ana.last_name) == ("Ana María", "López")
    assert ana.attributes == {"city": "Madrid", "projects": 3, "status": "enabled"}
    assert (contacts["li@example.com"].first_name, contacts["li@example.com"].last_name) == ("Li", None)


def test_a_mautic_export_maps_its_aliases_and_ignores_its_ids(engine: Engine, tmp_path: Path) -> None:
    import_contacts(engine, _write(tmp_path, "mautic.csv", MAUTIC))
    marek = _contacts(engine)["marek@example.com"]
    assert (marek.first_name, marek.last_name) == ("Marek", "Nowak")
    assert (marek.locale, marek.timezone) == ("pl_PL", "Europe/Warsaw")
    assert marek.attributes["points"] == 25 and marek.attributes["phone"] == "+48 22 123 45 67"
    assert "id" not in marek.attributes and "date_added" not in marek.attributes


def test_yes_no_and_true_in_one_column_are_one_boolean_and_the_audience_finds_all(
    engine: Engine, tmp_path: Path, workspace: Workspace
) -> None:
    rows = ["yes", "no", "true", "Y", "FALSE", "n", "Yes", "1", "true", "no"]
    content = "email,marketing_consent\n" + "".join(f"p{i}@example.com,{v}\n" for i, v in enumerate(rows))
    import_contacts(engine, _write(tmp_path, "consent.csv", content), list_name="customers")
    stored = {email: c.attributes["marketing_consent"] for email, c in _contacts(engine).items()}
    assert list(stored.values()).count(True) == 6 and list(stored.values()).count(False) == 4
    assert all(isinstance(value, bool) for value in stored.values())

    (workspace.audiences_dir / "consented.toml").write_text(
        'lists = ["customers"]\n[[where]]\nfield = "marketing_consent"\nop = "eq"\nvalue = true\n'
    )
    with session(engine) as db:
        assert count_audience(db, load_audience(workspace, "consented")) == 6


def test_day_first_dates_are_dates_and_month_first_is_a_setting(engine: Engine, tmp_path: Path) -> None:
    content = "email,renewal\na@example.com,31/12/2026\nb@example.com,01.02.2027\nc@example.com,2027-03-04\n"
    import_contacts(engine, _write(tmp_path, "dates.csv", content))
    renewals = {email: c.attributes["renewal"] for email, c in _contacts(engine).items()}
    assert renewals == {
        "a@example.com": "2026-12-31",
        "b@example.com": "2027-02-01",
        "c@example.com": "2027-03-04",
    }

    us = "email,since\nd@example.com,12/31/2026\ne@example.com,02/01/2027\n"
    import_contacts(engine, _write(tmp_path, "us.csv", us), options=ImportOptions(dates="month-first"))
    since = {email: c.attributes.get("since") for email, c in _contacts(engine).items()}
    assert since["d@example.com"] == "2026-12-31" and since["e@example.com"] == "2027-02-01"


def test_a_cell_of_the_wrong_type_is_rejected_with_its_row_and_reason(engine: Engine, tmp_path: Path) -> None:
    # 20 good rows and one typo per column: the column keeps its type and the typo is rejected.
    content = "email,seats,vip\n" + "".join(f"u{i}@example.com,{i},yes\n" for i in range(20))
    content += "late@example.com,twelve,no\nodd@example.com,3,maybe\n"
    rejects = tmp_path / "r.csv"
    summary = import_contacts(engine, _write(tmp_path, "typed.csv", content), rejects_path=rejects)
    assert (summary.inserted, summary.rejected, summary.reasons["type"]) == (20, 2, 2)
    assert _rejects(rejects) == {
        22: "seats is a number column: 'twelve' is not a number",
        23: "vip is a bool column: 'maybe' is not a boolean (true/false, yes/no, y/n, 1/0)",
    }
    assert "late@example.com" not in _contacts(engine)


def test_a_later_file_keeps_the_stored_type_and_comms_toml_declares_one(
    engine: Engine, tmp_path: Path
) -> None:
    import_contacts(engine, _write(tmp_path, "a.csv", "email,seats\na@example.com,4\n"))
    rejects = tmp_path / "r.csv"
    later = import_contacts(
        engine, _write(tmp_path, "b.csv", "email,seats\nb@example.com,many\n"), rejects_path=rejects
    )
    assert later.rejected == 1 and "not a number" in _rejects(rejects)[2]

    declared = ImportOptions(declared={"code": "text"})
    import_contacts(engine, _write(tmp_path, "c.csv", "email,code\nc@example.com,42\n"), options=declared)
    assert _contacts(engine)["c@example.com"].attributes == {"code": "42"}
    with session(engine) as db:
        assert dict(db.execute(select(ContactField.name, ContactField.type)).all()) == {
            "seats": "number",
            "code": "text",
        }


def test_map_renames_headers_and_ignores_columns(engine: Engine, tmp_path: Path) -> None:
    content = "Adres e-mail,Imię,Dział,Notatki\nola@example.com,Ola,sales,secret\n"
    mapping = parse_mapping(["Adres e-mail=email", "Imię=first_name", "Dział=department", "Notatki=-"])
    import_contacts(engine, _write(tmp_path, "pl.csv", content), options=ImportOptions(mapping=mapping))
    ola = _contacts(engine)["ola@example.com"]
    assert ola.first_name == "Ola" and ola.attributes == {"department": "sales"}
    with pytest.raises(ContactError, match="expected HEADER=FIELD"):
        parse_mapping(["nothing"])


def test_an_audience_comparing_a_bool_with_text_is_an_error_when_loaded(
    engine: Engine, tmp_path: Path, workspace: Workspace
) -> None:
    import_contacts(
        engine, _write(tmp_path, "c.csv", "email,vip\na@example.com,yes\n"), list_name="customers"
    )
    (workspace.audiences_dir / "vips.toml").write_text(
        'lists = ["customers"]\n[[where]]\nfield = "vip"\nop = "eq"\nvalue = "yes"\n'
    )
    audience = load_audience(workspace, "vips")  # comms.toml declares nothing: the database knows
    with session(engine) as db, pytest.raises(AudienceError) as caught:
        count_audience(db, audience)
    assert str(caught.value) == (
        "audiences/vips.toml: where #1: vip is a bool attribute, but eq compares it with 'yes'"
        " (write true or false, without quotes)"
    )
    settings = workspace.root / "comms.toml"
    settings.write_text(settings.read_text() + '\n[contacts.fields]\nvip = "bool"\n')
    with pytest.raises(AudienceError, match="vip is a bool attribute"):
        load_audience(Workspace.open(workspace.root), "vips")


def test_preview_shows_delimiter_encoding_mapping_and_types_and_writes_nothing(
    engine: Engine, tmp_path: Path, workspace: Workspace
) -> None:
    path = tmp_path / "mc.csv"
    path.write_text(
        MAILCHIMP.replace(",", ";").replace('"1 Main St; Springfield"', "x"), encoding="utf-8-sig"
    )
    found = preview_import(engine, path)
    assert (found.delimiter, found.encoding) == (";", "UTF-8 with BOM")
    roles = {column.header: column.describe() for column in found.columns}
    assert roles["Email Address"] == "email"
    assert roles["First Name"] == "field first_name"
    assert roles["MEMBER_RATING"] == "attribute MEMBER_RATING: number (inferred)"
    assert roles["LEID"] == "ignored (another tool's bookkeeping)"

    shown = comms(
        "contacts", "import", "--preview", str(path), "--workspace", str(workspace.root), cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert "delimiter ';'" in shown.stdout and "UTF-8 with BOM" in shown.stdout
    assert "MEMBER_RATING" in shown.stdout and "number (inferred)" in shown.stdout
    assert "jane@example.com" in shown.stdout
    assert _contacts(engine) == {}
    assert not (tmp_path / "mc.rejects.csv").exists()
