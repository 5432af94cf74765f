"""Recipient scope on its own: what `contact` offers, lenient sending, strict checking."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from pipeline.assembly.personalize import Personalizer
from pipeline.errors import TemplateError
from pipeline.types import Recipient, Templates

from .conftest import LINKS


def test_attributes_are_reachable_as_contact_fields_and_fields_win():
    personalizer = Personalizer(
        Templates(
            "{{ contact.plan }}/{{ contact.email }}/{{ contact.attributes.email }}",
            "",
            "{{ unsubscribe_url }}",
        )
    )
    rendered = personalizer.render(
        Recipient("ada@example.com", attributes={"plan": "pro", "email": "other@x"}), LINKS
    )
    assert rendered.subject == "pro/ada@example.com/other@x"
    assert rendered.text == LINKS.unsubscribe_url


def test_missing_values_fall_back_to_default_and_unknown_names_render_empty_when_sending():
    personalizer = Personalizer(
        Templates(
            '{{ contact.first_name | default("there") }}|{{ contact.last_name }}|{{ contact.nope.deeper }}',
            "",
            "",
        )
    )
    assert personalizer.render(Recipient("a@example.com"), LINKS).subject == "there||"


def test_strict_rendering_names_an_unknown_variable():
    personalizer = Personalizer(Templates("{{ contact.frist_name }}", "", ""), strict=True)
    with pytest.raises(UndefinedError, match="undefined variable contact.frist_name"):
        personalizer.render(Recipient("a@example.com"), LINKS)
    # Strict keeps empty fields defined: only misspelt names fail.
    assert (
        Personalizer(Templates("{{ contact.last_name }}", "", ""), strict=True)
        .render(Recipient("a@x.y"), LINKS)
        .subject
        == ""
    )


def test_a_broken_template_is_a_one_line_template_error():
    with pytest.raises(TemplateError, match=r"^the HTML part is not valid Jinja: .* \(line 1\)$"):
        Personalizer(Templates("", "{% if contact.x %}", ""))
