"""Addresses, suppressions, data-access and erasure requests."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, insert, select

from pipeline.audience.contacts import (
    email_hash,
    erase,
    find_contact,
    is_suppressed,
    normalize_email,
    report,
    suppress,
    unsuppress,
)
from pipeline.errors import ContactError
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Event, Run, Suppression
from pipeline.types import SuppressionReason

from .conftest import AddContact


@pytest.mark.parametrize(
    ("raw", "email"),
    [
        ("  Anna@Example.COM ", "Anna@example.com"),
        ("user@Bücher.de", "user@xn--bcher-kva.de"),
        ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
        ("Zoë@BÜCHER.DE", "Zoë@xn--bcher-kva.de"),
        ("Postmaster@Example.com", "postmaster@example.com"),  # RFC 2142 role names are case-insensitive
    ],
)
def test_normalize_keeps_the_local_part_and_encodes_the_domain(raw: str, email: str):
    assert normalize_email(raw) == (email, email.lower())


@pytest.mark.parametrize(
    "raw", ["", "   ", "plain", "a@b", "a@@b.com", "a b@c.com", "Ann <a@b.com>", "a@localhost"]
)
def test_normalize_refuses_what_email_validator_refuses(raw: str):
    with pytest.raises(ContactError):
        normalize_email(raw)


CORPUS = [
    "john.smith@example.com",
    "John.Smith@EXAMPLE.com",
    "INFO@example.com",
    "Sales@Example.org",
    "a.b-c+d@sub.example.co.uk",
    "x@example",
    "x@-example.com",
    "x@example-.com",
    "x@exa_mple.com",
    "x@example.com.",
    "x@123.123",
    "x@xn--zz.com",
    "x@a--b.com",
    ".x@example.com",
    "x.@example.com",
    "x..y@example.com",
    '"quoted@local"@example.com',
    "x@[127.0.0.1]",
    "x@test",
    "x@example.invalid",
    "x@" + "a" * 64 + ".com",
    "y" * 64 + "@" + ".".join(["a" * 60] * 3) + ".com",
    "y" * 65 + "@example.com",
    "ünï@example.com",
    "x@bücher.de",
    "x@ex ample.com",
]


@pytest.mark.parametrize("raw", CORPUS)
def test_normalize_agrees_with_email_validator(raw: str):
    """The cached fast path for plain addresses must give email-validator's own answer."""
    try:
        valid = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        with pytest.raises(ContactError):
            normalize_email(raw)
        return
    expected = f"{valid.local_part}@{valid.ascii_domain}"
    assert normalize_email(raw) == (expected, expected.lower())


def test_suppress_is_idempotent_and_case_insensitive(engine: Engine):
    with session(engine) as current:
        suppress(current, "Someone@Example.com", SuppressionReason.unsubscribe)
        suppress(current, "someone@example.com", SuppressionReason.manual, "again")
        assert is_suppressed(current, "someone@example.com")
        rows = current.scalars(select(Suppression)).all()
    assert [(row.email, row.reason) for row in rows] == [("Someone@example.com", "unsubscribe")]
    with session(engine) as current:
        assert unsuppress(current, "SOMEONE@example.com")
        assert not unsuppress(current, "someone@example.com")
        assert not is_suppressed(current, "someone@example.com")


def test_report_shows_everything_and_erase_keeps_only_a_hash(engine: Engine, add_contact: AddContact):
    contact = add_contact("Pat@example.com", first_name="Pat", attributes={"plan": "pro"})
    with session(engine) as current:
        run_id = current.execute(
            insert(Run).values(campaign="spring", audience="all").returning(Run.id)
        ).scalar_one()
        delivery_id = current.execute(
            insert(Delivery)
            .values(run_id=run_id, contact_id=contact.id, email=contact.email, status="sent")
            .returning(Delivery.id)
        ).scalar_one()
        current.execute(insert(Event).values(delivery_id=delivery_id, kind="open", user_agent="Mozilla/5.0"))

    with session(engine) as current:
        found = report(current, "pat@EXAMPLE.com").as_dict()
    assert found["contact"]["first_name"] == "Pat"
    assert found["contact"]["attributes"] == {"plan": "pro"}
    assert found["subscriptions"][0]["list"] == "customers"
    assert found["deliveries"][0]["status"] == "sent"
    assert found["deliveries"][0]["events"][0]["user_agent"] == "Mozilla/5.0"

    with session(engine) as current:
        erase(current, "pat@example.com")

    with session(engine) as current:
        assert find_contact(current, "pat@example.com") is None
        suppression = current.scalars(select(Suppression)).one()
        delivery = current.get(Delivery, delivery_id)
        event = current.scalars(select(Event)).one()
        assert delivery is not None and is_suppressed(current, "pat@example.com")
        assert report(current, "pat@example.com").as_dict()["contact"] is None
    assert (suppression.email, suppression.reason, suppression.email_hash) == (
        None,
        "erased",
        email_hash("pat@example.com"),
    )
    assert (delivery.email, delivery.contact_id, delivery.status) == (None, None, "sent")
    assert (event.user_agent, event.kind) == (None, "open")


def test_unknown_addresses_are_one_line_errors(engine: Engine):
    with session(engine) as current:
        with pytest.raises(ContactError, match="nothing is stored about nobody@example.com"):
            report(current, "nobody@example.com")
        with pytest.raises(ContactError, match="no contact nobody@example.com"):
            erase(current, "nobody@example.com")
