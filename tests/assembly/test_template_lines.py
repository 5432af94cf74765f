"""Jinja syntax errors and unknown filters name the copy, layout or partial file and line the writer
edits, never a line of the generated HTML, in campaign scope and in recipient scope."""

from __future__ import annotations

import pytest

from pipeline.assembly.campaign import check_campaign
from pipeline.errors import CommsError
from tests.assembly.conftest import LAYOUT

BROKEN = {
    "campaign unknown filter": ("{{ copy.subject | shout }}", "No filter named 'shout'"),
    "recipient unknown filter": ("{{ contact.first_name | shout }}", "No filter named 'shout'"),
    "recipient unknown test": ("{% if contact.plan is pro %}x{% endif %}", "No test named 'pro'"),
    "recipient unclosed block": ("{% if contact.plan == 'pro' %}x", "Unexpected end of template"),
    "campaign unclosed block": ("{% if copy.subject %}x", "Unexpected end of template"),
    "recipient bad syntax": ("{{ contact.first_name default }}", "expected token"),
}


def _error(mini) -> str:
    with pytest.raises(CommsError) as caught:
        check_campaign(mini.workspace(), mini.assemble())
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("construct", "expected"), BROKEN.values(), ids=BROKEN)
def test_in_the_copy_body(mini, construct, expected):
    mini.copy(f"First paragraph.\n\nSecond {construct} paragraph.\n\nThird.\n")
    message = _error(mini)
    assert message.startswith("templates/copy/hello.md:10: "), message
    assert expected in message


@pytest.mark.parametrize(("construct", "expected"), BROKEN.values(), ids=BROKEN)
def test_in_the_subject(mini, construct, expected):
    mini.copy("Hi.\n", subject=f'"Hello {construct}"')
    message = _error(mini)
    assert message.startswith("templates/copy/hello.md:2: "), message
    assert expected in message


@pytest.mark.parametrize(("construct", "expected"), BROKEN.values(), ids=BROKEN)
def test_in_the_layout(mini, construct, expected):
    lines = LAYOUT.splitlines()
    lines[8] = f"        <mj-text>{{{{ copy.body }}}} {construct}</mj-text>"
    mini.layout("\n".join(lines) + "\n")
    message = _error(mini)
    assert message.startswith("templates/layouts/basic.mjml:9: "), message
    assert expected in message


@pytest.mark.parametrize(("construct", "expected"), BROKEN.values(), ids=BROKEN)
def test_in_a_partial(mini, construct, expected):
    mini.write(
        "templates/partials/footer.mjml",
        "<mj-section>\n  <mj-column>\n    <mj-text>\n"
        f"      {construct}\n    </mj-text>\n  </mj-column>\n</mj-section>\n",
    )
    message = _error(mini)
    assert message.startswith("templates/partials/footer.mjml:4: "), message
    assert expected in message


def test_a_render_error_for_the_preview_contact_names_its_line(mini):
    mini.copy("One.\n\nTwo {{ range(contact.first_name) }}.\n")
    message = _error(mini)
    assert message.startswith("templates/copy/hello.md:10: cannot render"), message
