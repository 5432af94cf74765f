"""Previews: one recipient's finished message written as .html, .txt and .eml for a person to open."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.assembly.campaign import Campaign, assemble, check_campaign
from pipeline.assembly.personalize import preview_recipient
from pipeline.audience.contacts import find_contact
from pipeline.errors import ContactError, WorkspaceError
from pipeline.message.compose import Composed, Composer
from pipeline.storage.engines import opened, session
from pipeline.types import Recipient
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings

# Previews are never sent, so without COMMS_SECRET their links are signed with a throwaway key.
PREVIEW_SECRET = "preview-only-never-sent-throwaway-key"


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


def shown_mailbox(name: str | None, address: str) -> str:
    """Name <address> as a person reads it; formataddr would refuse a non-ASCII (SMTPUTF8) local part."""
    return f"{name} <{address}>" if name else address


def find_recipient(ws: Workspace, email: str) -> Recipient:
    """The stored contact with EMAIL, personalised as the database knows them."""
    with opened(ws.settings) as engine, session(engine) as db:
        contact = find_contact(db, email)
    if contact is None:
        raise ContactError(f"no contact {email} in the database")
    return Recipient.of(contact)


@dataclass(frozen=True)
class PreviewMessage:
    campaign: Campaign
    recipient: Recipient
    composed: Composed


def preview_settings(ws: Workspace) -> Settings:
    """The workspace's settings, with a throwaway token key when COMMS_SECRET is not set."""
    settings = ws.settings
    if not settings.secrets:
        settings = settings.model_copy(update={"secrets": [PREVIEW_SECRET]})
    return settings


def preview_message(ws: Workspace, name: str, *, contact_email: str | None = None) -> PreviewMessage:
    """NAME assembled and composed for the stored contact CONTACT_EMAIL, or the [preview] contact:
    what `comms preview` writes and the studio shows."""
    settings = preview_settings(ws)
    campaign = assemble(ws, name)
    check_campaign(ws, campaign)
    recipient = find_recipient(ws, contact_email) if contact_email else preview_recipient(settings)
    composer = Composer(
        settings, campaign.templates, campaign=campaign.name, department=campaign.department, tracked=False
    )
    composed = composer.compose(recipient, delivery_id=None, contact_key=f"preview-{name}")
    return PreviewMessage(campaign, recipient, composed)


def preview_campaign(
    ws: Workspace, name: str, out_dir: Path, *, contact_email: str | None = None
) -> PreviewResult:
    """Assemble NAME, render it for one recipient and write NAME.html/.txt/.eml into OUT_DIR."""
    settings = ws.settings
    message = preview_message(ws, name, contact_email=contact_email)
    campaign, recipient = message.campaign, message.recipient
    rendered, outgoing = message.composed
    to_name = recipient.display_name

    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, text_path, eml_path = (out_dir / f"{name}.{ext}" for ext in ("html", "txt", "eml"))
    for path in (html_path, text_path, eml_path):
        if not path.resolve().is_relative_to(out_dir.resolve()):
            raise WorkspaceError("is a symlink out of the preview folder: remove it", path=path)
    html_path.write_text(rendered.html, encoding="utf-8")
    text_path.write_text(rendered.text, encoding="utf-8")
    eml_path.write_bytes(outgoing.data)

    return PreviewResult(
        campaign=name,
        subject=rendered.subject,
        sender=shown_mailbox(settings.sender.from_name, settings.sender.from_email),
        recipient=shown_mailbox(to_name, recipient.email),
        html_path=html_path,
        text_path=text_path,
        eml_path=eml_path,
        html_bytes=len(rendered.html.encode()),
        text_bytes=len(rendered.text.encode()),
        eml_bytes=len(outgoing.data),
        warnings=campaign.warnings,
    )
