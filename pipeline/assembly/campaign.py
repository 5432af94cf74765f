"""Campaign scope, end to end: copy + layout + brand -> the frozen subject, HTML and text templates of a run.

    copy (Markdown) ─┐
    layout (MJML) ───┴─► campaign-scope Jinja ─► MJML -> HTML (MRML) ─► premailer ─► plain text
                                                                             │
                       per-recipient Jinja put back ◄────────────────────────┘  -> Campaign

This runs once per run; recipients only ever meet the compiled Campaign (see personalize.py). The
libraries that compile (premailer, lxml, mjml: 25 MB) are imported by assemble() alone: the process
that starts a run from its prepared content (pipeline.runs.start) imports this module for Campaign
and check_campaign and never assembles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import UndefinedError
from markupsafe import Markup

from pipeline.assembly.copy import Copy, load_copy, render_markdown
from pipeline.assembly.layout import CampaignScope
from pipeline.assembly.personalize import Personalizer, preview_recipient
from pipeline.assembly.scope import Protector, SourceMap
from pipeline.assembly.variants import with_variant
from pipeline.errors import LayoutError, TemplateError
from pipeline.types import Links, Templates
from pipeline.workspace.folders import Workspace

# Gmail shows "[Message clipped]" past this much HTML.
GMAIL_CLIP_BYTES = 102 * 1024
# <html lang> when the copy names no language: the contact's locale ("en_GB" is written "en-GB").
CONTACT_LANG = '{{ contact.locale | default("en", true) | replace("_", "-") }}'


@dataclass(frozen=True)
class Campaign:
    """Campaign scope, rendered once per run; subject, html and text are recipient-scope Jinja sources."""

    name: str
    subject: str
    html: str
    text: str
    department: str
    audience: str
    layout: str
    preheader: str
    tracking: bool
    template_hash: str
    warnings: tuple[str, ...]
    variant: str = ""  # the A/B variant this is ("" for a copy without variants)
    # Per part ("subject", "html", "text"): where its per-recipient constructs were written.
    origins: Mapping[str, SourceMap] = field(default_factory=dict, compare=False)

    @property
    def templates(self) -> Templates:
        return Templates(self.subject, self.html, self.text)


def assemble(ws: Workspace, name: str, variant: str | None = None) -> Campaign:
    """Assemble templates/copy/NAME.md (as its A/B VARIANT, when given) with its layout; raises
    CopyError, LayoutError or TemplateError."""
    from pipeline.assembly.inline import inline_css  # see the module's docstring
    from pipeline.assembly.mjml import check_tags, compile_mjml, mjml_warnings, repair_output
    from pipeline.assembly.text import html_to_text

    copy = load_copy(ws, name)
    if variant is not None:
        copy = with_variant(copy, variant)
    protector = Protector()
    scope = CampaignScope(
        ws, protector, {"brand": ws.settings.brand.model_dump(), "campaign": _metadata(copy)}
    )
    fields = {key: _render_field(scope, copy, key, value) for key, value in copy.fields.items()}
    scope.set_copy(fields)  # the body may use the front matter's fields
    body = scope.render_text(copy.body, copy.path, copy.body_line)
    fields["body"] = Markup(protector.unwrap_block_tags(render_markdown(body)))
    scope.set_copy(fields)

    mjml = scope.render_file(f"{copy.front.layout}.mjml")
    included: list[str] = []

    def include(path: str) -> str:
        included.append(scope.render_file(path))
        return included[-1]

    lang = copy.front.lang or protector.insert(CONTACT_LANG, copy.path, 1)
    html = repair_output(inline_css(compile_mjml(mjml, include=include, sources=scope.sources)), lang=lang)
    check_tags(scope.sources)
    _require_survivors(protector, mjml + "".join(included), html)
    text = html_to_text(html, fallback=fields["preheader"] or fields["subject"])

    subject, subject_origins = protector.to_recipient_template(fields["subject"])
    html_template, html_origins = protector.to_recipient_template(html)
    text_template, text_origins = protector.to_recipient_template(text)
    origins = {"subject": subject_origins, "html": html_origins, "text": text_origins}
    # A broken per-recipient tag fails now, naming where it was written, not per recipient.
    Personalizer(Templates(subject, html_template, text_template), origins=origins)
    warnings = mjml_warnings(scope.sources)
    if text == (fields["preheader"] or fields["subject"]):
        warnings.append(f"{copy.path}: the HTML has no text, so the plain-text part is only the preheader")
    size = len(html_template.encode())
    if size > GMAIL_CLIP_BYTES:
        warnings.append(f"HTML is {size // 1024} KB; Gmail clips messages over 102 KB")
    digest = hashlib.sha256("\0".join((subject, html_template, text_template)).encode()).hexdigest()
    return Campaign(
        name=name,
        subject=subject,
        html=html_template,
        text=text_template,
        department=copy.front.department,
        audience=copy.front.audience,
        layout=copy.front.layout,
        preheader=protector.to_recipient_template(fields["preheader"])[0],
        tracking=copy.front.tracking,
        template_hash=digest,
        warnings=tuple(warnings),
        variant=variant or "",
        origins=origins,
    )


def check_campaign(ws: Workspace, campaign: Campaign) -> None:
    """Render strictly for the [preview] contact, so a misspelt name stops a run before anything is sent."""
    recipient = preview_recipient(ws.settings)
    base = ws.settings.tracking.base_url.rstrip("/")
    links = Links(f"{base}/u/preview", f"{base}/p/preview", f"{base}/v/preview")
    personalizer = Personalizer(campaign.templates, strict=True, origins=campaign.origins)
    try:
        personalizer.render(recipient, links)
    except (jinja2.TemplateError, TypeError, ValueError, AttributeError, LookupError) as exc:
        path, line = personalizer.locate_error(exc)
        detail = str(exc) if isinstance(exc, UndefinedError) else f"cannot render: {exc}"
        raise TemplateError(
            f"{detail} (rendering for the [preview] contact {recipient.email})",
            path=path or ws.relative(ws.copy_dir / f"{campaign.name}.md"),
            line=line,
        ) from None


def _metadata(copy: Copy) -> dict[str, Any]:
    front = copy.front
    return {
        "name": copy.name,
        "department": front.department,
        "audience": front.audience,
        "layout": front.layout,
        "tracking": front.tracking,
    }


def _render_field(scope: CampaignScope, copy: Copy, key: str, value: Any) -> Any:
    """Front-matter strings, however nested, are campaign-scope templates too."""
    if isinstance(value, str):
        return scope.render_text(value, copy.path, copy.field_lines.get(key, 1))
    if isinstance(value, list):
        return [_render_field(scope, copy, key, item) for item in value]
    if isinstance(value, dict):
        return {k: _render_field(scope, copy, key, v) for k, v in value.items()}
    return value


def _require_survivors(protector: Protector, before: str, after: str) -> None:
    """Every per-recipient token that went into MJML must come out of premailer."""
    lost = sorted(protector.tokens_in(before) - protector.tokens_in(after))
    if lost:
        entry = protector.entry(lost[0])
        raise LayoutError(
            f"MJML drops the per-recipient `{entry.source}` here: it replaces a value it cannot read "
            '(such as width="…px") with its default; use a literal value, or use per-recipient data '
            "in text or links only",
            path=entry.origin,
            line=entry.line,
        )
