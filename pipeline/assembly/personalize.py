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
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, Template, TemplateSyntaxError, Undefined

from pipeline.assembly.names import NamedUndefined, Namespace, Sandbox
from pipeline.assembly.scope import SourceMap
from pipeline.errors import TemplateError
from pipeline.types import Links, Recipient, Rendered, Templates
from pipeline.workspace.settings import Settings

# For renders that check rather than send: nothing signed, nothing that leads anywhere.
CHECK_LINKS = Links("https://check.invalid/u", "https://check.invalid/p", "https://check.invalid/v")


def _blank_none(value: Any) -> Any:
    """`{{ contact.last_name }}` prints nothing, not "None", for a contact without one."""
    return "" if value is None else value


_BLANK_RUN = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
# Each part compiles under a file name of its own, so an error's frames say which part it is in.
PART_FILES = {"<subject>": "subject", "<html>": "html", "<text>": "text"}
_PART_NAMES = {"subject": "subject", "html": "HTML part", "text": "text part"}


class Personalizer:
    """Compiled once per run (Jinja compiles to Python code); render() is the per-recipient hot path.

    ORIGINS (a Campaign's ``origins``) map template lines back to the files the writer edits; UNDEFINED
    replaces the undefined of sending (lenient) or of STRICT (the [preview] check).
    """

    def __init__(
        self,
        templates: Templates,
        *,
        strict: bool = False,
        origins: Mapping[str, SourceMap] | None = None,
        undefined: type[Undefined] | None = None,
    ) -> None:
        self._strict = strict
        self._origins = dict(origins or {})
        options: dict[str, Any] = {
            "undefined": undefined or (NamedUndefined if strict else ChainableUndefined),
            "keep_trailing_newline": True,
            "finalize": _blank_none,
        }
        plain = Sandbox(autoescape=False, **options)
        self._subject = self._compile(plain, templates.subject, "subject")
        self._html = self._compile(Sandbox(autoescape=True, **options), templates.html, "html")
        self._text = self._compile(plain, templates.text, "text")

    def render(self, recipient: Recipient, links: Links, tracking: object | None = None) -> Rendered:
        """TRACKING is the delivery's message.urls.RecipientTracking when the run tracks clicks/opens."""
        context = {
            "contact": Namespace.shallow("contact", self._contact_values(recipient)),
            "unsubscribe_url": links.unsubscribe_url,
            "preferences_url": links.preferences_url,
            "view_online_url": links.view_online_url,
            "confirm_url": links.confirm_url,
            "tracking": tracking,
        }
        html = tuple(self._html.generate(context))
        return Rendered(
            subject=self._subject.render(context),
            html="".join(html),
            # A false {% if %} leaves its blank lines behind; a reader sees one paragraph break.
            text=_BLANK_RUN.sub("\n\n", self._text.render(context)),
            html_parts=html,
        )

    def locate(self, part: str, line: int | None, message: str = "") -> tuple[Path | None, int | None]:
        """The copy, layout or partial file and line that line LINE of PART ("subject", "html",
        "text") was written on; (None, None) when it is not known."""
        origins = self._origins.get(part)
        return origins.locate(line, message) if origins else (None, None)

    def locate_error(self, exc: BaseException) -> tuple[Path | None, int | None]:
        """Where a render error was written: the innermost template frame of its traceback."""
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in PART_FILES]
        if not frames:
            return None, None
        return self.locate(PART_FILES[frames[-1].filename], frames[-1].lineno, str(exc))

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

    def _compile(self, environment: Environment, source: str, part: str) -> Template:
        try:
            code = environment.compile(source, filename=f"<{part}>")
        except TemplateSyntaxError as exc:
            path, line = self.locate(part, exc.lineno, exc.message or "")
            if path is None:
                raise TemplateError(
                    f"the {_PART_NAMES[part]} is not valid Jinja: {exc.message} (line {exc.lineno})"
                ) from None
            raise TemplateError(f"template syntax: {exc.message}", path=path, line=line) from None
        # Every render copies the globals into a fresh context; Jinja keeps them as a ChainMap, which
        # it iterates key by key in Python (~3 us a render, three renders a message). A plain dict
        # with the same contents copies in C, and the environment is this template's own.
        return environment.template_class.from_code(environment, code, dict(environment.globals), None)


def preview_recipient(settings: Settings) -> Recipient:
    """The sample contact of comms.toml [preview]: who previews, checks and test sends are for."""
    return Recipient.of(settings.preview)
