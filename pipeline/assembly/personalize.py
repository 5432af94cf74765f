"""Recipient scope: a run's subject, HTML and text compiled once, rendered once per recipient.

Templates see ``contact`` (the fields below, and every attribute as ``contact.<attr>`` unless a
field has that name; all of them as ``contact.attributes``) and the recipient's links. Contact data
is HTML-escaped in the HTML part only. Sending is lenient: a missing value is undefined, so
``contact.first_name | default("there")`` works for a contact without a first name, and a
misspelt name renders empty. check_campaign renders strictly against the [preview] contact first,
so a misspelt name stops the run before anything is sent.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import ChainableUndefined, Environment, Template, TemplateSyntaxError

from pipeline.assembly.names import NamedUndefined, Namespace
from pipeline.errors import TemplateError
from pipeline.types import Links, Recipient, Rendered, Templates
from pipeline.workspace.settings import Settings


def _blank_none(value: Any) -> Any:
    """`{{ contact.last_name }}` prints nothing, not "None", for a contact without one."""
    return "" if value is None else value


_BLANK_RUN = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


class Personalizer:
    """Compiled once per run (Jinja compiles to Python code); render() is the per-recipient hot path."""

    def __init__(self, templates: Templates, *, strict: bool = False) -> None:
        self._strict = strict
        options: dict[str, Any] = {
            "undefined": NamedUndefined if strict else ChainableUndefined,
            "keep_trailing_newline": True,
            "finalize": _blank_none,
        }
        plain = Environment(autoescape=False, **options)
        self._subject = _compile(plain, templates.subject, "subject")
        self._html = _compile(Environment(autoescape=True, **options), templates.html, "HTML part")
        self._text = _compile(plain, templates.text, "text part")

    def render(self, recipient: Recipient, links: Links, tracking: object | None = None) -> Rendered:
        """TRACKING is the delivery's assembly.tracking.RecipientTracking when the run tracks clicks/opens."""
        context = {
            "contact": Namespace.shallow("contact", self._contact_values(recipient)),
            "unsubscribe_url": links.unsubscribe_url,
            "preferences_url": links.preferences_url,
            "view_online_url": links.view_online_url,
            "tracking": tracking,
        }
        return Rendered(
            subject=self._subject.render(context),
            html=self._html.render(context),
            # A false {% if %} leaves its blank lines behind; a reader sees one paragraph break.
            text=_BLANK_RUN.sub("\n\n", self._text.render(context)),
        )

    def _contact_values(self, recipient: Recipient) -> dict[str, Any]:
        values = dict(recipient.attributes)
        fields = {
            "email": recipient.email,
            "first_name": recipient.first_name,
            "last_name": recipient.last_name,
            "locale": recipient.locale,
            "timezone": recipient.timezone,
        }
        # Strict (the preview check) keeps empty fields defined: it looks for misspelt names only.
        values.update(fields if self._strict else {k: v for k, v in fields.items() if v})
        values["attributes"] = recipient.attributes
        return values


def _compile(environment: Environment, source: str, part: str) -> Template:
    try:
        template = environment.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"the {part} is not valid Jinja: {exc.message} (line {exc.lineno})") from None
    # Every render copies the globals into a fresh context; Jinja keeps them as a ChainMap, which
    # it iterates key by key in Python (~3 us a render, three renders a message). A plain dict
    # with the same contents copies in C, and the environment is this template's own.
    template.globals = dict(template.globals)
    return template


def preview_recipient(settings: Settings) -> Recipient:
    """The sample contact of comms.toml [preview]: who previews, checks and test sends are for."""
    return Recipient.of(settings.preview)
