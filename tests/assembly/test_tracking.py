"""Link rewriting at run start: which links go through the click endpoint, UTM tags, the open pixel."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from pipeline.assembly.campaign import Campaign
from pipeline.assembly.personalize import Personalizer
from pipeline.assembly.tracking import rewrite_links, track_campaign, with_utm
from pipeline.message.tokens import read_token
from pipeline.message.urls import RecipientTracking
from pipeline.types import Links, Recipient, Templates
from pipeline.workspace.settings import load_settings

BASE = "https://t.example"
SOURCE = """<html><body>
<a href="https://shop.example/a?x=1&amp;y=2#top">A</a>
<a class="btn" href='http://shop.example/b'>B</a>
<a href="https://shop.example/c?n={{ contact.first_name | default("you") }}">C</a>
<a href="https://{{ contact.attributes.site }}/x">per-contact host</a>
<a href="{{ unsubscribe_url }}">U</a> <a href="{{ preferences_url }}">P</a>
<a href="{{ view_online_url }}">V</a>
<a href="mailto:hi@example.com">M</a> <a href="tel:+441234">T</a> <a href="#section">S</a>
<a href="https://t.example/u/abc">already ours</a>
</body></html>"""
LINKS = Links("https://t.example/u/U", "https://t.example/p/P", "https://t.example/v/V")


def test_tracked_links_are_the_literal_http_ones_recorded_in_order() -> None:
    tracked = rewrite_links(SOURCE, utm={}, track=True, own_base_url=BASE)
    assert tracked.links == (
        "https://shop.example/a?x=1&y=2#top",
        "http://shop.example/b",
        'https://shop.example/c?n={{ contact.first_name | default("you") }}',
    )
    assert '<a href="{{ tracking[0] }}">A</a>' in tracked.html
    assert "<a class=\"btn\" href='{{ tracking[1] }}'>B</a>" in tracked.html
    assert '<a href="{{ tracking[2] }}">C</a>' in tracked.html
    for untouched in (
        'href="https://{{ contact.attributes.site }}/x"',
        'href="{{ unsubscribe_url }}"',
        'href="mailto:hi@example.com"',
        'href="tel:+441234"',
        'href="#section"',
        'href="https://t.example/u/abc"',
    ):
        assert untouched in tracked.html
    assert tracked.html.index("{{ tracking.open_url }}") < tracked.html.index("</body>")


def test_rendered_message_points_every_tracked_link_at_the_click_endpoint() -> None:
    tracked = rewrite_links(SOURCE, utm={}, track=True, own_base_url=BASE)
    tracking = RecipientTracking(BASE, b"key", 42)
    html = (
        Personalizer(Templates("s", tracked.html, "t"))
        .render(Recipient(email="a@example.com"), LINKS, tracking)
        .html
    )
    clicks = re.findall(r"""href=["']https://t\.example/c/([^"']+)["']""", html)
    # Each tracked link in order, its delivery and index signed into its token.
    assert [read_token([b"key"], "c", token) for token in clicks] == [(42, 0), (42, 1), (42, 2)]
    assert f'<img src="{tracking.open_url}"' in html


def test_a_run_frozen_with_the_older_call_form_sends_the_same_click_urls() -> None:
    """Runs frozen before tracked links became subscripts hold ``{{ tracking.click(N) }}``; a paused
    one resumed after an upgrade sends what it would have sent before."""
    tracked = rewrite_links(SOURCE, utm={}, track=True, own_base_url=BASE)
    older = re.sub(r"\{\{ tracking\[(\d+)\] \}\}", r"{{ tracking.click(\1) }}", tracked.html)
    assert older.count("tracking.click(") == 3

    def rendered(html: str) -> str:
        recipient = Recipient(email="a@example.com")
        return (
            Personalizer(Templates("s", html, "t"))
            .render(recipient, LINKS, RecipientTracking(BASE, b"k", 7))
            .html
        )

    assert rendered(older) == rendered(tracked.html)


def test_utm_parameters_are_added_unless_the_link_has_them() -> None:
    utm = {"utm_source": "comms", "utm_campaign": "spring"}
    assert with_utm("https://x.example/p", utm) == "https://x.example/p?utm_source=comms&utm_campaign=spring"
    assert (
        with_utm("https://x.example/p?a=1&utm_campaign=mine#f", utm)
        == "https://x.example/p?a=1&utm_campaign=mine&utm_source=comms#f"
    )
    tracked = rewrite_links(SOURCE, utm=utm, track=True, own_base_url=BASE)
    assert tracked.links[0] == "https://shop.example/a?x=1&y=2&utm_source=comms&utm_campaign=spring#top"


def test_tracking_off_leaves_links_direct_but_still_tagged() -> None:
    tracked = rewrite_links(SOURCE, utm={"utm_source": "comms"}, track=False, own_base_url=BASE)
    assert tracked.links == ()
    assert "tracking." not in tracked.html
    assert 'href="https://shop.example/a?x=1&amp;y=2&amp;utm_source=comms#top"' in tracked.html
    # Jinja inside a link is kept as written, not HTML-escaped.
    assert (
        'href="https://shop.example/c?n={{ contact.first_name | default("you") }}&amp;utm_source=comms"'
        in (tracked.html)
    )


def test_track_campaign_fills_campaign_names_into_utm_values(workspace_dir: Path) -> None:
    settings = load_settings(workspace_dir, {"COMMS_SECRET": "k" * 32})
    settings.tracking.utm = {"utm_medium": "email", "utm_campaign": "{campaign}-{department}"}
    campaign = Campaign(
        name="spring-launch",
        subject="s",
        html='<html><body><a href="https://x.example/">x</a></body></html>',
        text="t",
        department="sales",
        audience="customers",
        layout="promotion",
        preheader="",
        tracking=True,
        template_hash="0" * 64,
        warnings=(),
    )
    frozen, tracked = track_campaign(campaign, settings)
    website = settings.brand.website
    assert tracked.links == ("https://x.example/?utm_medium=email&utm_campaign=spring-launch-sales", website)
    assert tracked.honeypot == 1
    assert "{{ tracking[0] }}" in frozen.html and frozen.template_hash == campaign.template_hash
    untracked, none = track_campaign(replace(campaign, tracking=False), settings)
    assert none.links == () and none.honeypot is None and "tracking" not in untracked.html
