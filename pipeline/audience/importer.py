"""CSV import of contacts: streamed in batches, every bad row set aside with its line number and reason.

The file is read row by row and written BATCH_SIZE rows at a time, so memory
stays flat however long the file is (apart from the set of addresses already
seen, which the in-file duplicate check needs); a second thread writes one batch
while the next is read. A batch looks up which of its addresses exist and which
are suppressed with one query each, then inserts the new contacts (executemany
on SQLite, COPY on PostgreSQL), with ``update_existing`` rewrites those that
differ, and subscribes the batch to the list. Importing the same file twice
changes nothing, and an address another import stores meanwhile is skipped.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import itertools
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, String, any_, bindparam, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from pipeline.audience.columns import (
    SAMPLE_ROWS,
    Column,
    DateOrder,
    FieldType,
    parse,
    plan_columns,
    with_types,
)
from pipeline.audience.contacts import (
    ATTRIBUTE_NAME,
    PERSONAL_FIELDS,
    RESERVED_NAMES,
    needs_smtputf8,
    normalize_email,
)
from pipeline.audience.exporter import restore, writer
from pipeline.audience.lists import ensure_list
from pipeline.errors import ContactError
from pipeline.storage.engines import analyze, session
from pipeline.storage.models import (
    Contact,
    ContactField,
    Subscription,
    SubscriptionStatus,
    Suppression,
    email_hash,
    utcnow,
)

# Rows a transaction: each commit writes every index page the batch touched (the email hashes land
# all over their index), so fewer, larger batches write less. 10,000 against 2,000, 200,000 rows:
# 13-24% more rows per CPU-second on SQLite, 7-9% on PostgreSQL, for ~35 MB more at the peak.
BATCH_SIZE = 10_000
_BULK_CACHE_KIB = 16_384  # see _bulk_cache
REJECTS_SUFFIX = ".rejects.csv"
_CONTACTS = Contact.__table__  # type: ignore[attr-defined]
# Field -> longest value its column takes: checked here because PostgreSQL enforces it and SQLite does not.
FIELDS = {name: _CONTACTS.c[name].type.length for name in PERSONAL_FIELDS}
_SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]

Progress = Callable[[int, int], None]  # (bytes read so far, file size in bytes)


@dataclass
class ImportSummary:
    inserted: int = 0
    updated: int = 0
    # Already stored: identical, left as they were without --update, or just stored by another import.
    unchanged: int = 0
    rejected: int = 0
    subscribed: int = 0  # newly subscribed to the --list list
    # Stored rows whose address has a non-ASCII local part: only a server offering SMTPUTF8 takes them.
    need_smtputf8: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # rejected rows per reason code


@dataclass
class _Row:
    line: int
    cells: list[str]
    email: str
    key: str
    hashed: str  # email_hash(key): what suppressions are looked up by and contact.email_hash holds
    fields: dict[str, str | None]
    attributes: dict[str, Any]  # None values: the cell was empty, so --update removes the attribute


class _Reject(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@lru_cache(maxsize=1024)
def _is_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class _Header:
    """The header row as columns: which is the email, which are fields, which attributes of which type.

    What each column does is sorted out once, here, so that a row (parse) costs only its cells.
    """

    def __init__(self, names: list[str], columns: list[Column], dates: DateOrder) -> None:
        self.names = names
        self.width = len(names)
        self.columns = columns
        self.dates = dates
        self.email = next(column.index for column in columns if column.role == "email")
        self._fields = [(column.index, column.name) for column in columns if column.role == "field"]
        others = ("full_name", "attribute", "attributes")
        self._others = [column for column in columns if column.role in others]

    def parse(self, line: int, cells: list[str]) -> _Row:
        if len(cells) != self.width:
            raise _Reject("fields", f"expected {self.width} fields, found {len(cells)}")
        joined = "".join(cells)
        # An apostrophe is rare, and only a cell holding one can need `restore`.
        restored = (restore(cell) for cell in cells) if "'" in joined else cells
        values = [cell.strip() for cell in restored]
        try:
            email, key = normalize_email(values[self.email])
        except ContactError as exc:
            raise _Reject("empty" if not values[self.email] else "invalid", exc.message) from None
        fields: dict[str, str | None] = {name: values[index] or None for index, name in self._fields}
        attributes: dict[str, Any] = {}
        for column in self._others:
            value = values[column.index]
            if column.role == "attribute":
                try:
                    attributes[column.name] = parse(value, column.type, self.dates) if value else None
                except ValueError as exc:
                    raise _Reject("type", f"{column.header} is a {column.type} column: {exc}") from None
            elif column.role == "full_name":
                first, _, last = value.rpartition(" ") if " " in value else (value, "", "")
                fields["first_name"], fields["last_name"] = first.strip() or None, last.strip() or None
            elif value:  # attributes
                attributes.update(_json_attributes(column.header, value))
        # Names go into the To: header, which never takes CR or LF (RFC 5322 2.2): a control
        # character anywhere in the row is rare, and only then is each field searched.
        controlled = _CONTROL.search(joined) is not None
        for name, given in fields.items():
            if given is not None and len(given) > FIELDS[name]:
                raise _Reject("too_long", f"{name} is longer than {FIELDS[name]} characters")
            if controlled and given is not None and _CONTROL.search(given):
                raise _Reject("control", f"{name} holds a line break or control character")
        timezone = fields.get("timezone")
        if timezone is not None and not _is_timezone(timezone):
            raise _Reject("timezone", f"unknown timezone {timezone!r}")
        return _Row(line, cells, email, key, email_hash(key), fields, attributes)


def _json_attributes(header: str, value: str) -> dict[str, Any]:
    """listmonk's `attributes` column: a JSON object whose keys become attributes."""
    try:
        found = json.loads(value)
    except ValueError:
        found = None
    if not isinstance(found, dict) or not all(ATTRIBUTE_NAME.match(str(name)) for name in found):
        raise _Reject("type", f"{header} must be a JSON object of attribute names and values")
    return {name: item for name, item in found.items() if name not in RESERVED_NAMES}


class _Rejects:
    """The rejects CSV, opened on the first rejected row: line, reason, then the row as it was."""

    def __init__(self, path: Path | None, header: list[str], summary: ImportSummary) -> None:
        self.path = path
        self.header = header
        self.summary = summary
        self._file: TextIO | None = None
        self._writer: Any = None
        self._lock = threading.Lock()  # the reader rejects bad rows, the writer suppressed ones

    def add(self, line: int, code: str, detail: str, cells: list[str]) -> None:
        with self._lock:
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
        if "".join(cells).strip():  # not blank: some cell holds more than whitespace
            yield start, cells


def _list_id(engine: Engine, name: str) -> int:
    """The id of mailing list NAME, created if new."""
    with session(engine) as db:
        found = ensure_list(db, name).id
    assert found is not None
    return found


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


# The statements a batch runs, named. Lookups take the batch as one parameter (_among): psycopg
# re-parses a query with 2,000 IN placeholders on every call (its cache takes only short queries),
# and SQLAlchemy expands such a list afresh each time, which cost more than the lookups themselves.
# New contacts go in with COPY on PostgreSQL, through a staging table so that an address another
# import stored meanwhile is skipped, not an error.
_NEW_COLUMNS = ("email", "email_key", "email_hash", *FIELDS, "attributes")
_STAGE_NEW = (
    "CREATE TEMP TABLE import_contact ON COMMIT DROP AS"
    f" SELECT {', '.join(_NEW_COLUMNS)} FROM contact WITH NO DATA"
)
_COPY_NEW = f"COPY import_contact ({', '.join(_NEW_COLUMNS)}) FROM STDIN"
_INSERT_STAGED = (
    f"INSERT INTO contact ({', '.join(_NEW_COLUMNS)}, created_at, updated_at)"
    f" SELECT {', '.join(_NEW_COLUMNS)}, %(now)s, %(now)s FROM import_contact"
    " ON CONFLICT (email_key) DO NOTHING"
)
_INSERT_NEW = (  # SQLite
    f"INSERT INTO contact ({', '.join(_NEW_COLUMNS)}, created_at, updated_at)"
    f" VALUES ({', '.join('?' * (len(_NEW_COLUMNS) + 2))}) ON CONFLICT (email_key) DO NOTHING"
)


# SQLAlchemy keeps an INSERT's row count only when asked; ON CONFLICT DO NOTHING makes it the answer.
_COUNTED = {"preserve_rowcount": True}


def _postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def _among(connection: Connection, column: Any, values: list[str]) -> Any:
    """COLUMN is one of VALUES, given as one parameter: an array on PostgreSQL, a JSON array that
    json_each unpacks on SQLite."""
    if _postgres(connection):
        return column == any_(bindparam("among", values, type_=postgresql.ARRAY(String)))
    return column.in_(select(func.json_each(json.dumps(values)).table_valued("value").c.value))


def _suppressed(connection: Connection, hashes: list[str]) -> Any:
    """(email_hash, reason) of the suppressed addresses among HASHES."""
    return connection.execute(
        select(col(Suppression.email_hash), col(Suppression.reason)).where(
            _among(connection, Suppression.email_hash, hashes)
        )
    )


def _stored(connection: Connection, keys: list[str]) -> dict[str, Any]:
    """The stored contacts among KEYS, by email_key, with what an update compares."""
    columns = (_CONTACTS.c[name] for name in ("id", "email_key", "email", "attributes", *FIELDS))
    found = connection.execute(select(*columns).where(_among(connection, _CONTACTS.c.email_key, keys)))
    return {row.email_key: row for row in found}


def _stored_as(connection: Connection, column: str) -> Callable[[Any], Any]:
    """How SQLAlchemy turns a value of the contact table's COLUMN into what the driver stores."""
    type_ = _CONTACTS.c[column].type.dialect_impl(connection.dialect)
    return type_.bind_processor(connection.dialect) or (lambda value: value)


def _insert_new(connection: Connection, new: list[_Row], now: datetime) -> int:
    """Insert the NEW rows; returns how many were inserted.

    An address another import stored since the lookup is skipped (ON CONFLICT DO NOTHING).
    """
    if _postgres(connection):
        return _copy_new(connection, new, now)
    # The driver's own executemany, each value as SQLite stores it (the columns' own bind
    # processors; the timestamp once a batch): SQLAlchemy's processing of every row's parameters
    # cost as much CPU as SQLite's inserts. Plain executemany, too: asking for the new ids with
    # RETURNING makes the insert twice as slow.
    stored_now = _stored_as(connection, "created_at")(now)
    attributes = _stored_as(connection, "attributes")
    rows = [
        (
            row.email,
            row.key,
            row.hashed,
            *(row.fields.get(name) for name in FIELDS),
            attributes(_present(row.attributes)),
            stored_now,
            stored_now,
        )
        for row in new
    ]
    result = connection.exec_driver_sql(_INSERT_NEW, rows, execution_options=_COUNTED)
    return result.rowcount


def _copy_new(connection: Connection, new: list[_Row], now: datetime) -> int:
    """PostgreSQL: COPY into a staging table, then one INSERT ... SELECT that skips stored addresses."""
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(_STAGE_NEW)
        with cursor.copy(_COPY_NEW) as copy:
            for row in new:
                fields = row.fields
                copy.write_row(
                    (
                        row.email,
                        row.key,
                        row.hashed,
                        *(fields.get(name) for name in FIELDS),
                        json.dumps(_present(row.attributes)),
                    )
                )
        cursor.execute(_INSERT_STAGED, {"now": now})
        return int(cursor.rowcount)


def _subscribe(connection: Connection, list_id: int, keys: list[str], now: datetime) -> int:
    """Subscribe the contacts among KEYS to the list; returns how many were newly subscribed.

    An existing subscription, even an unsubscribed one, is left alone (ON CONFLICT DO NOTHING),
    which also makes a concurrent import of the same list harmless.
    """
    dialect_insert = (postgresql if _postgres(connection) else sqlite).insert
    status = SubscriptionStatus.subscribed.value
    contacts = select(
        _CONTACTS.c.id,
        literal(list_id),
        literal(status, String),
        literal(now, _SUBSCRIPTIONS.c.created_at.type),
        literal(now, _SUBSCRIPTIONS.c.updated_at.type),
    ).where(_among(connection, _CONTACTS.c.email_key, keys))
    statement = (
        dialect_insert(_SUBSCRIPTIONS)
        .from_select(["contact_id", "list_id", "status", "created_at", "updated_at"], contacts)
        .on_conflict_do_nothing()
    )
    return connection.execute(statement, execution_options=_COUNTED).rowcount


def _present(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes to store for a new contact: an empty cell stores nothing."""
    return {name: value for name, value in attributes.items() if value is not None}


class _Batch:
    """Writes one batch of valid rows in one transaction."""

    def __init__(self, update_existing: bool, list_id: int | None, summary: ImportSummary, rejects: _Rejects):
        self.update_existing = update_existing
        self.list_id = list_id
        self.summary = summary
        self.rejects = rejects

    def write(self, connection: Connection, rows: list[_Row]) -> None:
        by_hash = {row.hashed: row for row in rows}
        for hashed, reason in _suppressed(connection, list(by_hash)):
            row = by_hash.pop(hashed)
            self.rejects.add(row.line, "suppressed", f"suppressed ({reason})", row.cells)
        keys = [row.key for row in by_hash.values()]
        self.summary.need_smtputf8 += sum(needs_smtputf8(row.email) for row in by_hash.values())
        stored = _stored(connection, keys)
        now = utcnow()
        new = [row for row in by_hash.values() if row.key not in stored]
        if new:
            inserted = _insert_new(connection, new, now)
            self.summary.inserted += inserted
            self.summary.unchanged += len(new) - inserted  # stored by another import meanwhile
        self._update(
            [(row, stored[row.key]) for row in by_hash.values() if row.key in stored], connection, now
        )
        if self.list_id is not None:
            self.summary.subscribed += _subscribe(connection, self.list_id, keys, now)

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


def _delimiter(header_line: str) -> str:
    """Semicolons when the header has more of them than commas (spreadsheets in many locales)."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


@dataclass(frozen=True)
class ImportOptions:
    """How a file's columns are read: --map, [contacts.fields] and [contacts] dates."""

    mapping: Mapping[str, str] = field(default_factory=dict)  # header key -> target (columns.parse_mapping)
    declared: Mapping[str, FieldType] = field(default_factory=dict)
    dates: DateOrder = "day-first"


@dataclass(frozen=True)
class ImportPreview:
    """What an import would make of a file, without writing anything."""

    delimiter: str
    encoding: str
    columns: list[Column]
    rows: list[tuple[int, dict[str, Any] | str]]  # (line, values as stored) or (line, why rejected)


def rejects_path_for(path: Path) -> Path:
    """Where an import of PATH sets rejected rows aside: NAME.rejects.csv beside it (what
    `comms init`'s .gitignore ignores, since the rows hold personal data)."""
    return path.with_name(f"{path.stem}{REJECTS_SUFFIX}")


def stored_types(engine: Engine) -> dict[str, FieldType]:
    """The attribute types earlier imports fixed."""
    with engine.connect() as connection:
        rows = connection.execute(select(col(ContactField.name), col(ContactField.type)))
        # Only _store_types writes the column, always a FieldType.
        return {name: cast(FieldType, kind) for name, kind in rows}


def _store_types(engine: Engine, columns: list[Column], stored: Mapping[str, FieldType]) -> None:
    """Remember new attribute columns' types; a type declared in comms.toml replaces a stored one."""
    now = utcnow()
    with engine.begin() as connection:
        for column in columns:
            if column.role != "attribute" or stored.get(column.name) == column.type:
                continue
            if column.name in stored:
                connection.execute(
                    update(ContactField)
                    .where(col(ContactField.name) == column.name)
                    .values(type=column.type, updated_at=now)
                )
            else:
                values = {"name": column.name, "type": column.type, "updated_at": now}
                connection.execute(insert(ContactField).values(values))


class _Source:
    """An open CSV file: its delimiter, encoding, typed header and records (the sample first)."""

    def __init__(
        self,
        text: io.TextIOWrapper[io.BufferedReader],
        path: Path,
        options: ImportOptions,
        stored: Mapping[str, FieldType],
    ):
        binary = text.buffer
        self.encoding = "UTF-8 with BOM" if binary.peek(3)[:3] == codecs.BOM_UTF8 else "UTF-8"
        header_line = text.readline()
        if not header_line.strip():
            raise ContactError("the file is empty: expected a header row with an `email` column", path=path)
        self.delimiter = _delimiter(header_line)
        names = next(csv.reader([header_line], delimiter=self.delimiter))
        try:
            planned = plan_columns(names, options.mapping, options.declared, stored)
        except ContactError as exc:
            raise ContactError(exc.message, path=path, line=exc.line) from None
        records = _records(text, self.delimiter)
        self.sample = list(itertools.islice(records, SAMPLE_ROWS))
        self.rest = records
        self.columns = with_types(planned, [cells for _, cells in self.sample], options.dates)
        self.header = _Header(names, self.columns, options.dates)

    def records(self) -> Iterator[tuple[int, list[str]]]:
        return itertools.chain(self.sample, self.rest)


@contextmanager
def _reading(path: Path) -> Iterator[io.TextIOWrapper[io.BufferedReader]]:
    """The file as text, with decoding and CSV errors turned into one ContactError naming it."""
    try:
        with io.TextIOWrapper(path.open("rb"), encoding="utf-8-sig", newline="") as text:
            yield text
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text (byte {exc.start} of a chunk): save it as UTF-8"
        raise ContactError(message, path=path) from None
    except csv.Error as exc:
        raise ContactError(f"unreadable CSV: {exc}", path=path) from None


def preview_import(
    engine: Engine | None, path: Path, options: ImportOptions | None = None, *, rows: int = 5
) -> ImportPreview:
    """Delimiter, encoding, column mapping and types, and the first ROWS as they would be stored."""
    options = options or ImportOptions()
    stored = stored_types(engine) if engine is not None else {}
    with _reading(path) as text:
        source = _Source(text, path, options, stored)
        shown: list[tuple[int, dict[str, Any] | str]] = []
        for line, cells in source.sample[:rows]:
            try:
                row = source.header.parse(line, cells)
            except _Reject as reject:
                shown.append((line, reject.detail))
                continue
            shown.append((line, {"email": row.email, **_present(row.fields), **_present(row.attributes)}))
    return ImportPreview(source.delimiter, source.encoding, source.columns, shown)


def import_contacts(
    engine: Engine,
    path: Path,
    *,
    list_name: str | None = None,
    update_existing: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    options: ImportOptions | None = None,
) -> ImportSummary:
    """Import contacts from the CSV file at PATH; rejected rows go to REJECTS_PATH when given.

    With LIST_NAME every imported (or already stored) contact is subscribed to that list,
    which is created if new; with UPDATE_EXISTING stored contacts take the file's values.
    OPTIONS says how columns map and what types they hold (see pipeline.audience.columns).
    """
    options = options or ImportOptions()
    summary = ImportSummary()
    total = path.stat().st_size
    if rejects_path is not None:
        rejects_path.unlink(missing_ok=True)  # the rejects file always describes the latest import
    stored = stored_types(engine)
    with _reading(path) as text:
        source = _Source(text, path, options, stored)
        binary = text.buffer
        list_id = _list_id(engine, list_name) if list_name is not None else None
        header = source.header
        rejects = _Rejects(rejects_path, header.names, summary)
        batch = _Batch(update_existing, list_id, summary, rejects)
        seen: dict[str, int] = {}
        pending: list[_Row] = []
        try:
            with _rarer_full_collections, _Writer(engine, batch, path) as batches:
                for line, cells in source.records():
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
                        batches.write(pending)
                        pending = []
                        if progress:
                            progress(binary.tell(), total)
                batches.write(pending)
        finally:
            rejects.close()
    _store_types(engine, source.columns, stored)
    if summary.inserted or summary.subscribed:
        analyze(engine, ("contact", "subscription", "mailing_list"))
    if progress:
        progress(total, total)
    return summary


class _RarerFullCollections:
    """While an import runs, the garbage collector's oldest generation is collected 10 times less often.

    A batch's rows live until it is written, long enough to reach that generation, and with
    the default thresholds every few batches then set off a collection of every object in the
    process (SQLAlchemy's and the rest): 15% of an import's CPU, measured on 100,000 rows. The
    thresholds are the process's, so the first import to start raises them and the last to end
    puts them back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._before = gc.get_threshold()

    def __enter__(self) -> None:
        with self._lock:
            if self._running == 0:
                self._before = gc.get_threshold()
                young, middle, oldest = self._before
                gc.set_threshold(young, middle, oldest * 10)
            self._running += 1

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                gc.set_threshold(*self._before)


_rarer_full_collections = _RarerFullCollections()


class _Writer:
    """Writes each batch on a second thread while the next one is read: one batch in flight at most.

    On PostgreSQL the server's work on a batch (index entries, key checks) takes about as long
    as reading and validating the next one, so taking turns would leave each side idle half the
    time. Batches are still written one at a time, in order, each in its own transaction.
    """

    def __init__(self, engine: Engine, batch: _Batch, path: Path) -> None:
        self._engine = engine
        self._batch = batch
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="comms-import")
        self._in_flight: Future[None] | None = None

    def write(self, rows: list[_Row]) -> None:
        """Hand ROWS to the writer once the batch before them is stored (its error raises here)."""
        self.wait()
        if rows:
            self._in_flight = self._thread.submit(_flush, self._engine, self._batch, rows, self._path)

    def wait(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.wait()
        finally:
            self._thread.shutdown()


def _flush(engine: Engine, batch: _Batch, rows: list[_Row], path: Path) -> None:
    try:
        with engine.begin() as connection, _bulk_cache(connection):
            batch.write(connection, rows)
    except IntegrityError:
        raise ContactError(
            "another process changed the same contacts during the import: run it again", path=path
        ) from None


@contextmanager
def _bulk_cache(connection: Connection) -> Iterator[None]:
    """On SQLite, a page cache of _BULK_CACHE_KIB while a batch is written, then the connection's
    own again (storage.drivers keeps it small, so that long-lived processes stay small). A batch
    dirties index pages all over the file, which a small cache spills and reads back: at 1,000,000
    rows, 13,600 rows per CPU-second against 11,757."""
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={before}")
