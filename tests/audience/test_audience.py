"""Audiences: every operator against a hand-computed set, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.audience.contacts import suppress
from pipeline.audience.segments import (
    Audience,
    Condition,
    count_audience,
    explain,
    load_audience,
    stream_audience,
)
from pipeline.errors import AudienceError
from pipeline.storage.engines import session
from pipeline.storage.models import SubscriptionStatus
from pipeline.types import SuppressionReason
from pipeline.workspace.folders import Workspace

from .conftest import AddContact

EVERYONE = {"ann", "bob", "cat", "dan", "eve"}


@pytest.fixture
def people(engine: Engine, add_contact: AddContact) -> None:
    """Five customers whose attributes differ in value and in JSON type, plus three who never qualify."""
    add_contact(
        "ann@example.com",
        lists=("customers", "staff"),
        first_name="Ann",
        attributes={"age": 30, "plan": "pro", "vip": True, "joined": "2024-01-05", "score": 7.5},
    )
    add_contact(
        "bob@example.com",
        first_name="Bob",
        timezone="Europe/Berlin",
        attributes={"age": "thirty", "plan": "free", "vip": False, "joined": "2023-12-31"},
    )
    add_contact(
        "cat@example.com", first_name="Cat", attributes={"age": 45, "plan": "Pro", "joined": "2024-06-01"}
    )
    add_contact("dan@example.com", first_name="Dan")
    add_contact("eve@example.com", first_name="eve", attributes={"age": 9, "plan": "enterprise", "vip": True})
    add_contact("fay@example.com", lists=("staff",), first_name="Fay", attributes={"age": 30})
    add_contact(
        "gus@example.com", lists={"customers": SubscriptionStatus.unsubscribed}, attributes={"age": 30}
    )
    add_contact("hal@example.com", attributes={"age": 30})
    with session(engine) as current:
        suppress(current, "HAL@example.com", SuppressionReason.hard_bounce)


# (field, op, value) -> who matches among the five subscribed customers, worked out by hand.
CASES: list[tuple[str, str, object, set[str]]] = [
    ("age", "eq", 30, {"ann"}),
    ("age", "ne", 30, {"bob", "cat", "dan", "eve"}),
    ("age", "gt", 20, {"ann", "cat"}),  # numerically: 9 is not > 20; "thirty" is not a number
    ("age", "gte", 30, {"ann", "cat"}),
    ("age", "lt", 30, {"eve"}),
    ("age", "lte", 30, {"ann", "eve"}),
    ("age", "in", [30, 45], {"ann", "cat"}),
    ("age", "not_in", [30, 45], {"bob", "dan", "eve"}),
    ("age", "eq", "thirty", {"bob"}),
    ("age", "exists", None, {"ann", "bob", "cat", "eve"}),
    ("age", "missing", None, {"dan"}),
    ("score", "gt", 7, {"ann"}),
    ("score", "lt", 7.6, {"ann"}),
    ("plan", "eq", "pro", {"ann"}),  # case-sensitive
    ("plan", "in", ["pro", "Pro"], {"ann", "cat"}),
    ("plan", "startswith", "Pr", {"cat"}),
    ("plan", "contains", "er", {"eve"}),
    ("plan", "gt", "free", {"ann"}),  # by code point: "Pro" < "free" < "pro"
    ("joined", "gte", date(2024, 1, 1), {"ann", "cat"}),
    ("joined", "lt", "2024-01-01", {"bob"}),
    ("vip", "eq", True, {"ann", "eve"}),
    ("vip", "eq", False, {"bob"}),
    ("vip", "ne", True, {"bob", "cat", "dan"}),
    ("first_name", "eq", "Cat", {"cat"}),
    ("first_name", "in", ["Ann", "Bob"], {"ann", "bob"}),
    ("first_name", "gt", "Z", {"eve"}),  # lower-case sorts after upper-case on both databases
    ("first_name", "ne", "Ann", {"bob", "cat", "dan", "eve"}),
    ("email", "startswith", "ann@", {"ann"}),
    ("timezone", "exists", None, {"bob"}),
    ("timezone", "missing", None, {"ann", "cat", "dan", "eve"}),
    ("created_at", "gte", date(2000, 1, 1), EVERYONE),
    ("created_at", "lt", date(2000, 1, 1), set()),
]


def _audience(lists: tuple[str, ...] = ("customers",), **blocks: list[Condition]) -> Audience:
    return Audience(
        name="test",
        path=Path("audiences/test.toml"),
        description="",
        lists=lists,
        where=tuple(blocks.get("where", ())),
        any=tuple(blocks.get("any", ())),
        exclude=tuple(blocks.get("exclude", ())),
    )


def _names(engine: Engine, audience: Audience) -> list[str]:
    with session(engine) as current:
        return [contact.email.split("@")[0] for contact in stream_audience(current, audience, batch=2)]


def test_every_operator_matches_the_hand_computed_set(engine: Engine, people: None):
    wrong = {}
    for field, op, value, expected in CASES:
        condition = Condition(field=field, op=op, value=value)
        where = set(_names(engine, _audience(where=[condition])))
        excluded = set(_names(engine, _audience(exclude=[condition])))
        if where != expected or excluded != EVERYONE - expected:
            wrong[(field, op, repr(value))] = (sorted(where), sorted(excluded))
    assert wrong == {}


def test_any_needs_one_where_needs_all_and_exclude_removes(engine: Engine, people: None):
    audience = _audience(
        where=[Condition(field="age", op="exists")],
        any=[Condition(field="vip", op="eq", value=True), Condition(field="plan", op="eq", value="Pro")],
        exclude=[Condition(field="first_name", op="eq", value="eve")],
    )
    assert _names(engine, audience) == ["ann", "cat"]
    with session(engine) as current:
        assert count_audience(current, audience) == 2


def test_only_subscribed_unsuppressed_contacts_each_once(engine: Engine, people: None):
    everyone = _audience(lists=("customers", "staff"), where=[Condition(field="age", op="eq", value=30)])
    # ann is on both lists but appears once; gus unsubscribed; hal suppressed; fay via staff.
    assert _names(engine, everyone) == ["ann", "fay"]


def test_a_list_the_database_lacks_is_an_audience_error(engine: Engine, people: None):
    with session(engine) as current, pytest.raises(AudienceError, match='no list named "vips"') as caught:
        count_audience(current, _audience(lists=("customers", "vips")))
    assert str(caught.value).startswith("audiences/test.toml: lists:")


def test_explain_inlines_the_values_for_the_configured_database(engine: Engine):
    sql = explain(_audience(where=[Condition(field="plan", op="in", value=["pro", "it's"])]), engine)
    assert "'pro'" in sql and "'it''s'" in sql
    assert ("json_typeof" if engine.dialect.name == "postgresql" else "json_type") in sql


def _write(workspace: Workspace, text: str) -> None:
    (workspace.audiences_dir / "bad.toml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'lists = ["c"]\n\n[[where]]\nfield = "plan"\nop = "equals"\nvalue = "pro"\n',
            "audiences/bad.toml:5: where #1 (field \"plan\") op: unknown operator 'equals'",
        ),
        (
            'lists = ["c"]\n[[where]]\nfield = "age"\nop = "eq"\nvalue = 1\n'
            '[[exclude]]\nfield = "age"\nop = "gt"\nvalue = [1, 2]\n',
            'audiences/bad.toml:6: exclude #1 (field "age"): gt compares with one value, not a list',
        ),
        (
            'lists = ["c"]\n[[any]]\nfield = "first_name"\nop = "eq"\nvalue = 3\n',
            'audiences/bad.toml:2: any #1 (field "first_name"): first_name is text: eq needs string values',
        ),
        (
            'lists = ["c"]\n[[where]]\nfield = "vip"\nop = "exists"\nvalue = true\n',
            "exists takes no value",
        ),
        (
            'lists = ["c"]\n[[where]]\nfield = "age"\nop = "in"\nvalue = [1, "a"]\n',
            "values must all be of one type",
        ),
        ('lists = ["c"]\ncolour = "red"\n', "audiences/bad.toml:2: colour: Extra inputs are not permitted"),
        ("lists = []\n", "audiences/bad.toml:1: lists:"),
        ('lists = ["c"\n', "audiences/bad.toml: not valid TOML"),
    ],
)
def test_a_bad_audience_file_is_one_line_naming_file_and_field(workspace: Workspace, text: str, message: str):
    _write(workspace, text)
    with pytest.raises(AudienceError) as caught:
        load_audience(workspace, "bad")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_audience_file_loads(workspace: Workspace):
    _write(
        workspace,
        'description = "EU pro"\nlists = ["customers"]\n[[where]]\nfield = "country"\nop = "in"\n'
        'value = ["PL", "DE"]\n[[exclude]]\nfield = "plan"\nop = "eq"\nvalue = "free"\n',
    )
    audience = load_audience(workspace, "bad")
    assert audience.lists == ("customers",)
    assert audience.where[0].value == ["PL", "DE"]
    assert audience.exclude[0].op == "eq"
    with pytest.raises(AudienceError, match="no audience 'nope'"):
        load_audience(workspace, "nope")
