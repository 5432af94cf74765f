"""The one place a recipient's message is built from a run's frozen templates.

Sending, dry runs, test sends, previews and the view-online page all come through Composer, so a
preview can never differ from the real send: the same links, the same tracking, the same headers.
"""

from __future__ import annotations

from typing import NamedTuple

from pipeline.assembly.personalize import Personalizer
from pipeline.message.dkim import Signer
from pipeline.message.headers import message_id
from pipeline.message.mime import MessageBuilder
from pipeline.message.urls import recipient_links, recipient_tracking
from pipeline.types import Outgoing, Recipient, Rendered, Templates
from pipeline.workspace.settings import Settings


class Composed(NamedTuple):
    rendered: Rendered
    outgoing: Outgoing


class Composer:
    """Compiled and encoded once per run; compose() is the per-recipient hot path.

    TRACKED says whether the templates call click and open tracking (a test send's do not: its
    message belongs to no delivery). A rehearsal (preview, dry run, test send) has no delivery,
    and its links carry delivery 0, which the tracking server knows nothing of.
    """

    def __init__(
        self,
        settings: Settings,
        templates: Templates,
        *,
        campaign: str,
        department: str,
        run_id: int = 0,
        salt: str = "",
        signer: Signer | None = None,
        tracked: bool = True,
    ) -> None:
        self._settings = settings
        self._personalizer = Personalizer(templates)
        self._builder = MessageBuilder(
            settings, campaign=campaign, department=department, run_id=run_id, signer=signer
        )
        self._domain = settings.sender.from_email.rpartition("@")[2]
        self._run_id = run_id
        self._salt = salt
        self._tracked = tracked

    def render(self, recipient: Recipient, delivery_id: int | None) -> Rendered:
        """Subject and bodies only: what the view-online page shows."""
        token_id = delivery_id or 0
        tracking = recipient_tracking(self._settings, token_id) if self._tracked else None
        return self._personalizer.render(recipient, recipient_links(self._settings, token_id), tracking)

    def compose(
        self,
        recipient: Recipient,
        *,
        delivery_id: int | None,
        contact_key: int | str,
        to_email: str | None = None,
        test: bool = False,
        confirm_url: str = "",
    ) -> Composed:
        """CONTACT_KEY names the contact in the Message-ID, so a resend carries the same one.
        CONFIRM_URL is a sign-up's confirmation link, for templates/copy/_confirm.md."""
        token_id = delivery_id or 0
        links = recipient_links(self._settings, token_id, confirm_url)
        tracking = recipient_tracking(self._settings, token_id) if self._tracked else None
        rendered = self._personalizer.render(recipient, links, tracking)
        outgoing = self._builder.build(
            rendered,
            to_email=to_email or recipient.email,
            to_name=recipient.display_name,
            message_id=message_id(self._run_id, contact_key, self._domain, salt=self._salt),
            links=links,
            delivery_id=delivery_id,
            test=test,
        )
        return Composed(rendered, outgoing)
