"""CSV export of contacts, safe to open in a spreadsheet, in the shape the importer reads back.

A cell starting with = + - @ tab or CR would be run as a formula by Excel or
LibreOffice (OWASP "CSV injection"); such cells get a leading apostrophe, which
spreadsheets show as text and `restore` takes off again on import. The same goes for
every line inside a cell (after CR, LF or CRLF), since a reader that splits records on
a bare CR would start a row there. Rows end in CRLF (RFC 4180), which makes Python's csv
module quote every cell holding CR or LF, not only LF, as well as the delimiter and quotes.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from sqlalchemy import Select, select
from sqlmodel import Session, col

from pipeline.audience.contacts import PERSONAL_FIELDS
from pipeline.audience.segments import Audience, audience_query, check_audience
from pipeline.storage.models import Contact

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# The start of the cell or of a line inside it, before a trigger or an apostrophe.
_LINE_START = r"(^|\r\n|\r|\n)"
_TRIGGERED = "(?=[" + re.escape("".join(FORMULA_TRIGGERS)) + "'])"
_NEUTRALISE = re.compile(_LINE_START + _TRIGGERED)
_RESTORE = re.compile(_LINE_START + "'" + _TRIGGERED)


def neutralise(cell: str) -> str:
    """A leading apostrophe makes a spreadsheet show a formula as text; a line that already starts
    with one gets another, so that `restore` can tell the two apart."""
    return _NEUTRALISE.sub(r"\1'", cell)


def restore(cell: str) -> str:
    """Undo `neutralise`: an apostrophe opening a line before a formula trigger or another
    apostrophe came from an export."""
    return _RESTORE.sub(r"\1", cell) if "'" in cell else cell


class SafeWriter:
    """A csv writer that neutralises every text cell; a number (int or float) is written as it is,
    since -0.4 is a number to a spreadsheet, never a formula."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, cells: Iterable[str | int | float]) -> None:
        self._writer.writerow([cell if isinstance(cell, int | float) else neutralise(cell) for cell in cells])


def writer(out: TextIO) -> SafeWriter:
    return SafeWriter(out)


def cell_of(value: Any) -> str:
    """An attribute value as the importer will type it back (true/false, 42, 1.5, text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _contacts(session: Session, query: Select[Contact], batch: int) -> Iterator[Contact]:
    yield from session.execute(query.execution_options(yield_per=batch)).scalars()


def export_contacts(
    session: Session, out: TextIO, audience: Audience | None = None, *, batch: int = 2000
) -> int:
    """Write the audience's contacts (all contacts without one) to OUT as CSV; returns the row count.

    Two streamed passes: the first collects the attribute names for the header, so
    memory stays flat however many contacts there are.
    """
    if audience is not None:
        check_audience(session, audience)
        query = audience_query(audience)
    else:
        query = select(Contact).order_by(col(Contact.id))
    names: set[str] = set()
    for (attributes,) in session.execute(
        query.with_only_columns(col(Contact.attributes)).execution_options(yield_per=batch)
    ):
        names.update(attributes)
    attributes_order = sorted(names)
    csv_out = writer(out)
    csv_out.writerow(["email", *PERSONAL_FIELDS, *attributes_order])
    count = 0
    for contact in _contacts(session, query, batch):
        fixed = [contact.email, *(getattr(contact, name) or "" for name in PERSONAL_FIELDS)]
        csv_out.writerow(fixed + [cell_of(contact.attributes.get(name)) for name in attributes_order])
        count += 1
        session.expunge(contact)
    return count
