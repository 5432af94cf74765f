"""Mailing lists as the operator and the subscriber see them: names, display names, descriptions, counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, func, select, update
from sqlmodel import Session, col

from pipeline.errors import ContactError
from pipeline.storage.models import MailingList, Subscription, SubscriptionStatus, utcnow

MAX_NAME = 100


@dataclass(frozen=True)
class ListSummary:
    name: str
    display_name: str
    description: str
    subscribed: int
    unsubscribed: int


def check_list_name(name: str) -> str:
    if not name.strip() or len(name) > MAX_NAME or name != name.strip() or "/" in name:
        raise ContactError(f"list name {name!r} must be 1 to {MAX_NAME} characters, no slash or outer spaces")
    return name


def get_list(session: Session, name: str) -> MailingList:
    found = session.scalars(select(MailingList).where(col(MailingList.name) == name)).first()
    if found is None:
        known = (
            ", ".join(session.scalars(select(col(MailingList.name)).order_by(col(MailingList.name))))
            or "none"
        )
        raise ContactError(f"no list named {name!r} (known: {known})")
    return found


def ensure_list(session: Session, name: str) -> MailingList:
    """The list NAME, created if new."""
    found = session.scalars(select(MailingList).where(col(MailingList.name) == check_list_name(name))).first()
    if found is None:
        found = MailingList(name=name, created_at=utcnow())
        session.add(found)
        session.flush()
    return found


def list_summaries(session: Session, name: str | None = None) -> list[ListSummary]:
    """Every list (or only NAME) with its subscriber counts, by name."""
    counts = (
        select(
            col(Subscription.list_id),
            func.sum((col(Subscription.status) == SubscriptionStatus.subscribed).cast(Integer)).label("on"),
            func.sum((col(Subscription.status) == SubscriptionStatus.unsubscribed).cast(Integer)).label(
                "off"
            ),
        )
        .group_by(col(Subscription.list_id))
        .subquery()
    )
    query = (
        select(MailingList, counts.c.on, counts.c.off)
        .outerjoin(counts, counts.c.list_id == MailingList.id)
        .order_by(MailingList.name)
    )
    if name is not None:
        query = query.where(col(MailingList.name) == get_list(session, name).name)
    return [
        ListSummary(found.name, found.display_name, found.description, int(on or 0), int(off or 0))
        for found, on, off in session.execute(query)
    ]


def describe_list(
    session: Session, name: str, *, display_name: str | None = None, description: str | None = None
) -> MailingList:
    """Set what subscribers see of a list (the preferences page, the sign-up form)."""
    found = get_list(session, name)
    if display_name is not None:
        found.display_name = display_name.strip()[:200]
    if description is not None:
        found.description = description.strip()
    session.add(found)
    return found


def rename_list(session: Session, old: str, new: str) -> None:
    """Rename a list; its subscriptions stay. Audience files naming OLD must be edited too."""
    found = get_list(session, old)
    if session.scalars(
        select(col(MailingList.id)).where(col(MailingList.name) == check_list_name(new))
    ).first():
        raise ContactError(f"a list named {new!r} exists already")
    session.execute(update(MailingList).where(col(MailingList.id) == found.id).values(name=new))
