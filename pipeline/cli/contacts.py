"""Commands for the database, contacts, suppressions and audiences."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pipeline.cli.common import (
    Format,
    FormatOption,
    WorkspaceOption,
    console,
    err_console,
    open_workspace,
    print_rows,
)
from pipeline.errors import AudienceError, ContactError
from pipeline.types import SuppressionReason

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pipeline.audience.importer import ImportOptions, ImportPreview, ImportSummary
    from pipeline.workspace.settings import Settings

db_app = typer.Typer(help="The contact database: schema upgrades and status.", no_args_is_help=True)
contacts_app = typer.Typer(help="Import, export, look up and erase contacts.", no_args_is_help=True)
audience_app = typer.Typer(
    help="Audiences (audiences/*.toml) resolved against the database.", no_args_is_help=True
)


lists_app = typer.Typer(
    help="Mailing lists: counts, display names and descriptions, renames, sign-up forms.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(contacts_app, name="contacts")
    app.add_typer(lists_app, name="lists")
    app.add_typer(audience_app, name="audience")
    app.command("suppress")(suppress_command)
    app.command("unsuppress")(unsuppress_command)


@contextmanager
def _database(workspace: Path | None) -> Iterator[Engine]:
    from pipeline.storage.engines import connect

    engine = connect(open_workspace(workspace).settings)
    try:
        yield engine
    finally:
        engine.dispose()


# --- db ----------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(workspace: WorkspaceOption = None) -> None:
    """Bring the database to the schema this version of comms needs (creates it if new).

    \b
    Example:
      comms db upgrade
    """
    from pipeline.storage.engines import upgrade

    url = open_workspace(workspace).settings.database.url
    before = upgrade(url)
    if before.up_to_date:
        console.print(f"database already at revision {before.head}")
    else:
        console.print(f"database upgraded from revision {before.current or '(empty)'} to {before.head}")


@db_app.command("status")
def db_status(workspace: WorkspaceOption = None) -> None:
    """Show which database is configured and whether its schema is current.

    \b
    Example:
      comms db status
    """
    from pipeline.storage.engines import display_url, make_engine, schema_status

    settings = open_workspace(workspace).settings
    engine = make_engine(settings.database.url, settings.database)
    try:
        status = schema_status(engine)
        console.print(f"database  {display_url(engine)}")
        console.print(f"revision  {status.current or '(empty)'}")
        console.print(f"code needs {status.head}")
        if not status.up_to_date:
            console.print("run `comms db upgrade`")
    finally:
        engine.dispose()


# --- contacts ----------------------------------------------------------------------------------------


def _summary_line(summary: ImportSummary) -> str:
    line = (
        f"inserted {summary.inserted}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, rejected {summary.rejected}"
    )
    if summary.reasons:
        line += " (" + ", ".join(f"{code} {n}" for code, n in summary.reasons.most_common()) + ")"
    return line


class Dates(enum.StrEnum):
    day_first = "day-first"
    month_first = "month-first"


def _import_options(settings: Settings, maps: list[str] | None, dates: Dates | None) -> ImportOptions:
    from pipeline.audience.columns import DateOrder, parse_mapping
    from pipeline.audience.importer import ImportOptions

    contacts = settings.contacts
    order = cast(DateOrder, str(dates) if dates else contacts.dates)
    return ImportOptions(mapping=parse_mapping(maps or []), declared=contacts.fields, dates=order)


def _print_preview(found: ImportPreview) -> None:
    console.print(f"delimiter {found.delimiter!r}, encoding {found.encoding}", highlight=False)
    print_rows(
        ["column", "header", "becomes"],
        [(column.index + 1, column.header, column.describe()) for column in found.columns],
        Format.table,
    )
    for line, values in found.rows:
        shown = values if isinstance(values, str) else json.dumps(values, ensure_ascii=False)
        console.print(f"line {line}: {shown}", markup=False, highlight=False)
    console.print("nothing was written (preview)")


@contacts_app.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(help="CSV with an email column (UTF-8, comma or semicolon).")],
    list_name: Annotated[
        str | None,
        typer.Option("--list", help="Subscribe every imported contact to this list (created if new)."),
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Overwrite stored contacts with the file's values.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Where rejected rows go (default: FILE's name + .rejects.csv).")
    ] = None,
    maps: Annotated[
        list[str] | None,
        typer.Option("--map", help='HEADER=FIELD ("Email Address=email"; "Notes=-" skips it); repeatable.'),
    ] = None,
    dates: Annotated[
        Dates | None,
        typer.Option("--dates", help="How 01/02/2027 reads (default: [contacts] dates, day-first)."),
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Show delimiter, encoding, mapping and types; write nothing.")
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Import contacts from a CSV file; bad rows are set aside with their line number and reason.

    Headers of Mailchimp, listmonk and Mautic exports are recognised. Each attribute column has one
    type (text, number, bool, date): [contacts.fields] in comms.toml, the type stored by an earlier
    import, or inferred from the first rows; a cell that does not fit rejects its row.

    \b
    Example:
      comms contacts import export.csv --list customers --map "Dept=department"
    """
    from pipeline.audience.importer import import_contacts, preview_import, rejects_path_for

    if not file.is_file():
        raise ContactError("no such file", path=file)
    ws = open_workspace(workspace)
    options = _import_options(ws.settings, maps, dates)
    if preview:
        with _database(workspace) as engine:
            _print_preview(preview_import(engine, file, options))
        return
    rejects_path = rejects or rejects_path_for(file)
    with (
        _database(workspace) as engine,
        Progress(
            TextColumn("importing"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("import", total=file.stat().st_size)
        summary = import_contacts(
            engine,
            file,
            list_name=list_name,
            update_existing=update,
            rejects_path=rejects_path,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
            options=options,
        )
    console.print(_summary_line(summary))
    if list_name is not None:
        console.print(f"newly subscribed to {list_name}: {summary.subscribed}")
    if summary.rejected:
        console.print(f"rejected rows written to {rejects_path}")
    if summary.need_smtputf8:
        console.print(
            f"warning: {summary.need_smtputf8} addresses have a non-ASCII local part: they are sent only "
            "through a server that offers SMTPUTF8, and fail (that delivery only) elsewhere"
        )
    if summary.unchanged and not update:
        console.print(
            "stored contacts were left as they were; --update overwrites them with the file's values"
        )


Assignments = Annotated[list[str] | None, typer.Option("--set", help="field=value; repeatable.")]


@contacts_app.command("add")
def contacts_add(
    email: Annotated[str, typer.Argument(help="The new contact's address.")],
    values: Assignments = None,
    list_name: Annotated[str | None, typer.Option("--list", help="Subscribe to this list.")] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Add one contact, typed as an import would type it.

    \b
    Example:
      comms contacts add ada@example.com --set first_name=Ada --set vip=yes --list customers
    """
    from pipeline.audience.editing import parse_assignments, set_contact
    from pipeline.storage.engines import session

    settings = open_workspace(workspace).settings
    with _database(workspace) as engine, session(engine) as current:
        contact = set_contact(
            current,
            email,
            parse_assignments(values or []),
            create=True,
            list_name=list_name,
            declared=settings.contacts.fields,
            dates=settings.contacts.dates,
        )
    console.print(f"added {contact.email}", highlight=False)


@contacts_app.command("set")
def contacts_set(
    email: Annotated[str, typer.Argument(help="The contact's address.")],
    assignments: Annotated[list[str], typer.Argument(help="field=value ... (empty value: remove).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Change fields or attributes of one contact.

    \b
    Example:
      comms contacts set ada@example.com plan=pro renewal=31/12/2027
    """
    from pipeline.audience.editing import parse_assignments, set_contact
    from pipeline.storage.engines import session

    settings = open_workspace(workspace).settings
    with _database(workspace) as engine, session(engine) as current:
        contact = set_contact(
            current,
            email,
            parse_assignments(assignments),
            create=False,
            declared=settings.contacts.fields,
            dates=settings.contacts.dates,
        )
    console.print(f"updated {contact.email}", highlight=False)


@contacts_app.command("export")
def contacts_export(
    audience: Annotated[str | None, typer.Option(help="Only this audience (default: every contact).")] = None,
    out: Annotated[Path | None, typer.Option(help="CSV file to write (default: standard output).")] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Write contacts as CSV (spreadsheet-safe; the importer reads it back).

    \b
    Example:
      comms contacts export --audience customers-eu --out eu.csv
    """
    from pipeline.audience.exporter import export_contacts
    from pipeline.audience.segments import load_audience
    from pipeline.storage.engines import session

    ws = open_workspace(workspace)
    chosen = load_audience(ws, audience) if audience is not None else None
    with _database(workspace) as engine, session(engine) as current:
        if out is None:
            count = export_contacts(current, sys.stdout, chosen)
        else:
            with out.open("w", encoding="utf-8", newline="") as handle:
                count = export_contacts(current, handle, chosen)
    err_console.print(f"exported {count} contacts" + (f" to {out}" if out else ""))


@contacts_app.command("show")
def contacts_show(
    email: Annotated[str, typer.Argument(help="The address to look up.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Everything as JSON (a data-access request).")
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Everything stored about one address: fields, lists, suppression, deliveries and events.

    \b
    Example:
      comms contacts show ada@example.com --json
    """
    from pipeline.audience.contacts import report
    from pipeline.storage.engines import session

    with _database(workspace) as engine, session(engine) as current:
        found = report(current, email)
    data = found.as_dict()
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    console.print(f"[bold]{found.email}[/bold]", highlight=False)
    contact = data["contact"]
    if contact is None:
        console.print("no contact stored")
    else:
        for key in ("first_name", "last_name", "locale", "timezone", "created_at", "updated_at"):
            console.print(f"  {key}: {contact[key] if contact[key] is not None else '-'}", highlight=False)
        for key, value in sorted(contact["attributes"].items()):
            console.print(f"  {key}: {json.dumps(value, ensure_ascii=False)}", highlight=False)
    for item in data["subscriptions"]:
        console.print(f"  list {item['list']}: {item['status']} since {item['since']}", highlight=False)
    if data["suppression"]:
        suppression = data["suppression"]
        console.print(
            f"  suppressed: {suppression['reason']} since {suppression['created_at']}", highlight=False
        )
    for delivery in data["deliveries"]:
        console.print(
            f"  run {delivery['run_id']}: {delivery['status']} {delivery['sent_at'] or ''}"
            f" ({len(delivery['events'])} events)",
            highlight=False,
        )


@contacts_app.command("delete")
def contacts_delete(
    email: Annotated[str, typer.Argument(help="The address whose data is to be erased.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Erase a person: their data goes, a hashed suppression keeps them from being mailed again.

    \b
    Example:
      comms contacts delete ada@example.com --yes
    """
    from pipeline.audience.contacts import erase
    from pipeline.storage.engines import session

    if not yes:
        typer.confirm(f"Erase everything stored about {email}?", abort=True)
    with _database(workspace) as engine, session(engine) as current:
        erase(current, email)
    console.print(f"erased {email}; the address stays suppressed (kept only as a hash)", highlight=False)


def suppress_command(
    email: Annotated[str, typer.Argument(help="The address to stop mailing.")],
    reason: Annotated[SuppressionReason, typer.Option(help="Why.")] = SuppressionReason.manual,
    note: Annotated[str, typer.Option(help="A note for the record.")] = "",
    workspace: WorkspaceOption = None,
) -> None:
    """Stop all mail to an address (kept even if the contact is re-imported).

    \b
    Example:
      comms suppress ada@example.com --reason manual --note "asked by phone"
    """
    from pipeline.audience.contacts import suppress
    from pipeline.storage.engines import session
    from pipeline.types import SuppressionReason

    if reason is SuppressionReason.erased:
        raise ContactError("use `comms contacts delete` to erase a person")
    with _database(workspace) as engine, session(engine) as current:
        suppress(current, email, reason, note)
    console.print(f"suppressed {email}", highlight=False)


def unsuppress_command(
    email: Annotated[str, typer.Argument(help="The address to allow mail to again.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Lift a suppression.

    \b
    Example:
      comms unsuppress ada@example.com
    """
    from pipeline.audience.contacts import unsuppress
    from pipeline.storage.engines import session

    with _database(workspace) as engine, session(engine) as current:
        lifted = unsuppress(current, email)
    if not lifted:
        raise ContactError(f"{email} is not suppressed")
    console.print(f"unsuppressed {email}", highlight=False)


# --- audience ----------------------------------------------------------------------------------------


@audience_app.command("list")
def audience_list(output: FormatOption = Format.table, workspace: WorkspaceOption = None) -> None:
    """The audiences in audiences/*.toml, with their lists and description.

    \b
    Example:
      comms audience list --format json
    """
    from pipeline.audience.segments import audience_names, load_audience

    ws = open_workspace(workspace)
    rows: list[tuple[str, str, str]] = []
    broken = 0
    for name in audience_names(ws):
        try:
            audience = load_audience(ws, name)
        except AudienceError as exc:  # list the rest; a bad file is shown, not fatal here
            rows.append((name, "", f"error: {exc}"))
            broken += 1
            continue
        rows.append((name, ", ".join(audience.lists), audience.description))
    print_rows(["audience", "lists", "description"], rows, output)
    if broken:
        raise AudienceError(f"{broken} of the audience files above cannot be used")


@audience_app.command("show")
def audience_show(
    name: Annotated[str, typer.Argument(help="Audience name (audiences/NAME.toml).")],
    limit: Annotated[int, typer.Option(min=0, help="How many contacts to list.")] = 20,
    workspace: WorkspaceOption = None,
) -> None:
    """How many contacts the audience has now, then the first of them.

    \b
    Example:
      comms audience show customers-eu --limit 5
    """
    from pipeline.audience.segments import count_audience, load_audience, stream_audience
    from pipeline.storage.engines import session

    audience = load_audience(open_workspace(workspace), name)
    with _database(workspace) as engine, session(engine) as current:
        console.print(f"{name}: {count_audience(current, audience)} contacts")
        table = Table("email", "first_name", "last_name", "attributes")
        for index, contact in enumerate(stream_audience(current, audience, batch=max(limit, 1))):
            if index >= limit:
                break
            attributes = json.dumps(contact.attributes, ensure_ascii=False)
            table.add_row(contact.email, contact.first_name or "", contact.last_name or "", attributes)
    if limit:
        console.print(table)


@audience_app.command("explain")
def audience_explain(
    name: Annotated[str, typer.Argument(help="Audience name (audiences/NAME.toml).")],
    workspace: WorkspaceOption = None,
) -> None:
    """The SQL the audience runs, for the configured database.

    \b
    Example:
      comms audience explain customers-eu
    """
    from pipeline.audience.segments import explain, load_audience
    from pipeline.storage.engines import make_engine

    ws = open_workspace(workspace)
    audience = load_audience(ws, name)
    engine = make_engine(ws.settings.database.url, ws.settings.database)
    try:
        print(explain(audience, engine))
    finally:
        engine.dispose()


# --- lists -------------------------------------------------------------------------------------------


@lists_app.command("list")
def lists_list(output: FormatOption = Format.table, workspace: WorkspaceOption = None) -> None:
    """Every mailing list with its subscriber counts.

    \b
    Example:
      comms lists list --format csv
    """
    from pipeline.audience.lists import list_summaries
    from pipeline.storage.engines import session

    with _database(workspace) as engine, session(engine) as current:
        found = list_summaries(current)
    print_rows(
        ["list", "display_name", "subscribed", "unsubscribed", "description"],
        [(s.name, s.display_name, s.subscribed, s.unsubscribed, s.description) for s in found],
        output,
        right=("subscribed", "unsubscribed"),
    )


@lists_app.command("show")
def lists_show(
    name: Annotated[str, typer.Argument(help="The list's name.")],
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="Set the name subscribers see.")
    ] = None,
    description: Annotated[
        str | None, typer.Option(help="Set the description shown on the preferences page and sign-up form.")
    ] = None,
    output: FormatOption = Format.table,
    workspace: WorkspaceOption = None,
) -> None:
    """One list: counts, display name and description (and set the last two).

    \b
    Example:
      comms lists show customers --display-name "Customer news" --description "Monthly, no spam"
    """
    from pipeline.audience.lists import describe_list, list_summaries
    from pipeline.storage.engines import session

    with _database(workspace) as engine, session(engine) as current:
        if display_name is not None or description is not None:
            describe_list(current, name, display_name=display_name, description=description)
            current.flush()
        [found] = list_summaries(current, name)
    print_rows(
        ["list", "display_name", "subscribed", "unsubscribed", "description"],
        [(found.name, found.display_name, found.subscribed, found.unsubscribed, found.description)],
        output,
    )


@lists_app.command("rename")
def lists_rename(
    old: Annotated[str, typer.Argument(help="The list's current name.")],
    new: Annotated[str, typer.Argument(help="Its new name.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Rename a list; subscriptions stay. Edit audience files that name it.

    \b
    Example:
      comms lists rename news customer-news
    """
    from pipeline.audience.lists import rename_list
    from pipeline.storage.engines import session

    with _database(workspace) as engine, session(engine) as current:
        rename_list(current, old, new)
    console.print(f"list {old} is now {new}: edit audiences/*.toml that name {old}", highlight=False)


@lists_app.command("form")
def lists_form(
    name: Annotated[str, typer.Argument(help="A list named in [signup] lists.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Print an HTML sign-up form for the list, to paste into another site's page.

    It posts to the tracking server's /s/LIST (double opt-in: a confirmation email goes out first).

    \b
    Example:
      comms lists form news > signup-snippet.html
    """
    from pipeline.errors import SettingsError
    from pipeline.feedback.pages import signup_snippet
    from pipeline.feedback.signup import HONEYPOT, signup_form_url
    from pipeline.workspace.settings import SETTINGS_FILE

    settings = open_workspace(workspace).settings
    if name not in settings.signup.lists:
        raise SettingsError(f'signup.lists: add "{name}" to take sign-ups for it', path=SETTINGS_FILE)
    print(signup_snippet(signup_form_url(settings, name), HONEYPOT))
