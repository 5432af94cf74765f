"""Previews: one recipient's finished message written as .html, .txt and .eml for a person to open."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formataddr
from pathlib import Path

from sqlmodel import select

from pipeline.assemble import assemble, check_campaign
from pipeline.contacts import normalize_email, recipient_of
from pipeline.db import connect, session
from pipeline.errors import ContactError
from pipeline.links import recipient_links
from pipeline.message import MessageBuilder, message_id
from pipeline.models import Contact
from pipeline.settings import Settings
from pipeline.stages.personalize import Personalizer, Recipient
from pipeline.workspace import Workspace

# Gmail clips a message whose HTML is larger than this, hiding the footer and its unsubscribe link.
GMAIL_CLIP_BYTES = 102 * 1024
# Previews are never sent, so without COMMS_SECRET their links are signed with a throwaway key.
PREVIEW_SECRET = "preview-only"


@dataclass(frozen=True)
class PreviewResult:
    campaign: str
    subject: str
    sender: str
    recipient: str
    html_path: Path
    text_path: Path
    eml_path: Path
    html_bytes: int
    text_bytes: int
    eml_bytes: int
    warnings: tuple[str, ...]


def sample_recipient(settings: Settings) -> Recipient:
    """The [preview] contact: who a preview, a check or a test send is personalised as by default."""
    sample = settings.preview
    return Recipient(
        email=sample.email,
        first_name=sample.first_name,
        last_name=sample.last_name,
        locale=sample.locale,
        timezone=sample.timezone,
        attributes=dict(sample.attributes),
    )


def find_recipient(ws: Workspace, email: str) -> Recipient:
    """The stored contact with EMAIL, personalised as the database knows them."""
    _, key = normalize_email(email)
    with session(connect(ws.settings)) as db:
        contact = db.exec(select(Contact).where(Contact.email_key == key)).first()
    if contact is None:
        raise ContactError(f"no contact {email} in the database")
    return recipient_of(contact)


def preview_campaign(
    ws: Workspace, name: str, out_dir: Path, *, contact_email: str | None = None
) -> PreviewResult:
    """Assemble NAME, render it for one recipient and write NAME.html/.txt/.eml into OUT_DIR."""
    settings = ws.settings
    if not settings.secrets:
        settings = settings.model_copy(update={"secrets": [PREVIEW_SECRET]})
    campaign = assemble(ws, name)
    check_campaign(ws, campaign)
    recipient = find_recipient(ws, contact_email) if contact_email else sample_recipient(settings)
    links = recipient_links(settings, 0)
    rendered = Personalizer.for_campaign(campaign).render(recipient, links)
    builder = MessageBuilder(settings, campaign=campaign.name, department=campaign.department, run_id=0)
    to_name = " ".join(p for p in (recipient.first_name, recipient.last_name) if p) or None
    domain = settings.sender.from_email.rpartition("@")[2]
    outgoing = builder.build(
        rendered,
        to_email=recipient.email,
        to_name=to_name,
        message_id=message_id(0, f"preview-{name}", domain),
        links=links,
        delivery_id=None,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, text_path, eml_path = (out_dir / f"{name}.{ext}" for ext in ("html", "txt", "eml"))
    html_path.write_text(rendered.html, encoding="utf-8")
    text_path.write_text(rendered.text, encoding="utf-8")
    eml_path.write_bytes(outgoing.data)

    html_bytes = len(rendered.html.encode())
    warnings = list(campaign.warnings)
    if html_bytes > GMAIL_CLIP_BYTES:
        warnings.append(f"HTML is {html_bytes // 1024} KB: Gmail clips messages over 102 KB")
    return PreviewResult(
        campaign=name,
        subject=rendered.subject,
        sender=formataddr((settings.sender.from_name, settings.sender.from_email)),
        recipient=formataddr((to_name or "", recipient.email)),
        html_path=html_path,
        text_path=text_path,
        eml_path=eml_path,
        html_bytes=html_bytes,
        text_bytes=len(rendered.text.encode()),
        eml_bytes=len(outgoing.data),
        warnings=tuple(dict.fromkeys(warnings)),
    )
