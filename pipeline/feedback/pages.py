"""The few HTML pages a recipient sees on the tracking server, in the brand's colours.

They are deliberately small and self-contained (no scripts, no external assets):
the unsubscribe confirmation, its result, the preferences page and "not found". Everything
shown from the database is autoescaped, and the recipient's address is shown masked, since a
forwarded message carries its links along.
"""

from __future__ import annotations

import re

from jinja2 import Environment
from markupsafe import Markup

from pipeline.feedback.preferences import ListChoice
from pipeline.workspace.settings import Settings

_CSS_UNSAFE = re.compile(r"[<>{};\\]")


def _css(value: str) -> Markup:
    """A brand colour or font list as CSS text: entities mean nothing inside <style>, so instead of
    escaping, drop what could end the declaration or the element."""
    return Markup(_CSS_UNSAFE.sub("", value))


_env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_env.filters["css"] = _css

_FRAME = _env.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{ title }} · {{ brand.company }}</title>
<style>
body { margin:0; background:{{ colors.background|css }}; color:{{ colors.text|css }};
  font-family:{{ fonts.body|css }}; line-height:1.5; }
main { max-width:34rem; margin:3rem auto; background:{{ colors.surface|css }}; padding:2rem;
  border-top:6px solid {{ colors.primary|css }}; border-radius:4px; }
h1 { font-family:{{ fonts.heading|css }}; font-size:1.5rem; margin-top:0; color:{{ colors.primary|css }}; }
button { background:{{ colors.primary|css }}; color:#fff; border:0; padding:.7rem 1.4rem; font-size:1rem;
  border-radius:4px; cursor:pointer; font-family:inherit; }
button.quiet { background:transparent; color:{{ colors.primary|css }};
  border:1px solid {{ colors.primary|css }}; padding:.3rem .8rem; font-size:.9rem; }
ul { padding:0; list-style:none; } li { display:flex; justify-content:space-between; align-items:center;
  padding:.6rem 0; border-bottom:1px solid {{ colors.background|css }}; }
a { color:{{ colors.primary|css }}; }
.muted, footer { color:{{ colors.muted|css }}; font-size:.85rem; }
footer { border-top:1px solid {{ colors.background|css }}; margin-top:1.5rem; }
.notice { background:{{ colors.background|css }}; padding:.6rem .8rem; border-radius:4px; }
</style></head>
<body><main>
<h1>{{ title }}</h1>
{{ body }}
<footer><p>{{ brand.company }} · {{ brand.address }}</p></footer>
</main></body></html>
"""
)

_UNSUBSCRIBE = _env.from_string(
    """<p>Stop all emails from {{ company }} to <strong>{{ address }}</strong>?</p>
<form method="post" action="">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<input type="hidden" name="source" value="page">
<button type="submit">Unsubscribe</button>
</form>
<p class="muted">Only want fewer emails? <a href="{{ preferences_url }}">Choose which lists you get</a>.</p>
"""
)

_UNSUBSCRIBED = _env.from_string(
    """<p>You are unsubscribed: {{ company }} will send no more emails to <strong>{{ address }}</strong>.</p>
<p class="muted">Unsubscribed by mistake? Reply to any of our emails and we will put it right.</p>
"""
)

_PREFERENCES = _env.from_string(
    """{% if notice %}<p class="notice">{{ notice }}</p>{% endif %}
{% if suppressed %}
<p><strong>{{ address }}</strong> is unsubscribed from all emails: {{ company }} sends it nothing.</p>
{% else %}
<p>The lists <strong>{{ address }}</strong> is on:</p>
<ul>
{% for choice in choices %}
<li><span>{{ choice.name }}
{% if choice.description %}<br><span class="muted">{{ choice.description }}</span>{% endif %}
</span>
{% if choice.subscribed %}
<form method="post" action=""><input type="hidden" name="leave" value="{{ choice.list_id }}">
<button class="quiet" type="submit">Leave</button></form>
{% else %}<span class="muted">left</span>{% endif %}</li>
{% else %}
<li class="muted">No lists.</li>
{% endfor %}
</ul>
<form method="post" action=""><input type="hidden" name="leave" value="all">
<button type="submit">Unsubscribe from everything</button></form>
{% endif %}
"""
)


def mask(address: str | None) -> str:
    """a•••@example.com: enough for a person to recognise their own address."""
    if not address:
        return "your address"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}" if local else address


def _page(settings: Settings, title: str, body: str) -> str:
    brand = settings.brand
    colors = {
        "background": "#f2f4f7",
        "surface": "#ffffff",
        "text": "#1d2430",
        "muted": "#5b6675",
        "primary": "#1f4e79",
    } | brand.colors
    fonts = {"body": "Helvetica, Arial, sans-serif", "heading": "Georgia, serif"} | brand.fonts
    return _FRAME.render(title=title, body=Markup(body), brand=brand, colors=colors, fonts=fonts)


def unsubscribe_page(settings: Settings, address: str | None, preferences_url: str) -> str:
    body = _UNSUBSCRIBE.render(
        company=settings.brand.company, address=mask(address), preferences_url=preferences_url
    )
    return _page(settings, "Unsubscribe", body)


def unsubscribed_page(settings: Settings, address: str | None) -> str:
    body = _UNSUBSCRIBED.render(company=settings.brand.company, address=mask(address))
    return _page(settings, "You are unsubscribed", body)


def preferences_page(
    settings: Settings, address: str | None, choices: list[ListChoice], *, suppressed: bool, notice: str = ""
) -> str:
    body = _PREFERENCES.render(
        company=settings.brand.company,
        address=mask(address),
        choices=choices,
        suppressed=suppressed,
        notice=notice,
    )
    return _page(settings, "Email preferences", body)


def unavailable_page(settings: Settings) -> str:
    body = "<p>This page is briefly unavailable. Please try the link again in a few minutes.</p>"
    return _page(settings, "Try again shortly", body)


def not_found_page(settings: Settings) -> str:
    body = "<p>This link is not valid. It may have been copied incompletely.</p>"
    return _page(settings, "Link not found", body)
