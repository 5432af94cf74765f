"""The per-recipient URLs every message carries: unsubscribe, preferences and view online."""

from __future__ import annotations

from pipeline.assembly.personalize import Links
from pipeline.message.tokens import make_token
from pipeline.workspace.settings import Settings


def recipient_links(settings: Settings, delivery_id: int) -> Links:
    """Links under [tracking] base_url, each with its own signed token, so the tracking server
    needs no lookup table and a URL never reveals the address it was sent to."""
    base = settings.tracking.base_url.rstrip("/")
    secret = settings.secret
    return Links(
        unsubscribe_url=f"{base}/u/{make_token(secret, 'u', delivery_id)}",
        preferences_url=f"{base}/p/{make_token(secret, 'p', delivery_id)}",
        view_online_url=f"{base}/v/{make_token(secret, 'v', delivery_id)}",
    )
