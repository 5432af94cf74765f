"""What each CSV column is and what type it holds: header aliases, --map, one type per column.

Headers are matched case-, space-, dash- and underscore-insensitively against the names other
tools export (Mailchimp's ``Email Address``/``First Name``, listmonk's ``email,name,attributes``,
Mautic's ``firstname,lastname,preferred_locale``), so their files import as they are. Columns that
are another tool's bookkeeping (ids, its own timestamps) are ignored rather than refused.

A column has one type, not one per cell: declared in comms.toml ``[contacts.fields]``, else the
type an earlier import stored for that attribute, else inferred from the file's first rows. A cell
that does not fit its column's type rejects the row, so ``yes`` and ``true`` in one column are the
same boolean and ``31/12/2026`` is a date, never a string that compares wrongly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, get_args

from pipeline.audience.contacts import ATTRIBUTE_NAME, PERSONAL_FIELDS, RESERVED_NAMES
from pipeline.errors import ContactError

FieldType = Literal["text", "number", "bool", "date"]
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
DateOrder = Literal["day-first", "month-first"]
# What a column holds: the address, a contact field, an attribute, a JSON object of attributes
# (listmonk), a full name to split into first and last, or nothing comms keeps.
Role = Literal["email", "field", "attribute", "attributes", "full_name", "ignored"]


def header_key(header: str) -> str:
    """`E-mail Address`, `email_address` and `EmailAddress` are one header."""
    return re.sub(r"[\s_\-.]+", "", header).lower()


_ALIASES: dict[str, tuple[Role, str]] = {
    **{
        header_key(alias): ("email", "email")
        for alias in ("email", "e-mail", "email address", "e-mail address", "mail", "email_address")
    },
    **{
        header_key(alias): ("field", "first_name")
        for alias in ("first name", "firstname", "given name", "forename", "fname")
    },
    **{
        header_key(alias): ("field", "last_name")
        for alias in ("last name", "lastname", "surname", "family name", "lname")
    },
    **{header_key(alias): ("field", "locale") for alias in ("locale", "language", "preferred_locale")},
    **{header_key(alias): ("field", "timezone") for alias in ("timezone", "time zone", "tz")},
    **{header_key(alias): ("full_name", "name") for alias in ("name", "full name")},
    "attributes": ("attributes", "attributes"),
    # Other tools' own bookkeeping: listmonk (uuid, created_at, updated_at), Mautic (id,
    # date_added, date_modified), Mailchimp (LEID, EUID, LAST_CHANGED).
    **{
        header_key(alias): ("ignored", alias)
        for alias in (
            "id",
            "uuid",
            "created_at",
            "updated_at",
            "date_added",
            "date_modified",
            "leid",
            "euid",
            "last_changed",
        )
    },
}

_INTEGER = re.compile(r"-?(?:0|[1-9]\d{0,17})")
_DECIMAL = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_BOOLEANS = dict.fromkeys(("true", "yes", "y", "1"), True) | dict.fromkeys(("false", "no", "n", "0"), False)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOCAL_DATE = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})")
SAMPLE_ROWS = 1000  # rows a column's type is inferred from
MISFITS_PER_CELL = 20  # at most one cell in this many may miss the inferred type (and is rejected)


@dataclass(frozen=True)
class Column:
    index: int
    header: str  # as written in the file
    role: Role
    name: str  # the field or attribute it fills ("email" for the address)
    type: FieldType = "text"
    source: str = "text"  # where the type came from: comms.toml, stored, inferred, fixed

    def describe(self) -> str:
        if self.role == "ignored":
            return "ignored (another tool's bookkeeping)"
        if self.role == "full_name":
            return "first_name + last_name (split at the last space)"
        if self.role == "attributes":
            return "attributes (a JSON object per row)"
        target = "email" if self.role == "email" else f"{self.role} {self.name}"
        return target if self.role != "attribute" else f"{target}: {self.type} ({self.source})"


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """`--map "Email Address=email"` pairs as {header key: target}; `HEADER=-` ignores a column."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        header, sep, target = pair.partition("=")
        if not sep or not header.strip() or not target.strip():
            raise ContactError(f"--map {pair!r}: expected HEADER=FIELD (or HEADER=- to ignore it)")
        mapping[header_key(header)] = target.strip()
    return mapping


def _role_of(target: str, header: str) -> tuple[Role, str]:
    """What a --map target (or an unmapped header) names: the address, a field, or an attribute."""
    lowered = target.lower()
    if target == "-":
        return "ignored", header
    if lowered == "email":
        return "email", "email"
    if lowered in PERSONAL_FIELDS:
        return "field", lowered
    return "attribute", target


def plan_columns(
    headers: list[str],
    mapping: Mapping[str, str],
    declared: Mapping[str, FieldType],
    stored: Mapping[str, FieldType],
) -> list[Column]:
    """The header as columns with roles; attribute types are filled in later by `with_types`.

    Raises ContactError (line 1) for a header comms cannot use: no email column, a name given
    twice, a name reserved for comms' bookkeeping or not usable in an audience file.
    """
    columns: list[Column] = []
    taken: dict[str, str] = {}
    for index, raw in enumerate(headers):
        header = raw.strip()
        where = f"column {index + 1} ({header!r})"
        if not header:
            raise ContactError(f"column {index + 1} has no name in the header", line=1)
        key = header_key(header)
        if key in mapping:
            role, name = _role_of(mapping[key], header)
        elif key in _ALIASES:
            role, name = _ALIASES[key]
        else:
            role, name = _role_of(header, header)
        if role == "attribute":
            if name.lower() in RESERVED_NAMES:
                raise ContactError(f"{where} is reserved for comms' own bookkeeping", line=1)
            if not ATTRIBUTE_NAME.match(name):
                raise ContactError(f"{where}: attribute names are letters, digits, spaces and _ . -", line=1)
        claims = ["first_name", "last_name"] if role == "full_name" else [name.lower()]
        if role != "ignored":
            for claim in claims:
                if claim in taken:
                    raise ContactError(f"{where} and {taken[claim]} both fill {claim}", line=1)
                taken[claim] = where
        kind: FieldType = "text"
        source = "fixed"
        if role == "attribute" and name in declared:
            kind, source = declared[name], "comms.toml"
        elif role == "attribute" and name in stored:
            kind, source = stored[name], "stored"
        columns.append(Column(index, header, role, name, kind, source if role == "attribute" else "fixed"))
    if not any(column.role == "email" for column in columns):
        raise ContactError("the header has no `email` column (or one --map names as email)", line=1)
    return columns


def with_types(columns: list[Column], sample: list[list[str]], dates: DateOrder) -> list[Column]:
    """Attribute columns without a declared or stored type get the type their sample cells share."""
    typed: list[Column] = []
    for column in columns:
        if column.role == "attribute" and column.source == "fixed":
            cells = [row[column.index].strip() for row in sample if column.index < len(row)]
            kind = infer([cell for cell in cells if cell], dates)
            column = Column(column.index, column.header, column.role, column.name, kind, "inferred")
        typed.append(column)
    return typed


def infer(cells: list[str], dates: DateOrder) -> FieldType:
    """The narrowest type the cells share, allowing one cell in twenty not to fit (those rows are
    then rejected as typos, not turned into text). A column of only 0 and 1 is a number: a yes, no,
    true or false is what makes it a boolean (declare it in [contacts.fields] otherwise)."""
    if not cells:
        return "text"
    for kind in ("bool", "number", "date"):
        fitting = [cell for cell in cells if _fits(cell, kind, dates)]
        if (len(cells) - len(fitting)) * MISFITS_PER_CELL > len(cells):
            continue
        if kind == "bool" and all(cell in ("0", "1") for cell in fitting):
            continue
        return kind
    return "text"


def _fits(cell: str, kind: FieldType, dates: DateOrder) -> bool:
    try:
        parse(cell, kind, dates)
    except ValueError:
        return False
    return True


def parse(cell: str, kind: FieldType, dates: DateOrder) -> Any:
    """CELL (not empty) as a JSON value of KIND; ValueError with the reason when it does not fit.

    Numbers with leading zeros (postcodes, phone numbers) and very long digit strings are not
    numbers, so nothing loses digits. Dates are stored as ISO "YYYY-MM-DD" text, which audiences
    compare correctly.
    """
    if kind == "text":
        return cell
    if kind == "bool":
        value = _BOOLEANS.get(cell.lower())
        if value is None:
            raise ValueError(f"{cell!r} is not a boolean (true/false, yes/no, y/n, 1/0)")
        return value
    if kind == "number":
        if _INTEGER.fullmatch(cell):
            return int(cell)
        if _DECIMAL.fullmatch(cell) and math.isfinite(number := float(cell)):
            return number
        raise ValueError(f"{cell!r} is not a number")
    return _date(cell, dates).isoformat()


def _date(cell: str, dates: DateOrder) -> date:
    try:
        if _ISO_DATE.fullmatch(cell):
            return date.fromisoformat(cell)
        if found := _LOCAL_DATE.fullmatch(cell):
            first, second, year = (int(part) for part in found.groups())
            day, month = (first, second) if dates == "day-first" else (second, first)
            return date(year, month, day)
    except ValueError:
        pass
    local = "DD/MM/YYYY" if dates == "day-first" else "MM/DD/YYYY"
    raise ValueError(f"{cell!r} is not a date (YYYY-MM-DD or {local})")
