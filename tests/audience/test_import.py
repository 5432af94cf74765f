"""CSV import: the tricky file, idempotence, --update, --list, suppressions, and the export round trip."""

from __future__ import annotations

import csv
import gc
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pipeline.audience.contacts import erase, suppress
from pipeline.audience.exporter import export_contacts
from pipeline.audience.importer import import_contacts
from pipeline.errors import ContactError
from pipeline.storage.drivers import SQLITE_CACHE_KIB
from pipeline.storage.engines import make_engine, session, upgrade
from pipeline.storage.models import Contact, MailingList, Subscription, SubscriptionStatus
from pipeline.types import SuppressionReason

from .conftest import AddContact

# BOM, semicolons, blank lines, case and IDN duplicates, a formula, too many fields, bad timezone...
TRICKY = (
    "\ufeffemail;first_name;last_name;timezone;plan;age;vip;joined\n"
    "Anna.Kowalska@Example.com;Anna;Kowalska;Europe/Warsaw;pro;34;true;2024-01-05\n"  # 2
    "anna.kowalska@example.COM;Anna;Again;;;;;\n"  # 3 duplicate of 2
    "not-an-email;No;At;;;;;\n"  # 4 invalid
    "\n"  # 5 blank
    "Zoë.Müller@bücher.de;Zoë;Müller;Europe/Berlin;free;29;false;2023-11-30\n"  # 6
    "ZOË.MÜLLER@XN--BCHER-KVA.DE;Zoë;Again;;;;;\n"  # 7 duplicate of 6 (case and IDN spelling)
    ";Empty;Email;;;;;\n"  # 8 empty email
    'mallory@example.org;"=HYPERLINK(""http://evil.example"",""click"")";Hacker;;;;;\n'  # 9
    "too@many.example.com;A;B;;;;;;extra\n"  # 10 too many fields
    "\n"  # 11 blank
    "tz@example.com;Tim;Zone;Mars/Olympus;;;;\n"  # 12 bad timezone
    " spaces@example.com ;  Sam  ;Space;;pro;007;TRUE;2024-02-29\n"  # 13
    "ünïcödé@example.com;Ünï;Cödé;;;-3;;\n"  # 14
    ";;;;;;;\n"  # 15 an all-empty row counts as blank
)
EXPECTED_REJECTS = {
    3: "duplicate of line 2",
    4: "invalid email 'not-an-email'",
    7: "duplicate of line 6",
    8: "empty email",
    10: "expected 8 fields, found 9",
    12: "unknown timezone 'Mars/Olympus'",
}


@pytest.fixture
def tricky(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(TRICKY, encoding="utf-8")
    return path


def _contacts(engine: Engine) -> dict[str, Contact]:
    with session(engine) as current:
        return {c.email: c for c in current.scalars(select(Contact))}


def _rejects(path: Path) -> dict[int, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "line",
        "reason",
        "email",
        "first_name",
        "last_name",
        "timezone",
        "plan",
        "age",
        "vip",
        "joined",
    ]
    return {int(row[0]): row[1] for row in rows[1:]}


def test_tricky_file_lands_good_rows_and_explains_every_reject(engine: Engine, tricky: Path, tmp_path: Path):
    rejects = tmp_path / "rejects.csv"
    summary = import_contacts(engine, tricky, rejects_path=rejects)

    assert (summary.inserted, summary.updated, summary.unchanged, summary.rejected) == (5, 0, 0, 6)
    assert summary.reasons == {"duplicate": 2, "invalid": 1, "empty": 1, "fields": 1, "timezone": 1}
    found = _rejects(rejects)
    assert sorted(found) == sorted(EXPECTED_REJECTS)
    for line, reason in EXPECTED_REJECTS.items():
        assert found[line].startswith(reason), (line, found[line])

    contacts = _contacts(engine)
    assert sorted(contacts) == [
        "Anna.Kowalska@example.com",
        "Zoë.Müller@xn--bcher-kva.de",
        "mallory@example.org",
        "spaces@example.com",
        "ünïcödé@example.com",
    ]
    anna = contacts["Anna.Kowalska@example.com"]
    assert anna.email_key == "anna.kowalska@example.com"
    assert (anna.first_name, anna.last_name, anna.timezone) == ("Anna", "Kowalska", "Europe/Warsaw")
    # One type per column: "007" keeps its zeros, so the whole age column is text.
    assert anna.attributes == {"plan": "pro", "age": "34", "vip": True, "joined": "2024-01-05"}
    sam = contacts["spaces@example.com"]
    assert sam.first_name == "Sam"
    # Booleans are case-insensitive; empty cells are absent.
    assert sam.attributes == {"plan": "pro", "age": "007", "vip": True, "joined": "2024-02-29"}
    assert contacts["ünïcödé@example.com"].attributes == {"age": "-3"}
    assert contacts["mallory@example.org"].first_name == '=HYPERLINK("http://evil.example","click")'


def test_importing_the_same_file_twice_changes_nothing(engine: Engine, tricky: Path):
    import_contacts(engine, tricky, list_name="customers")
    before = {email: (c.updated_at, c.attributes) for email, c in _contacts(engine).items()}

    again = import_contacts(engine, tricky, list_name="customers", update_existing=True)

    assert (again.inserted, again.updated, again.unchanged, again.subscribed) == (0, 0, 5, 0)
    assert {email: (c.updated_at, c.attributes) for email, c in _contacts(engine).items()} == before


def test_update_overwrites_fields_and_merges_attributes(engine: Engine, tmp_path: Path):
    first = tmp_path / "first.csv"
    first.write_text("email,first_name,plan,age\na@example.com,Ann,pro,30\nb@example.com,Bob,free,40\n")
    import_contacts(engine, first)
    second = tmp_path / "second.csv"
    second.write_text("email,first_name,age,city\nA@example.com,Anne,,Kraków\nb@example.com,Bob,40,\n")

    without = import_contacts(engine, second)
    assert (without.inserted, without.updated, without.unchanged) == (0, 0, 2)
    assert _contacts(engine)["a@example.com"].first_name == "Ann"

    summary = import_contacts(engine, second, update_existing=True)

    assert (summary.updated, summary.unchanged) == (1, 1)
    anne = _contacts(engine)["A@example.com"]
    # The file's columns win (an empty cell removes the attribute); columns it lacks are kept.
    assert anne.first_name == "Anne"
    assert anne.attributes == {"plan": "pro", "city": "Kraków"}


def test_list_subscribes_but_never_resubscribes(engine: Engine, tmp_path: Path, add_contact: AddContact):
    add_contact("gone@example.com", lists={"news": SubscriptionStatus.unsubscribed})
    path = tmp_path / "c.csv"
    path.write_text("email\ngone@example.com\nnew@example.com\n")

    summary = import_contacts(engine, path, list_name="news")

    assert summary.subscribed == 1
    with session(engine) as current:
        statuses = dict(
            current.execute(
                select(Contact.email, Subscription.status)
                .join(Subscription, Subscription.contact_id == Contact.id)
                .join(MailingList, MailingList.id == Subscription.list_id)
                .where(MailingList.name == "news")
            ).all()
        )
    assert statuses == {"gone@example.com": "unsubscribed", "new@example.com": "subscribed"}


def test_suppressed_and_erased_addresses_are_rejected(engine: Engine, tmp_path: Path):
    path = tmp_path / "c.csv"
    path.write_text("email\nblocked@example.com\nerased@example.com\nfine@example.com\n")
    import_contacts(engine, path)
    with session(engine) as current:
        suppress(current, "Blocked@Example.com", SuppressionReason.complaint)
        erase(current, "erased@example.com")

    rejects = tmp_path / "rejects.csv"
    summary = import_contacts(engine, path, rejects_path=rejects)

    assert (summary.inserted, summary.unchanged, summary.rejected) == (0, 1, 2)
    assert summary.reasons == {"suppressed": 2}
    assert _rejects_of(rejects) == {2: "suppressed (complaint)", 3: "suppressed (erased)"}
    assert "erased@example.com" not in _contacts(engine)


def _rejects_of(path: Path) -> dict[int, str]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    return {int(row[0]): row[1] for row in rows[1:]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nom,first_name\nx,y\n", "the header has no `email` column"),
        ("email,Email\na@b.com,c@d.com\n", "both fill email"),
        ("email,email_key\na@b.com,x\n", "is reserved"),
        ("", "the file is empty"),
        (b"email\n\xff\xfe@x.com\n", "not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_error_naming_it(engine: Engine, tmp_path: Path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ContactError, match=message) as caught:
        import_contacts(engine, path)
    assert str(caught.value).startswith(str(path))


def test_progress_reaches_the_file_size(engine: Engine, tmp_path: Path):
    path = tmp_path / "c.csv"
    path.write_text("email\n" + "".join(f"u{i}@example.com\n" for i in range(250)))
    seen: list[tuple[int, int]] = []

    import_contacts(engine, path, batch_size=100, progress=lambda done, total: seen.append((done, total)))

    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_an_import_leaves_the_garbage_collector_as_it_found_it_even_when_it_fails(
    engine: Engine, tmp_path: Path
):
    """The import collects its oldest generation less often while it runs (a process-wide
    setting): whatever happens, the program that called it gets its own thresholds back."""
    good = tmp_path / "good.csv"
    good.write_text("email\n" + "".join(f"u{i}@example.com\n" for i in range(250)))
    broken = tmp_path / "broken.csv"  # valid rows, then a byte that is not UTF-8 in a later batch
    rows = b"".join(b"v%d@example.com\n" % i for i in range(20_000))
    broken.write_bytes(b"email\n" + rows + b"\xff@x.com\n")
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    try:
        gc.set_threshold(500, 7, 3)
        import_contacts(engine, good, batch_size=100, progress=lambda *_: seen.append(gc.get_threshold()))
        assert gc.get_threshold() == (500, 7, 3)
        with pytest.raises(ContactError, match="not UTF-8"):
            import_contacts(engine, broken, batch_size=100)
        assert gc.get_threshold() == (500, 7, 3)
    finally:
        gc.set_threshold(*before)
    assert (500, 7, 30) in seen  # while it ran
    with session(engine) as current:
        assert len(current.scalars(select(Contact)).all()) >= 250  # the good file landed


def test_an_import_leaves_every_sqlite_connection_with_its_small_page_cache_even_when_it_fails(
    engine: Engine, tmp_path: Path
):
    """Batches are written with a 16 MB page cache; a long-lived process (the studio, the daemon)
    that imports must not keep it in its pooled connections afterwards."""
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite setting")
    good = tmp_path / "good.csv"
    good.write_text("email\n" + "".join(f"u{i}@example.com\n" for i in range(250)))
    broken = tmp_path / "broken.csv"  # valid rows, then a byte that is not UTF-8 in a later batch
    broken.write_bytes(
        b"email\n" + b"".join(b"v%d@example.com\n" % i for i in range(20_000)) + b"\xff@x.com\n"
    )
    import_contacts(engine, good, batch_size=100)
    with pytest.raises(ContactError, match="not UTF-8"):
        import_contacts(engine, broken, batch_size=100)

    held = [engine.connect() for _ in range(max(engine.pool.checkedin(), 1))]  # type: ignore[attr-defined]
    try:
        sizes = {c.exec_driver_sql("PRAGMA cache_size").scalar_one() for c in held}
        assert sizes == {-SQLITE_CACHE_KIB}
    finally:
        for connection in held:
            connection.close()
    with session(engine) as current:
        assert len(current.scalars(select(Contact)).all()) > 250  # the broken file's first batches landed


def test_export_is_formula_safe_and_round_trips(engine: Engine, tricky: Path, tmp_path: Path):
    import_contacts(engine, tricky)
    with session(engine) as current:
        out = io.StringIO()
        assert export_contacts(current, out) == 5
    exported = out.getvalue()
    rows = list(csv.DictReader(io.StringIO(exported)))
    mallory = next(row for row in rows if row["email"] == "mallory@example.org")
    assert mallory["first_name"] == '\'=HYPERLINK("http://evil.example","click")'
    negative = next(row for row in rows if row["email"] == "ünïcödé@example.com")
    assert negative["age"] == "'-3"

    # Into a fresh database and out again: the same file, so nothing was lost or changed.
    copy = tmp_path / "export.csv"
    copy.write_text(exported, encoding="utf-8")
    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(fresh_url)
    fresh = make_engine(fresh_url)
    try:
        assert import_contacts(fresh, copy).inserted == 5
        with session(fresh) as current:
            again = io.StringIO()
            export_contacts(current, again)
    finally:
        fresh.dispose()
    assert again.getvalue() == exported
    assert import_contacts(engine, copy, update_existing=True).unchanged == 5


def test_a_value_that_starts_with_an_apostrophe_survives_the_round_trip(engine: Engine, tmp_path: Path):
    with session(engine) as current:
        current.add(Contact(email="q@example.org", email_key="q@example.org", last_name="'=already text"))
    out = tmp_path / "out.csv"
    with session(engine) as current, out.open("w", encoding="utf-8") as handle:
        export_contacts(current, handle)
    assert "''=already text" in out.read_text(encoding="utf-8")

    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(fresh_url)
    fresh = make_engine(fresh_url)
    try:
        assert import_contacts(fresh, out).inserted == 1
        with session(fresh) as current:
            assert current.scalar(select(Contact.last_name)) == "'=already text"
    finally:
        fresh.dispose()


def test_line_breaks_in_cells_are_quoted_and_every_line_is_formula_safe(engine: Engine, tmp_path: Path):
    """A bare CR used to be written unquoted, so a reader splitting records on it met a live formula."""
    notes = {
        "cr@example.org": 'ok\r=HYPERLINK("http://evil.example","x")',
        "lf@example.org": "first\n+cmd|' /C calc'!A0",
        "crlf@example.org": "a, b\r\n@SUM(1)\r-2",
        "plain@example.org": 'semi;colon, comma "quoted"',
    }
    with session(engine) as current:
        for email, note in notes.items():
            current.add(
                Contact(email=email, email_key=email, last_name='Lee, "Jo"', attributes={"note": note})
            )
    out = tmp_path / "export.csv"
    with session(engine) as current, out.open("w", encoding="utf-8", newline="") as handle:
        assert export_contacts(current, handle) == 4
    exported = out.read_bytes().decode("utf-8")

    # A reader that takes any CR, LF or CRLF as the end of a record sees no line that is a formula.
    for line in re.split(r"\r\n|\r|\n", exported):
        for cell in line.split(","):
            assert not cell.lstrip('"').startswith(("=", "+", "-", "@")), repr(line)
    # A CSV reader sees one record per contact, each line break inside its quoted cell.
    records = list(csv.reader(io.StringIO(exported, newline="")))
    assert len(records) == 5 and {len(record) for record in records} == {6}

    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(fresh_url)
    fresh = make_engine(fresh_url)
    try:
        summary = import_contacts(fresh, out)
        assert (summary.inserted, summary.rejected) == (4, 0)
        with session(fresh) as current:
            back = {c.email: (c.last_name, c.attributes) for c in current.scalars(select(Contact))}
    finally:
        fresh.dispose()
    assert back == {email: ('Lee, "Jo"', {"note": note}) for email, note in notes.items()}


def test_names_with_line_breaks_are_rejected_with_their_row(engine: Engine, tmp_path: Path):
    """A name goes into the To: header, which can never carry CR or LF: such a row could never be sent."""
    path = tmp_path / "people.csv"
    path.write_bytes(
        b"email,first_name,last_name\n"
        b"ok@example.org,Ann,Lee\n"
        b'cr@example.org,"Ann\rBcc: x@evil.example",Lee\n'
        b'lf@example.org,Ann,"Lee\nBcc: x@evil.example"\n'
        b"nul@example.org,An\x00n,Lee\n"
        b"last@example.org,Bo,Ek\n"
    )
    rejects = tmp_path / "rejects.csv"
    summary = import_contacts(engine, path, rejects_path=rejects)
    assert (summary.inserted, summary.rejected, summary.reasons["control"]) == (2, 3, 3)
    with rejects.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("3", "first_name holds a line break or control character", "cr@example.org"),
        ("5", "last_name holds a line break or control character", "lf@example.org"),  # after a CR: line 5
        ("7", "first_name holds a line break or control character", "nul@example.org"),
    ]
    assert set(_contacts(engine)) == {"ok@example.org", "last@example.org"}
