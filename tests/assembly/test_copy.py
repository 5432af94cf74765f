"""The copy file reaching the layout: front matter as copy.*, the Markdown body, brand and campaign values."""

from __future__ import annotations

import lxml.html

from pipeline.assembly.personalize import Personalizer

from .conftest import LINKS

LAYOUT = """\
<mjml><mj-body><mj-section><mj-column>
  <mj-text><h1>{{ copy.headline | markdown }}</h1>{{ copy.body }}</mj-text>
  {% for feature in copy.features %}
  <mj-text css-class="feature">{{ feature.title }}: {{ feature.text }}</mj-text>
  {% endfor %}
  <mj-text css-class="meta">{{ campaign.name }}/{{ campaign.department }}/{{ campaign.audience }}</mj-text>
  <mj-button background-color="{{ brand.colors.primary }}" href="{{ brand.website }}">
    {{ brand.company }}</mj-button>
</mj-column></mj-section></mj-body></mjml>
"""


def _page(mini, recipient, **front):
    mini.layout(LAYOUT)
    mini.copy(
        """\
Dear **customer** of {{ brand.company }}, see [the offer](https://x.example/offer).

<script>alert(1)</script>
""",
        headline='"Spring *is* here"',
        features='[{"title": "Fast", "text": "3 weeks"}, {"title": "Exact", "text": "0.3 mm"}]',
        **front,
    )
    campaign = mini.assemble()
    rendered = Personalizer(campaign.templates).render(recipient(), LINKS)
    return campaign, lxml.html.fromstring(rendered.html)


def test_front_matter_fields_body_brand_and_campaign_reach_the_layout(mini, recipient):
    campaign, page = _page(mini, recipient)
    heading = next(page.iter("h1"))
    assert (
        lxml.html.tostring(heading, encoding="unicode", with_tail=False) == "<h1>Spring <em>is</em> here</h1>"
    )
    assert [e.text_content() for e in page.find_class("feature")] == ["Fast: 3 weeks", "Exact: 0.3 mm"]
    assert page.find_class("meta")[0].text_content() == "hello/sales/everyone"
    body = next(p for p in page.iter("p") if "Dear" in p.text_content())
    assert body.text_content() == "Dear customer of Kestrel Forge Ltd., see the offer."
    assert next(body.iter("strong")).text == "customer"
    button = next(a for a in page.iter("a") if a.text_content().strip() == "Kestrel Forge Ltd.")
    assert button.get("href") == "https://kestrelforge.example"
    assert "#1F4E79" in button.getparent().get("bgcolor", "").upper()
    assert (campaign.department, campaign.audience, campaign.layout) == ("sales", "everyone", "basic")


def test_html_written_in_the_copy_is_shown_as_text_not_run(mini, recipient):
    _, page = _page(mini, recipient)
    assert not list(page.iter("script"))
    assert "<script>alert(1)</script>" in page.text_content()


def test_tracking_defaults_to_on_and_can_be_turned_off(mini):
    assert mini.assemble().tracking is True
    mini.copy("Internal note.\n", tracking="false")
    assert mini.assemble().tracking is False


def test_the_template_hash_follows_the_sources(mini):
    first = mini.assemble()
    assert mini.assemble().template_hash == first.template_hash
    mini.copy("Different words.\n")
    assert mini.assemble().template_hash != first.template_hash


def test_a_recipient_for_loop_binds_its_names_per_recipient(mini, recipient):
    mini.copy("{% for order in contact.orders %}\n- {{ order.part }} x {{ loop.index }}\n{% endfor %}\n")
    rendered = mini.render(recipient(attributes={"orders": [{"part": "flange"}, {"part": "shaft"}]}))
    assert "flange x 1" in rendered.text and "shaft x 2" in rendered.text


def test_a_campaign_if_may_hold_recipient_data(mini, recipient):
    mini.copy("{% if copy.greet %}Hi {{ contact.first_name }}!{% endif %}\n", greet="true")
    assert "Hi Ada!" in mini.render(recipient(first_name="Ada")).text
