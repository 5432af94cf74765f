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


# The honeypot is off-screen rather than display:none, which some bots know to skip.
_SIGNUP_FORM = """<form method="post" action="{{ action }}" class="signup">
<p><label for="comms-email">Email address</label><br>
<input id="comms-email" type="email" name="email" required autocomplete="email"></p>
<p><label for="comms-first-name">First name (optional)</label><br>
<input id="comms-first-name" type="text" name="first_name" autocomplete="given-name"></p>
<p style="position:absolute;left:-10000px" aria-hidden="true"><label for="comms-{{ honeypot }}">
Leave this empty</label><input id="comms-{{ honeypot }}" type="text" name="{{ honeypot }}"
tabindex="-1" autocomplete="off"></p>
<button type="submit">Subscribe</button>
</form>
"""
_SIGNUP = _env.from_string(
    """{% if description %}<p>{{ description }}</p>{% endif %}
<p class="muted">We will email you a link to confirm; nothing is sent to you before you do.</p>
"""
    + _SIGNUP_FORM
)
_SNIPPET = _env.from_string(_SIGNUP_FORM)

_SIGNUP_SENT = _env.from_string(
    """<p>Thank you. Check your inbox: we sent a link to confirm your subscription to
<strong>{{ list_name }}</strong>.</p>
<p class="muted">The link works for {{ hours }} hours. No confirmation, no emails.</p>
"""
)

_CONFIRM = _env.from_string(
    """<p>Confirm that you want to receive <strong>{{ list_name }}</strong> from {{ company }}.</p>
<form method="post" action=""><button type="submit">Confirm my subscription</button></form>
"""
)

_CONFIRMED = {
    "subscribed": "You are subscribed to <strong>{{ list_name }}</strong>. Welcome!",
    "already": "You had already confirmed: you are subscribed to <strong>{{ list_name }}</strong>.",
    "expired": "This link has expired. Sign up again to receive <strong>{{ list_name }}</strong>.",
}
_CONFIRMED_TEMPLATES = {key: _env.from_string(f"<p>{text}</p>") for key, text in _CONFIRMED.items()}


def signup_page(settings: Settings, list_name: str, description: str, action: str, honeypot: str) -> str:
    body = _SIGNUP.render(description=description, action=action, honeypot=honeypot)
    return page(settings, f"Subscribe to {list_name}", body)


def signup_snippet(action: str, honeypot: str) -> str:
    """The sign-up form alone, to paste into another site's page."""
    return _SNIPPET.render(action=action, honeypot=honeypot)


def signup_sent_page(settings: Settings, list_name: str) -> str:
    body = _SIGNUP_SENT.render(list_name=list_name, hours=f"{settings.signup.expire_h:g}")
    return page(settings, "Check your inbox", body)


def confirm_page(settings: Settings, list_name: str) -> str:
    body = _CONFIRM.render(list_name=list_name, company=settings.brand.company)
    return page(settings, "Confirm your subscription", body)


def confirmed_page(settings: Settings, outcome: str, list_name: str) -> str:
    title = "Link expired" if outcome == "expired" else "Subscription confirmed"
    return page(settings, title, _CONFIRMED_TEMPLATES[outcome].render(list_name=list_name))


def mask(address: str | None) -> str:
    """a•••@example.com: enough for a person to recognise their own address."""
    if not address:
        return "your address"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}" if local else address


def page(settings: Settings, title: str, body: str) -> str:
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
    return page(settings, "Unsubscribe", body)


def unsubscribed_page(settings: Settings, address: str | None) -> str:
    body = _UNSUBSCRIBED.render(company=settings.brand.company, address=mask(address))
    return page(settings, "You are unsubscribed", body)


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
    return page(settings, "Email preferences", body)


def unavailable_page(settings: Settings) -> str:
    body = "<p>This page is briefly unavailable. Please try the link again in a few minutes.</p>"
    return page(settings, "Try again shortly", body)


def not_found_page(settings: Settings) -> str:
    body = "<p>This link is not valid. It may have been copied incompletely.</p>"
    return page(settings, "Link not found", body)
