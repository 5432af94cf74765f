"""CSV import of contacts: streamed in batches, every bad row set aside with its line number and reason.

The file is read row by row and written BATCH_SIZE rows at a time with
executemany, so memory stays flat however long the file is (apart from the set
of addresses already seen, which the in-file duplicate check needs). A batch
looks up which of its addresses exist and which are suppressed with one query
each, then inserts the new contacts and, with ``update_existing``, rewrites those
that differ: the same statements on SQLite and PostgreSQL, and importing the
same file twice changes nothing.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.contacts import ATTRIBUTE_NAME, PERSONAL_FIELDS, RESERVED_NAMES, normalize_email
from pipeline.db import analyze
from pipeline.errors import ContactError
from pipeline.exporter import restore, writer
from pipeline.models import (
    Contact,
    MailingList,
    Subscription,
    SubscriptionStatus,
    Suppression,
    email_hash,
    utcnow,
)

BATCH_SIZE = 2000
_CONTACTS = Contact.__table__  # type: ignore[attr-defined]
# Field -> longest value its column takes: checked here because PostgreSQL enforces it and SQLite does not.
FIELDS = {name: _CONTACTS.c[name].type.length for name in PERSONAL_FIELDS}
_SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]

Progress = Callable[[int, int], None]  # (bytes read so far, file size in bytes)


@dataclass
class ImportSummary:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0  # already stored (identical, or left as they were without --update)
    rejected: int = 0
    subscribed: int = 0  # newly subscribed to the --list list
    reasons: Counter[str] = field(default_factory=Counter)  # rejected rows per reason code


@dataclass
class _Row:
    line: int
    cells: list[str]
    email: str
    key: str
    fields: dict[str, str | None]
    attributes: dict[str, Any]  # None values: the cell was empty, so --update removes the attribute


class _Reject(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


_INTEGER = re.compile(r"-?(?:0|[1-9]\d{0,17})")
_DECIMAL = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def typed(cell: str) -> Any:
    """A CSV cell as a JSON value: integers, decimals and true/false become numbers and booleans.

    Numbers with leading zeros (postcodes, phone numbers) and very long digit strings
    stay text, so nothing loses digits. ISO dates stay "YYYY-MM-DD" text, which
    compares correctly as text.
    """
    if _INTEGER.fullmatch(cell):
        return int(cell)
    if _DECIMAL.fullmatch(cell):
        number = float(cell)
        return number if math.isfinite(number) else cell
    if cell.lower() in ("true", "false"):
        return cell.lower() == "true"
    return cell


@lru_cache(maxsize=1024)
def _is_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class _Header:
    """The header row: which column is the email, which are fields, which are attributes."""

    def __init__(self, names: list[str], path: Path) -> None:
        self.names = names
        self.width = len(names)
        self.email: int | None = None
        self.fields: dict[str, int] = {}
        self.attributes: dict[str, int] = {}
        seen: set[str] = set()
        for index, raw in enumerate(names):
            name = raw.strip()
            lowered = name.lower()
            where = f"column {index + 1} ({name!r})"
            if not name:
                raise ContactError(f"column {index + 1} has no name in the header", path=path, line=1)
            if lowered in seen:
                raise ContactError(f"{where} appears twice in the header", path=path, line=1)
            seen.add(lowered)
            if lowered == "email":
                self.email = index
            elif lowered in FIELDS:
                self.fields[lowered] = index
            elif lowered in RESERVED_NAMES:
                raise ContactError(f"{where} is reserved for comms' own bookkeeping", path=path, line=1)
            elif not ATTRIBUTE_NAME.match(name):
                raise ContactError(
                    f"{where}: attribute names are letters, digits, spaces and _ . -", path=path, line=1
                )
            else:
                self.attributes[name] = index
        if self.email is None:
            raise ContactError("the header has no `email` column", path=path, line=1)

    def parse(self, line: int, cells: list[str]) -> _Row:
        if len(cells) != self.width:
            raise _Reject("fields", f"expected {self.width} fields, found {len(cells)}")
        values = [restore(cell).strip() for cell in cells]
        assert self.email is not None
        try:
            email, key = normalize_email(values[self.email])
        except ContactError as exc:
            raise _Reject("empty" if not values[self.email] else "invalid", exc.message) from None
        fields: dict[str, str | None] = {}
        for name, index in self.fields.items():
            value = values[index] or None
            if value is not None and len(value) > FIELDS[name]:
                raise _Reject("too_long", f"{name} is longer than {FIELDS[name]} characters")
            fields[name] = value
        timezone = fields.get("timezone")
        if timezone is not None and not _is_timezone(timezone):
            raise _Reject("timezone", f"unknown timezone {timezone!r}")
        attributes = {name: typed(values[i]) if values[i] else None for name, i in self.attributes.items()}
        return _Row(line, cells, email, key, fields, attributes)


class _Rejects:
    """The rejects CSV, opened on the first rejected row: line, reason, then the row as it was."""

    def __init__(self, path: Path | None, header: list[str], summary: ImportSummary) -> None:
        self.path = path
        self.header = header
        self.summary = summary
        self._file: TextIO | None = None
        self._writer: Any = None

    def add(self, line: int, code: str, detail: str, cells: list[str]) -> None:
        self.summary.rejected += 1
        self.summary.reasons[code] += 1
        if self.path is None:
            return
        if self._writer is None:  # opened late so a clean import leaves no file behind
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = writer(self._file)
            self._writer.writerow(["line", "reason", *self.header])
        self._writer.writerow([str(line), detail, *cells])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _records(text: TextIO, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record starts, cells) for each non-blank record after the header."""
    reader = csv.reader(text, delimiter=delimiter)
    end = 1  # the header was line 1
    for cells in reader:
        start, end = end + 1, reader.line_num + 1
        if any(cell.strip() for cell in cells):
            yield start, cells


def _list_id(engine: Engine, name: str) -> int:
    """The id of mailing list NAME, created if new."""
    if not name.strip() or len(name) > 100:
        raise ContactError(f"list name {name!r} must be 1 to 100 characters")
    with engine.begin() as connection:
        found = connection.scalar(select(MailingList.id).where(MailingList.name == name))
        if found is None:
            values = {"name": name, "description": "", "created_at": utcnow()}
            found = connection.execute(
                insert(MailingList).values(values).returning(MailingList.id)
            ).scalar_one()
        return int(found)


def _changes(row: _Row, stored: Any) -> dict[str, Any]:
    """Columns to rewrite for ROW over the STORED contact: the file's fields, attributes merged."""
    changes: dict[str, Any] = {}
    if row.email != stored.email:
        changes["email"] = row.email
    for name, value in row.fields.items():
        if getattr(stored, name) != value:
            changes[name] = value
    attributes = dict(stored.attributes)
    for name, value in row.attributes.items():
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    if attributes != stored.attributes:
        changes["attributes"] = attributes
    return changes


class _Batch:
    """Writes one batch of valid rows in one transaction."""

    def __init__(self, update_existing: bool, list_id: int | None, summary: ImportSummary, rejects: _Rejects):
        self.update_existing = update_existing
        self.list_id = list_id
        self.summary = summary
        self.rejects = rejects

    def write(self, connection: Connection, rows: list[_Row]) -> None:
        by_hash = {email_hash(row.key): row for row in rows}
        suppressed = connection.execute(
            select(Suppression.email_hash, Suppression.reason).where(Suppression.email_hash.in_(by_hash))
        )
        for hashed, reason in suppressed:
            row = by_hash.pop(hashed)
            self.rejects.add(row.line, "suppressed", f"suppressed ({reason})", row.cells)
        rows = list(by_hash.values())
        keys = [row.key for row in rows]
        stored = {
            found.email_key: found
            for found in connection.execute(
                select(
                    _CONTACTS.c.id,
                    _CONTACTS.c.email_key,
                    _CONTACTS.c.email,
                    _CONTACTS.c.attributes,
                    *(_CONTACTS.c[name] for name in FIELDS),
                ).where(_CONTACTS.c.email_key.in_(keys))
            )
        }
        now = utcnow()
        new = [row for row in rows if row.key not in stored]
        if new:
            # Plain executemany: asking for the new ids with RETURNING makes the insert twice as slow.
            connection.execute(
                insert(_CONTACTS),
                [
                    {
                        "email": row.email,
                        "email_key": row.key,
                        "email_hash": email_hash(row.key),
                        **dict.fromkeys(FIELDS),
                        **row.fields,
                        "attributes": {k: v for k, v in row.attributes.items() if v is not None},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for row in new
                ],
            )
            self.summary.inserted += len(new)
        self._update([(row, stored[row.key]) for row in rows if row.key in stored], connection, now)
        if self.list_id is not None:
            self._subscribe(
                connection, [found.id for found in stored.values()], [row.key for row in new], now
            )

    def _update(self, pairs: list[tuple[_Row, Any]], connection: Connection, now: Any) -> None:
        if not self.update_existing:
            self.summary.unchanged += len(pairs)
            return
        changed: list[dict[str, Any]] = []
        for row, stored in pairs:
            changes = _changes(row, stored)
            if changes:
                full = {name: getattr(stored, name) for name in ("email", "attributes", *FIELDS)}
                changed.append({"b_id": stored.id, **{f"b_{k}": v for k, v in (full | changes).items()}})
        self.summary.unchanged += len(pairs) - len(changed)
        if changed:
            columns = ("email", "attributes", *FIELDS)
            statement = (
                update(_CONTACTS)
                .where(_CONTACTS.c.id == bindparam("b_id"))
                .values({name: bindparam(f"b_{name}") for name in columns} | {"updated_at": now})
            )
            connection.execute(statement, changed)
            self.summary.updated += len(changed)

    def _subscribe(
        self, connection: Connection, stored_ids: list[int], new_keys: list[str], now: Any
    ) -> None:
        """Subscribe the batch to the list; an existing (even unsubscribed) subscription is left alone."""
        already = set(
            connection.scalars(
                select(_SUBSCRIPTIONS.c.contact_id).where(
                    _SUBSCRIPTIONS.c.list_id == self.list_id, _SUBSCRIPTIONS.c.contact_id.in_(stored_ids)
                )
            )
        )
        new_ids = connection.scalars(select(_CONTACTS.c.id).where(_CONTACTS.c.email_key.in_(new_keys))).all()
        fresh = [
            {
                "contact_id": contact_id,
                "list_id": self.list_id,
                "status": SubscriptionStatus.subscribed.value,
                "created_at": now,
                "updated_at": now,
            }
            for contact_id in [*stored_ids, *new_ids]
            if contact_id not in already
        ]
        if fresh:
            connection.execute(insert(_SUBSCRIPTIONS), fresh)
            self.summary.subscribed += len(fresh)


def _delimiter(header_line: str) -> str:
    """Semicolons when the header has more of them than commas (spreadsheets in many locales)."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


def import_contacts(
    engine: Engine,
    path: Path,
    *,
    list_name: str | None = None,
    update_existing: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Import contacts from the CSV file at PATH; rejected rows go to REJECTS_PATH when given.

    With LIST_NAME every imported (or already stored) contact is subscribed to that list,
    which is created if new; with UPDATE_EXISTING stored contacts take the file's values.
    """
    summary = ImportSummary()
    total = path.stat().st_size
    if rejects_path is not None:
        rejects_path.unlink(missing_ok=True)  # the rejects file always describes the latest import
    list_id = _list_id(engine, list_name) if list_name is not None else None
    with path.open("rb") as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        try:
            header_line = text.readline()
            if not header_line.strip():
                raise ContactError(
                    "the file is empty: expected a header row with an `email` column", path=path
                )
            delimiter = _delimiter(header_line)
            header = _Header(next(csv.reader([header_line], delimiter=delimiter)), path)
            rejects = _Rejects(rejects_path, header.names, summary)
            batch = _Batch(update_existing, list_id, summary, rejects)
            seen: dict[str, int] = {}
            pending: list[_Row] = []
            try:
                for line, cells in _records(text, delimiter):
                    try:
                        row = header.parse(line, cells)
                        if row.key in seen:
                            raise _Reject("duplicate", f"duplicate of line {seen[row.key]}")
                    except _Reject as reject:
                        rejects.add(line, reject.code, reject.detail, cells)
                        continue
                    seen[row.key] = line
                    pending.append(row)
                    if len(pending) >= batch_size:
                        _flush(engine, batch, pending, path)
                        pending = []
                        if progress:
                            progress(binary.tell(), total)
                _flush(engine, batch, pending, path)
            finally:
                rejects.close()
        except UnicodeDecodeError as exc:
            raise ContactError(
                f"not UTF-8 text (byte {exc.start} of a chunk): save it as UTF-8", path=path
            ) from None
        except csv.Error as exc:
            raise ContactError(f"unreadable CSV: {exc}", path=path) from None
    if summary.inserted or summary.subscribed:
        analyze(engine, ("contact", "subscription", "mailing_list"))
    if progress:
        progress(total, total)
    return summary


def _flush(engine: Engine, batch: _Batch, rows: list[_Row], path: Path) -> None:
    if not rows:
        return
    try:
        with engine.begin() as connection:
            batch.write(connection, rows)
    except IntegrityError:
        raise ContactError(
            "another process changed the same contacts during the import: run it again", path=path
        ) from None
