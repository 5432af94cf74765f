"""MIME bytes as a mail client sees them: parsed back with the standard library's email package."""

from __future__ import annotations

import binascii
import email
import email.policy
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from pipeline.assembly.personalize import Personalizer
from pipeline.errors import HeaderInjectionError
from pipeline.message.headers import message_id
from pipeline.message.mime import MessageBuilder, _qp_line, _without_leading_dots
from pipeline.message.tokens import read_token
from pipeline.message.urls import recipient_links
from pipeline.types import Outgoing, Recipient, Rendered, Templates
from pipeline.workspace.settings import Settings

from .conftest import DOMAIN

HEADER_ORDER = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "Content-Type",
]


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_mime_tree_is_alternative_with_plain_first_and_html_last(
    build: Callable[..., Outgoing], rendered: Rendered
) -> None:
    message = parse(build().data)
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    plain, html = message.iter_parts()
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    assert plain["Content-Transfer-Encoding"] == html["Content-Transfer-Encoding"] == "quoted-printable"
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html
    assert message.get_body(("html", "plain")) is html
    assert not message.defects and not plain.defects and not html.defects


def test_every_header(build: Callable[..., Outgoing], settings: Settings) -> None:
    links = recipient_links(settings, 42)
    before = time.time()
    outgoing = build()
    message = parse(outgoing.data)
    assert list(message.keys()) == HEADER_ORDER
    assert message["From"] == "Kestrel Forge <news@kestrelforge.example>"
    assert message["To"].addresses[0].display_name == "Zoë Ünal"
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert message["Subject"] == "Spring offers for Zoë"
    assert abs(parsedate_to_datetime(message["Date"]).timestamp() - before) < 5
    assert message["Message-ID"] == outgoing.message_id == message_id(7, 42, DOMAIN)
    assert message["MIME-Version"] == "1.0"
    assert message["Reply-To"] == "hello@kestrelforge.example"
    assert message["List-Id"] == "<spring-sale.sales.lists.kestrelforge.example>"
    https, mailto = (part.strip() for part in str(message["List-Unsubscribe"]).split(","))
    assert https == f"<{links.unsubscribe_url}>"
    assert message["Date"].endswith(" +0000")  # RFC 5322 4.3: "GMT" is obsolete
    local, _, domain = mailto.removeprefix("<mailto:").removesuffix(">").partition("@")
    assert domain == "kestrelforge.example" and local.startswith("unsubscribe+")
    token = local.removeprefix("unsubscribe+")
    assert read_token([settings.secret], "u", token) == (42, None)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Feedback-ID"] == "spring-sale:sales:comms:kestrelforge"
    assert message.get_content_type() == "multipart/alternative"


def test_wire_format_is_crlf_and_folded_lines(build: Callable[..., Outgoing]) -> None:
    data = build(
        to_name="Zoë " * 40, content=Rendered("Ünïcödé " * 30, "<p>" + "x" * 5000 + "</p>", "t")
    ).data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    # Only a URL, which must not be broken, may pass 78 columns (RFC 5322 2.1.1 allows 998).
    assert max(len(line) for line in lines) <= 998
    assert max(len(line) for line in lines if b"://" not in line and b"mailto:" not in line) <= 78
    assert data.endswith(b"--\r\n")


@pytest.mark.parametrize(
    "subject",
    [
        "Ünïcödé and émojis 🎉 in a subject long enough to need several encoded words, Zoë — yes",
        "Plain ASCII subject that is long enough to be folded over two lines of the header, surely",
        "Looks encoded =?utf-8?q?but_is_not?= literally",
        "Two  spaces   kept",
        "Unbreakable " + "x" * 90,
        "日本語の件名",
    ],
)
def test_subjects_decode_to_exactly_what_was_rendered(build: Callable[..., Outgoing], subject: str) -> None:
    message = parse(build(content=Rendered(subject, "<p>h</p>", "t")).data)
    assert message["Subject"] == subject


@pytest.mark.parametrize(
    "name", ['Zoë "Z" Ünal', 'Smith, John "Jr" \\ III', "=?utf-8?b?trick?=", "李小龍", "", None]
)
def test_display_names_decode(build: Callable[..., Outgoing], name: str | None) -> None:
    address = parse(build(to_name=name).data)["To"].addresses[0]
    assert address.display_name == (name or "")
    assert address.addr_spec == "zoe@example.com"


def test_body_edge_cases_survive(build: Callable[..., Outgoing]) -> None:
    text = ".\n..leading dots\nFrom the start\nequals = sign\ntrailing   \ntab\there\r\nwindows\rold mac\n"
    html = "<p>" + "long line " * 500 + "</p>\n.\n"
    plain, rich = parse(build(content=Rendered("s", html, text)).data).iter_parts()
    expected_text = text.replace("\r\n", "\n").replace("\r", "\n")
    assert plain.get_content().replace("\r\n", "\n") == expected_text
    assert rich.get_content().replace("\r\n", "\n") == html


def test_each_message_of_a_run_carries_only_its_own_recipients_lines(settings: Settings) -> None:
    """The builder reuses the encoding of lines it has seen; no line of one recipient may reach another."""
    shared = (
        '<p style="margin:0 0 16px;font-family:Helvetica,Arial,sans-serif">Same for everyone: = · ł</p>\n'
    )
    html = (
        shared * 3
        + '<p>Dear {{ contact.first_name }}, <a href="{{ unsubscribe_url }}">unsubscribe</a>'
        + " padding" * 20
        + "</p>\n"
        + shared
        + "<p>{{ contact.company | default('no company') }}</p>\n"
    )
    text = "Hello {{ contact.first_name }},\n\nSame for everyone.\n{{ preferences_url }}\n"
    personalizer = Personalizer(Templates("Hi {{ contact.first_name }}", html, text))
    builder = MessageBuilder(settings, campaign="spring-sale", department="sales", run_id=7)
    people = [
        (1, Recipient("ann@example.com", "Ann", attributes={"company": "Acme"})),
        (2, Recipient("bob@example.com", "Bob")),
        (3, Recipient("zoe@example.com", "Zoë", attributes={"company": "Same for everyone."})),
    ]
    for delivery_id, person in [*people, *people]:  # the second round meets every line again
        links = recipient_links(settings, delivery_id)
        rendered = personalizer.render(person, links)
        outgoing = builder.build(
            rendered,
            to_email=person.email,
            to_name=person.first_name,
            message_id=message_id(7, delivery_id, DOMAIN),
            links=links,
            delivery_id=delivery_id,
        )
        plain, rich = parse(outgoing.data).iter_parts()
        assert plain.get_content().replace("\r\n", "\n") == rendered.text
        assert rich.get_content().replace("\r\n", "\n") == rendered.html
        assert f"Dear {person.first_name}," in rendered.html and links.unsubscribe_url in rendered.html


def test_a_body_built_from_the_templates_pieces_is_the_body_built_from_the_whole_html(
    settings: Settings,
) -> None:
    """The HTML part is encoded from the pieces the template rendered (its own text once a run, the
    values per message): byte for byte what encoding the joined HTML gives, whatever lands where."""
    static = '<td style="padding:0;font-size:16px">' + "Same for everyone, = signs and all. " * 6 + "</td>\n"
    html = (
        static
        + "<p>{{ contact.first_name }}"
        + "x" * 40
        + "{{ contact.last_name }}</p>\n"
        + ".{{ contact.company }}\n"
        + static * 2
        + '<a href="{{ unsubscribe_url }}?a=1&amp;b=2">{{ contact.first_name }}</a>\n'
        + "{{ contact.note }}"
    )
    personalizer = Personalizer(Templates("Hi", html, "Hello"))
    from_parts = MessageBuilder(settings, campaign="spring-sale", department="sales", run_id=7)
    from_whole = MessageBuilder(settings, campaign="spring-sale", department="sales", run_id=7)
    rng = random.Random(18)
    for delivery_id in range(1, 400):
        # Values that put "=", dots, spaces, tabs, non-ASCII and line breaks at every column.
        def value(most: int) -> str:
            return "".join(rng.choice("ab=. \tł.é") for _ in range(rng.randrange(most)))

        note = rng.choice(["", "line\r\nbreak", value(90) + "\n" + value(90), value(200) + " "])
        person = Recipient(
            f"p{delivery_id}@example.com",
            value(80),
            value(40),
            attributes={"company": value(120), "note": note},
        )
        links = recipient_links(settings, delivery_id)
        rendered = personalizer.render(person, links)
        assert len(rendered.html_parts) > 1
        built = [
            builder.build(content, to_email=person.email, to_name=None, message_id="<m@x>", links=links,
                          delivery_id=delivery_id).data
            for builder, content in ((from_parts, rendered), (from_whole, replace(rendered, html_parts=())))
        ]  # fmt: skip
        bodies = [data.partition(b"\r\n\r\n")[2] for data in built]
        assert bodies[0] == bodies[1]
        rich = list(parse(built[0]).iter_parts())[1]
        sent_html = rendered.html.replace("\r\n", "\n").replace("\r", "\n")  # line ends as QP makes them
        assert rich.get_content().replace("\r\n", "\n") == sent_html
        assert all(len(line) <= 76 and not line.startswith(b".") for line in bodies[0].split(b"\r\n"))


def test_the_quick_path_for_ascii_lines_encodes_as_the_standard_library_does() -> None:
    # Printable ASCII skips binascii.b2a_qp (a quarter of its time): same escapes, same soft breaks.
    rng = random.Random(2045)
    for alphabet in ("ab=. ", "=", "a=", "x.y/?=&#"):
        for _ in range(3000):
            line = "".join(rng.choice(alphabet) for _ in range(rng.randrange(240)))
            expected = binascii.b2a_qp(line.encode(), istext=True).replace(b"\n", b"\r\n")
            if expected.startswith(b".") or b"\n." in expected:  # as both paths write a leading dot
                expected = _without_leading_dots(expected)
            got = _qp_line(line)
            assert got == expected, line
            assert all(len(each) <= 76 and not each.startswith(b".") for each in got.split(b"\r\n"))


def test_a_test_send_is_marked_in_the_subject_and_keeps_every_header(build: Callable[..., Outgoing]) -> None:
    message = parse(build(test=True).data)
    assert message["Subject"] == "[TEST] Spring offers for Zoë"
    assert list(message.keys()) == HEADER_ORDER


@pytest.mark.parametrize(
    "field, value",
    [
        ("to_name", "Zoë\r\nBcc: victim@example.com"),
        ("to_name", "line\nbreak"),
        ("to_email", "zoe@example.com\r\nBcc: victim@example.com"),
        ("to_email", "zoe@example.com\n"),
        ("to_email", "zoe@example.com>, <victim@example.com"),
        ("to_email", "zoe example@example.com"),
        ("to_email", "no-at-sign"),
        ("message_id", "<x@y>\r\nBcc: victim@example.com"),
    ],
)
def test_header_injection_in_recipient_data_is_refused(
    build: Callable[..., Outgoing], field: str, value: str
) -> None:
    with pytest.raises(HeaderInjectionError):
        build(**{field: value})


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: victim@example.com", "Hi\n", "Hi\rthere", "nul\x00"])
def test_header_injection_in_the_rendered_subject_is_refused(
    build: Callable[..., Outgoing], subject: str
) -> None:
    with pytest.raises(HeaderInjectionError, match="subject"):
        build(content=Rendered(subject, "<p>h</p>", "t"))


def test_header_injection_in_settings_is_refused_at_construction(settings: Settings) -> None:
    settings.sender.from_name = "Kestrel\r\nBcc: victim@example.com"
    with pytest.raises(HeaderInjectionError, match="from_name"):
        MessageBuilder(settings, campaign="c", department="d", run_id=1)


def test_verp_envelope_sender_names_the_delivery(build: Callable[..., Outgoing], settings: Settings) -> None:
    outgoing = build()
    local, domain = outgoing.envelope_from.split("@")
    assert domain == "kestrelforge.example"
    assert local.startswith("bounces+")
    assert read_token([settings.secret], "b", local.removeprefix("bounces+")) == (42, None)
    assert outgoing.recipients == ("zoe@example.com",)


def test_envelope_sender_without_verp(build: Callable[..., Outgoing], settings: Settings) -> None:
    assert build(delivery_id=None).envelope_from == "bounces@kestrelforge.example"
    settings.sender.bounce_address = None
    builder = MessageBuilder(settings, campaign="c", department="d", run_id=1)
    assert build(builder).envelope_from == "news@kestrelforge.example"


def test_message_id_is_deterministic_across_processes() -> None:
    here = message_id(12, 3456, DOMAIN)
    code = f"from pipeline.message.headers import message_id; print(message_id(12, 3456, {DOMAIN!r}))"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert there.strip() == here
    assert here.startswith("<12.") and here.endswith(f"@{DOMAIN}>")
    assert message_id(12, 3457, DOMAIN) != here != message_id(13, 3456, DOMAIN)
    assert "alex" not in message_id(12, "alex@example.com", DOMAIN)


def test_a_runs_salt_makes_its_message_ids_unguessable_but_stable() -> None:
    # Bounces are tied to deliveries by Message-ID: from run and contact numbers alone nobody
    # may compute one, yet a resend within the run must carry the same one.
    salted = message_id(12, 3456, DOMAIN, salt="run-12-salt")
    assert salted == message_id(12, 3456, DOMAIN, salt="run-12-salt")
    assert salted != message_id(12, 3456, DOMAIN)
    assert salted != message_id(12, 3456, DOMAIN, salt="another-salt")
