"""One contact at a time: `comms contacts add` and `comms contacts set`, typed as an import would be.

A value given as `field=value` goes through the same column types as a CSV cell (comms.toml
[contacts.fields], else the attribute's stored type, else inferred from the value), so a contact
added by hand compares in audiences exactly like an imported one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from pipeline.audience.columns import DateOrder, FieldType, infer, parse
from pipeline.audience.contacts import ATTRIBUTE_NAME, PERSONAL_FIELDS, RESERVED_NAMES, normalize_email
from pipeline.audience.lists import ensure_list
from pipeline.errors import ContactError
from pipeline.storage.models import Contact, ContactField, Subscription, SubscriptionStatus, utcnow


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ContactError(f"{pair!r}: expected field=value")
        if name.lower() in RESERVED_NAMES or name.lower() == "email" or not ATTRIBUTE_NAME.match(name):
            raise ContactError(f"{name!r} cannot be set (reserved, or not a field or attribute name)")
        values[name] = value.strip()
    return values


def _typed(
    session: Session, values: Mapping[str, str], declared: Mapping[str, FieldType], dates: DateOrder
) -> tuple[dict[str, str | None], dict[str, Any]]:
    stored = dict(session.execute(select(col(ContactField.name), col(ContactField.type))).all())
    fields: dict[str, str | None] = {}
    attributes: dict[str, Any] = {}
    for name, value in values.items():
        if name.lower() in PERSONAL_FIELDS:
            fields[name.lower()] = value or None
            continue
        kind = declared.get(name) or stored.get(name) or infer([value] if value else [], dates)
        try:
            attributes[name] = parse(value, kind, dates) if value else None
        except ValueError as exc:
            raise ContactError(f"{name} is a {kind} attribute: {exc}") from None
        if name not in stored:
            session.add(ContactField(name=name, type=kind, updated_at=utcnow()))
    return fields, attributes


def set_contact(
    session: Session,
    email: str,
    values: Mapping[str, str],
    *,
    create: bool,
    list_name: str | None = None,
    declared: Mapping[str, FieldType] | None = None,
    dates: DateOrder = "day-first",
) -> Contact:
    """Add (CREATE) or change the contact EMAIL; an empty value removes an attribute or field."""
    address, key = normalize_email(email)
    contact = session.scalars(select(Contact).where(col(Contact.email_key) == key)).first()
    if create and contact is not None:
        raise ContactError(f"{address} is already a contact: use `comms contacts set`")
    if not create and contact is None:
        raise ContactError(f"no contact {address}: use `comms contacts add`")
    fields, attributes = _typed(session, values, declared or {}, dates)
    now = utcnow()
    if contact is None:
        contact = Contact(email=address, email_key=key, created_at=now)
    merged = dict(contact.attributes)
    for name, value in attributes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    contact.attributes = merged  # reassigned: an in-place change of a JSON column is not saved
    for name, field_value in fields.items():
        setattr(contact, name, field_value)
    contact.updated_at = now
    session.add(contact)
    session.flush()
    if list_name is not None:
        subscribe(session, contact, list_name)
    return contact


def subscribe(session: Session, contact: Contact, list_name: str) -> None:
    """Subscribe CONTACT to LIST_NAME (created if new), also again after they left it."""
    found = ensure_list(session, list_name)
    current = session.get(Subscription, (contact.id, found.id))
    now = utcnow()
    if current is None:
        assert contact.id is not None and found.id is not None
        current = Subscription(contact_id=contact.id, list_id=found.id, created_at=now)
    current.status = SubscriptionStatus.subscribed
    current.updated_at = now
    session.add(current)
