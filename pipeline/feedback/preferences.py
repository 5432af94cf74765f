"""A recipient's own choices, reached through a delivery's token: unsubscribe from everything, leave one list.

Unsubscribing is an email-level suppression (reason ``unsubscribe``), so it holds for every list,
every campaign and every run still sending (dispatch checks suppressions at send time). Leaving a
list only marks that subscription; other lists keep coming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlmodel import Session, col

from pipeline.audience.contacts import suppress
from pipeline.feedback.events import record_event
from pipeline.storage.models import (
    Contact,
    Delivery,
    Event,
    EventKind,
    MailingList,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from pipeline.types import SuppressionReason


@dataclass(frozen=True)
class ListChoice:
    list_id: int
    name: str  # the display name when the list has one
    description: str
    subscribed: bool


def get_contact(session: Session, delivery: Delivery) -> Contact | None:
    return session.get(Contact, delivery.contact_id) if delivery.contact_id is not None else None


def delivery_address(session: Session, delivery: Delivery) -> str | None:
    """The address to act on: the contact's current one, else the one the delivery went to;
    None once the person was erased (their suppression is already in place)."""
    contact = get_contact(session, delivery)
    return contact.email if contact is not None else delivery.email


def _unsubscribed_everything(session: Session, delivery_id: int) -> bool:
    """Whether this delivery already unsubscribed from everything (leaving one list does not count)."""
    details = session.scalars(
        select(col(Event.detail)).where(
            col(Event.delivery_id) == delivery_id, col(Event.kind) == EventKind.unsubscribe
        )
    )
    return any("list_id" not in detail for detail in details)


def unsubscribe(session: Session, delivery: Delivery, *, source: str, user_agent: str | None) -> bool:
    """Suppress the delivery's address; True the first time, False when this delivery already did it.

    Idempotent twice over: the suppression insert ignores an existing row, and the event is written
    once per delivery, so a mail client retrying its one-click POST changes nothing.
    """
    assert delivery.id is not None
    if _unsubscribed_everything(session, delivery.id):
        return False
    address = delivery_address(session, delivery)
    if address is not None:
        suppress(session, address, SuppressionReason.unsubscribe, note=f"{source}, delivery {delivery.id}")
    record_event(
        session,
        EventKind.unsubscribe,
        delivery.id,
        user_agent=user_agent,
        reason=source,
        detail={"source": source},
    )
    return True


def list_choices(session: Session, contact_id: int) -> list[ListChoice]:
    """Every list the contact has a subscription row on, subscribed or not, by name."""
    rows = session.execute(
        select(
            col(MailingList.id),
            col(MailingList.name),
            col(MailingList.display_name),
            col(MailingList.description),
            col(Subscription.status),
        )
        .join(Subscription, col(Subscription.list_id) == MailingList.id)
        .where(col(Subscription.contact_id) == contact_id)
        .order_by(col(MailingList.name))
    )
    return [
        ListChoice(list_id, shown or name, description, status == SubscriptionStatus.subscribed)
        for list_id, name, shown, description, status in rows
    ]


def leave_list(session: Session, delivery: Delivery, list_id: int, *, user_agent: str | None) -> bool:
    """Unsubscribe the delivery's contact from one list; False when they were not subscribed to it."""
    if delivery.contact_id is None:
        return False
    statement = (
        update(Subscription)
        .where(
            col(Subscription.contact_id) == delivery.contact_id,
            col(Subscription.list_id) == list_id,
            col(Subscription.status) == SubscriptionStatus.subscribed,
        )
        .values(status=SubscriptionStatus.unsubscribed, updated_at=utcnow())
    )
    # An UPDATE's result is a CursorResult (it has the rowcount); Session.execute is typed for any statement.
    if not cast(CursorResult[Any], session.execute(statement)).rowcount:
        return False
    record_event(
        session,
        EventKind.unsubscribe,
        delivery.id,
        user_agent=user_agent,
        reason="preferences-list",
        detail={"source": "preferences", "list_id": list_id},
    )
    return True
