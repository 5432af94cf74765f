"""The measured MRML and premailer traps (issue 2, item 5): each one, end to end, as a reader would see it."""

from __future__ import annotations

import re
import socket

import lxml.html
import pytest

from pipeline.errors import LayoutError

from .conftest import LINKS


def _one_column(*blocks: str, head: str = "") -> str:
    inner = "\n".join(f"        {block}" for block in blocks)
    return f"""\
<mjml>
  <mj-head>{head}</mj-head>
  <mj-body>
    <mj-section>
      <mj-column>
{inner}
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def _links(html: str) -> dict[str, str]:
    return {a.text_content().strip(): a.get("href") for a in lxml.html.fromstring(html).iter("a")}


def test_a_placeholder_with_a_query_string_in_a_button_href_renders_per_recipient(mini, recipient):
    mini.layout(
        _one_column(
            '<mj-button href="https://x.example/offer?c={{ contact.email | urlencode }}&p=1">'
            "Claim</mj-button>"
        )
    )
    campaign = mini.assemble()
    assert "{{ contact.email | urlencode }}" in campaign.html

    from pipeline.assembly.personalize import Personalizer

    personalizer = Personalizer(campaign.templates)
    for email in ("ada+news@example.com", "bob@example.org"):
        html = personalizer.render(recipient(email), LINKS).html
        encoded = email.replace("@", "%40").replace("+", "%2B")
        assert _links(html)["Claim"] == f"https://x.example/offer?c={encoded}&p=1"


@pytest.mark.parametrize("blank_lines", [False, True], ids=["tag-beside-text", "tag-on-its-own"])
def test_an_if_spanning_paragraphs_of_markdown_shows_them_only_to_its_recipients(
    mini, recipient, blank_lines
):
    gap = "\n" if blank_lines else ""
    mini.copy(
        f"""\
Before.

{{% if contact.plan == "pro" %}}
{gap}Pro paragraph one, with a [link](https://x.example/pro?u={{{{ contact.email | urlencode }}}}).

Pro paragraph two.
{gap}{{% endif %}}

After.
"""
    )
    mini.layout(_one_column("<mj-text>{{ copy.body }}</mj-text>"))
    campaign = mini.assemble()
    from pipeline.assembly.personalize import Personalizer

    personalizer = Personalizer(campaign.templates)
    pro = personalizer.render(recipient(attributes={"plan": "pro"}), LINKS)
    free = personalizer.render(recipient(attributes={"plan": "free"}), LINKS)

    for part in (pro.html, pro.text):
        assert "Pro paragraph one" in part and "Pro paragraph two" in part
    assert _links(pro.html)["link"] == "https://x.example/pro?u=ada%40example.com"
    for part in (free.html, free.text):
        assert "Pro paragraph" not in part and "Before." in part and "After." in part
    # Both outcomes are whole paragraphs, not a <p> left open by the block.
    paragraphs = [p.text_content().strip() for p in lxml.html.fromstring(pro.html).iter("p")]
    assert "Pro paragraph two." in paragraphs
    if blank_lines:
        assert not re.search(r"<p[^>]*>\s*</p>", free.html)


def test_responsive_column_media_rules_keep_important(mini):
    mini.layout(
        """\
<mjml><mj-body><mj-section>
  <mj-column><mj-text>left</mj-text></mj-column>
  <mj-column><mj-text>right</mj-text></mj-column>
</mj-section></mj-body></mjml>
"""
    )
    html = mini.assemble().html
    media = [s.text for s in lxml.html.fromstring(html).iter("style") if s.text and "@media" in s.text]
    assert any(re.search(r"\.mj-column-per-50 \{ width:50% !important", rule) for rule in media)


def test_inlining_opens_no_connection_although_the_html_links_a_stylesheet(mini, monkeypatch):
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    font = '<mj-font name="Lato" href="https://fonts.googleapis.com/css?family=Lato" />'
    mini.layout(_one_column('<mj-text font-family="Lato, Arial">Hello</mj-text>', head=font))

    html = mini.assemble().html

    assert attempts == []
    assert '<link href="https://fonts.googleapis.com/css?family=Lato" rel="stylesheet"' in html


def test_a_newline_inside_an_attribute_value_keeps_its_css(mini):
    mini.layout(
        _one_column(
            '<mj-text><span style="color:#ff0000;\n            font-weight:bold">Bold</span></mj-text>',
            '<mj-text padding="4px\n            8px">Padded</mj-text>',
        )
    )
    html = mini.assemble().html
    tree = lxml.html.fromstring(html)
    span = next(tree.iter("span"))
    assert "\\n" not in span.get("style")
    assert "font-weight:bold" in span.get("style").replace(" ", "")
    padded = next(td for td in tree.iter("td") if td.text_content().strip() == "Padded")
    assert "padding:4px 8px" in padded.get("style")


def test_a_less_than_sign_inside_a_recipient_tag_in_mjml_text_compiles(mini, recipient):
    mini.layout(
        _one_column(
            "<mj-text>{% if contact.visits < 3 %}Welcome aboard{% else %}Welcome back{% endif %}</mj-text>"
        )
    )
    campaign = mini.assemble()
    from pipeline.assembly.personalize import Personalizer

    personalizer = Personalizer(campaign.templates)
    assert "Welcome aboard" in personalizer.render(recipient(attributes={"visits": 1}), LINKS).html
    assert "Welcome back" in personalizer.render(recipient(attributes={"visits": 9}), LINKS).html


def test_double_quotes_inside_a_recipient_expression_in_an_attribute_survive(mini, recipient):
    mini.layout(
        _one_column(
            '<mj-button href="https://x.example/hi?n={{ contact.first_name | default("friend") }}">'
            "Hi</mj-button>"
        )
    )
    campaign = mini.assemble()
    assert '\\"' not in campaign.html
    from pipeline.assembly.personalize import Personalizer

    personalizer = Personalizer(campaign.templates)
    assert _links(personalizer.render(recipient(), LINKS).html)["Hi"] == "https://x.example/hi?n=friend"
    named = personalizer.render(recipient(first_name="Ada"), LINKS).html
    assert _links(named)["Hi"] == "https://x.example/hi?n=Ada"


def test_a_recipient_value_in_a_numeric_attribute_is_refused_with_its_line(mini):
    mini.layout(_one_column('<mj-image src="https://x.example/a.png" width="{{ contact.logo_width }}px" />'))
    with pytest.raises(LayoutError) as caught:
        mini.assemble()
    assert str(caught.value).startswith("templates/layouts/basic.mjml:6: MJML drops the per-recipient")
    assert "{{ contact.logo_width }}" in str(caught.value)


def test_a_campaign_value_in_a_numeric_attribute_is_rendered_before_mjml(mini):
    mini.copy("Body.\n", logo_width=120)
    mini.layout(_one_column('<mj-image src="https://x.example/a.png" width="{{ copy.logo_width }}px" />'))
    image = next(lxml.html.fromstring(mini.assemble().html).iter("img"))
    assert image.get("width") == "120"


def test_mj_style_inline_rules_are_inlined_by_premailer(mini):
    style = '<mj-style inline="inline">.promo { color: #ff0000; }</mj-style>'
    mini.layout(_one_column('<mj-text css-class="promo">Offer</mj-text>', head=style))
    promo = next(e for e in lxml.html.fromstring(mini.assemble().html).iter() if e.get("class") == "promo")
    assert re.search(r"(?<!-)color:\s*#f(f0000|00)\b", promo.get("style"))


@pytest.mark.parametrize(
    "tag", ["<mj-txt>typo</mj-txt>", "<mj-dividr/>", '<mj-divider />\n<mj-spacerr height="9px" />']
)
def test_an_unknown_mj_tag_is_an_error_naming_file_and_line(mini, tag):
    mini.layout(_one_column(tag))
    with pytest.raises(LayoutError) as caught:
        mini.assemble()
    name = re.findall(r"<(mj-[a-z]+r{2}|mj-txt|mj-dividr)", tag)[0]
    line = 6 + tag.count("\n")
    assert str(caught.value).startswith(f"templates/layouts/basic.mjml:{line}: unknown MJML tag <{name}>")


def test_an_unknown_mj_tag_in_a_partial_is_an_error_naming_the_partial(mini):
    mini.write(
        "templates/partials/footer.mjml",
        "<mj-section>\n  <mj-column>\n    <mj-textt>x</mj-textt>\n  </mj-column>\n</mj-section>\n",
    )
    with pytest.raises(LayoutError) as caught:
        mini.assemble()
    assert str(caught.value).startswith("templates/partials/footer.mjml:3: unknown MJML tag <mj-textt>")


def test_mj_include_inside_the_body_is_a_warning(mini):
    mini.layout(
        _one_column("<mj-text>x</mj-text>").replace(
            "</mj-body>", '<mj-include path="footer.mjml" />\n</mj-body>'
        )
    )
    warnings = mini.assemble().warnings
    assert any(w.startswith("templates/layouts/basic.mjml:9: sections from <mj-include>") for w in warnings)


def test_html_over_gmail_clipping_size_is_a_warning(mini):
    assert not any("Gmail" in w for w in mini.assemble().warnings)
    mini.copy("".join(f"Paragraph {i} of a very long newsletter that goes on.\n\n" for i in range(2500)))
    assert any("Gmail clips messages over 102 KB" in w for w in mini.assemble().warnings)


def test_literal_jinja_delimiters_in_campaign_output_stay_text_per_recipient(mini, recipient):
    mini.layout(_one_column("<mj-text>{% raw %}Type {{ name }} or {# this #} here{% endraw %}</mj-text>"))
    from pipeline.assembly.personalize import Personalizer

    html = Personalizer(mini.assemble().templates).render(recipient(), LINKS).html
    assert "Type {{ name }} or {# this #} here" in html
