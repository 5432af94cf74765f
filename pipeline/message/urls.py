"""The per-recipient URLs every message carries: unsubscribe, preferences, view online, clicks, open pixel."""

from __future__ import annotations

from pipeline.message.tokens import make_token
from pipeline.types import Links
from pipeline.workspace.settings import Settings


def recipient_links(settings: Settings, delivery_id: int, confirm_url: str = "") -> Links:
    """Links under [tracking] base_url, each with its own signed token, so the tracking server
    needs no lookup table and a URL never reveals the address it was sent to. CONFIRM_URL is a
    sign-up's confirmation link, passed through."""
    base = settings.tracking.base_url.rstrip("/")
    secret = settings.secret
    unsubscribe = make_token(secret, "u", delivery_id)
    return Links(
        unsubscribe_url=f"{base}/u/{unsubscribe}",
        preferences_url=f"{base}/p/{make_token(secret, 'p', delivery_id)}",
        view_online_url=f"{base}/v/{make_token(secret, 'v', delivery_id)}",
        confirm_url=confirm_url,
        unsubscribe_token=unsubscribe,
    )


class RecipientTracking:
    """What recipient-scope templates see as `tracking`: one delivery's click and open URLs.

    Tokens are minted only when the template asks, so a recipient costs one HMAC per link shown.
    """

    __slots__ = ("_base", "_delivery_id", "_secret")

    def __init__(self, base_url: str, secret: bytes, delivery_id: int) -> None:
        self._base = base_url.rstrip("/")
        self._secret = secret
        self._delivery_id = delivery_id

    def __getitem__(self, index: int) -> str:
        """Link INDEX's click URL, as ``{{ tracking[INDEX] }}``: the sandbox lets a subscript through
        as it is, where an attribute and a call each go through its checks, half of a link's cost."""
        return f"{self._base}/c/{make_token(self._secret, 'c', self._delivery_id, index)}"

    click = __getitem__  # ``{{ tracking.click(INDEX) }}``: what runs frozen before the subscript still hold

    @property
    def open_url(self) -> str:
        return f"{self._base}/o/{make_token(self._secret, 'o', self._delivery_id)}.gif"


def recipient_tracking(settings: Settings, delivery_id: int) -> RecipientTracking:
    return RecipientTracking(settings.tracking.base_url, settings.secret, delivery_id)
