"""Campaign scope, end to end: copy + layout + brand -> the frozen subject, HTML and text templates of a run.

    copy (Markdown) ─┐
    layout (MJML) ───┴─► campaign-scope Jinja ─► MJML -> HTML (MRML) ─► premailer ─► plain text
                                                                             │
                       per-recipient Jinja put back ◄────────────────────────┘  -> Campaign

This runs once per run; recipients only ever meet the compiled Campaign (see personalize.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import UndefinedError
from markupsafe import Markup

from pipeline.assembly.copy import Copy, load_copy, render_markdown
from pipeline.assembly.inline import inline_css
from pipeline.assembly.layout import CampaignScope
from pipeline.assembly.mjml import compile_mjml, mjml_warnings
from pipeline.assembly.personalize import Personalizer, preview_recipient
from pipeline.assembly.scope import JINJA_CONSTRUCT, Protector
from pipeline.assembly.text import html_to_text
from pipeline.errors import LayoutError, TemplateError
from pipeline.types import Links, Templates
from pipeline.workspace.folders import Workspace

# Gmail shows "[Message clipped]" past this much HTML.
GMAIL_CLIP_BYTES = 102 * 1024
_UNDEFINED_NAME = re.compile(r"undefined variable:? (?:a \w+ value has no ')?([\w.]+)")


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

    @property
    def templates(self) -> Templates:
        return Templates(self.subject, self.html, self.text)


def assemble(ws: Workspace, name: str) -> Campaign:
    """Assemble templates/copy/NAME.md with its layout; raises CopyError, LayoutError or TemplateError."""
    copy = load_copy(ws, name)
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

    html = inline_css(compile_mjml(mjml, include=include, sources=scope.sources))
    _require_survivors(protector, mjml + "".join(included), html)
    text = html_to_text(html, fallback=fields["preheader"] or fields["subject"])

    subject = protector.to_recipient_template(fields["subject"])
    html_template = protector.to_recipient_template(html)
    text_template = protector.to_recipient_template(text)
    # A broken per-recipient tag fails now, not per recipient.
    Personalizer(Templates(subject, html_template, text_template))
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
        preheader=protector.to_recipient_template(fields["preheader"]),
        tracking=copy.front.tracking,
        template_hash=digest,
        warnings=tuple(warnings),
    )


def check_campaign(ws: Workspace, campaign: Campaign) -> None:
    """Render strictly for the [preview] contact, so a misspelt name stops a run before anything is sent."""
    recipient = preview_recipient(ws.settings)
    base = ws.settings.tracking.base_url.rstrip("/")
    links = Links(f"{base}/u/preview", f"{base}/p/preview", f"{base}/v/preview")
    try:
        Personalizer(campaign.templates, strict=True).render(recipient, links)
    except UndefinedError as exc:
        named = _UNDEFINED_NAME.search(str(exc))
        path, line = _mention(ws, campaign, named[1] if named else "")
        raise TemplateError(
            f"{exc} (rendering for the [preview] contact {recipient.email})", path=path, line=line
        ) from None
    except (TypeError, ValueError, AttributeError, LookupError) as exc:
        raise TemplateError(
            f"cannot render for the [preview] contact: {exc}",
            path=ws.relative(ws.copy_dir / f"{campaign.name}.md"),
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


def _mention(ws: Workspace, campaign: Campaign, name: str) -> tuple[Path | None, int | None]:
    """The first copy, layout or partial line whose Jinja mentions NAME: where the writer should look."""
    copy_file = ws.copy_dir / f"{campaign.name}.md"
    layout = ws.layouts_dir / f"{campaign.layout}.mjml"
    files = [file for file in (copy_file, layout, *sorted(ws.partials_dir.glob("*"))) if ws.contains(file)]
    last = name.rsplit(".", 1)[-1]
    word = re.compile(rf"\b{re.escape(last)}\b")
    for file in files:
        if not last or not file.is_file():
            continue
        source = file.read_text(encoding="utf-8")
        for match in JINJA_CONSTRUCT.finditer(source):
            if word.search(match[0]):
                return ws.relative(file), source.count("\n", 0, match.start()) + 1
    return ws.relative(copy_file), None
