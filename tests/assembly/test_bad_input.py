"""Bad input gives one line naming the file and line a person has to open, never a traceback."""

from __future__ import annotations

import pytest

from pipeline.assembly.campaign import check_campaign
from pipeline.errors import CommsError, CopyError, LayoutError, TemplateError


def _error(mini, kind: type[CommsError] = CommsError) -> str:
    with pytest.raises(kind) as caught:
        mini.assemble()
    message = str(caught.value)
    assert "\n" not in message
    return message


SECTION = """\
<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        {}
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("<mj-text color=red>unquoted</mj-text>", "<mj-text color=red>"),
        ("<mj-text>Prices < 10 pounds</mj-text>", "< 10 pounds"),
        ('<mj-button href="https://x.example/"">Go</mj-button>', '<mj-button href="https://x.example/"">'),
    ],
    ids=["unquoted-attribute", "stray-less-than", "doubled-quote"],
)
def test_an_mjml_syntax_error_names_the_layout_and_line(mini, block, expected):
    mini.layout(SECTION.format(block))
    message = _error(mini, LayoutError)
    assert message.startswith("templates/layouts/basic.mjml:5: MJML syntax error")
    assert expected in message


def test_an_unclosed_mjml_tag_names_the_line_it_was_opened_on(mini):
    mini.layout(SECTION.format('<mj-image src="https://x.example/a.png">'))
    assert _error(mini, LayoutError) == "templates/layouts/basic.mjml:5: MJML: <mj-image> is never closed"


def test_an_mjml_error_in_a_partial_names_the_partial(mini):
    mini.write(
        "templates/partials/footer.mjml",
        """\
<mj-section>
  <mj-column>
    <mj-text align=center>{{ brand.company }}</mj-text>
  </mj-column>
</mj-section>
""",
    )
    assert _error(mini, LayoutError).startswith("templates/partials/footer.mjml:3: MJML syntax error")


def test_an_mj_include_of_a_missing_partial_names_it(mini):
    mini.layout(SECTION.format('<mj-include path="nowhere.mjml" />'))
    message = _error(mini, LayoutError)
    assert message.startswith("templates/layouts/basic.mjml") and "'nowhere.mjml'" in message


def test_a_jinja_include_of_a_missing_partial_names_file_and_line(mini):
    mini.layout(SECTION.format('{% include "nowhere.mjml" %}'))
    assert _error(mini, LayoutError).startswith("templates/layouts/basic.mjml:5: no layout or partial named")


def test_a_jinja_syntax_error_in_a_layout_names_file_and_line(mini):
    mini.layout(SECTION.format("<mj-text>{% if copy.x %}never closed</mj-text>"))
    assert _error(mini, LayoutError).startswith("templates/layouts/basic.mjml:5: template syntax:")


def test_copy_naming_an_unknown_layout(mini):
    mini.copy("Body.\n", layout="nope")
    assert _error(mini, CopyError) == (
        "templates/copy/hello.md:4: layout 'nope' not found in templates/layouts/ (available: basic)"
    )


def test_copy_naming_an_unknown_audience(mini):
    mini.copy("Body.\n", audience="martians")
    assert _error(mini, CopyError).startswith("templates/copy/hello.md:5: audience 'martians' not found")


def test_front_matter_without_subject(mini):
    mini.copy("Body.\n", subject=None)
    assert _error(mini, CopyError) == "templates/copy/hello.md:1: front matter has no `subject`"


def test_front_matter_with_a_wrong_type_names_the_field_line(mini):
    mini.copy("Body.\n", tracking="sometimes")
    assert _error(mini, CopyError).startswith("templates/copy/hello.md:7: front matter `tracking`:")


def test_front_matter_that_is_not_yaml_names_the_line(mini):
    mini.write("templates/copy/hello.md", "---\nsubject: Hi\npreheader: [unclosed\n---\nBody\n")
    assert _error(mini, CopyError).startswith("templates/copy/hello.md:4: front matter is not valid YAML")


def test_a_copy_file_without_front_matter(mini):
    mini.write("templates/copy/hello.md", "Just text.\n")
    assert _error(mini, CopyError).startswith("templates/copy/hello.md:1:")


def test_an_undefined_campaign_variable_in_a_layout_names_variable_file_and_line(mini):
    mini.layout(SECTION.format("<mj-text>{{ copy.hero_title }}</mj-text>"))
    assert _error(mini, TemplateError) == "templates/layouts/basic.mjml:5: undefined variable copy.hero_title"


def test_an_undefined_brand_variable_in_copy_names_the_copy_line(mini):
    mini.copy("First line.\n\nSecond, by {{ brand.slogan }}.\n")
    assert _error(mini, TemplateError) == "templates/copy/hello.md:10: undefined variable brand.slogan"


def test_an_undefined_recipient_variable_is_caught_before_sending(mini):
    mini.copy("Hello.\n\nYour plan: {{ contact.plna }}.\n")
    workspace = mini.workspace()
    campaign = mini.assemble()
    with pytest.raises(TemplateError) as caught:
        check_campaign(workspace, campaign)
    message = str(caught.value)
    assert message.startswith("templates/copy/hello.md:10: undefined variable contact.plna")
    assert "[preview] contact alex.morgan@example.com" in message


def test_recipient_data_in_the_elif_of_a_campaign_if_is_refused(mini):
    mini.copy("{% if copy.x is defined %}\nA\n{% elif contact.plan %}\nB\n{% endif %}\n")
    message = _error(mini, TemplateError)
    assert message.startswith("templates/copy/hello.md:10: `{% elif contact.plan %}` uses recipient data")


def test_unknown_campaign(mini):
    message = str(pytest.raises(CopyError, mini.assemble, "absent").value)
    assert message == "templates/copy/absent.md: no campaign named 'absent' (campaigns: hello)"
