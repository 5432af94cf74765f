"""Fixtures for message, token, DKIM and transport tests: settings, a rendered message, keys."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pipeline.message.headers import message_id
from pipeline.message.mime import MessageBuilder
from pipeline.message.urls import recipient_links
from pipeline.types import Outgoing, Rendered
from pipeline.workspace.settings import Settings, load_settings

SECRET = "test-key-new-at-least-32-bytes-long"
DOMAIN = "kestrelforge.example"


@pytest.fixture
def settings(workspace_dir: Path) -> Settings:
    return load_settings(workspace_dir, {"COMMS_SECRET": f"{SECRET},test-key-old-at-least-32-bytes-long"})


@pytest.fixture
def rendered() -> Rendered:
    """About 20 KB of HTML, like a real campaign after inlining."""
    paragraph = (
        '<p style="color:#1F4E79">Hello Zoë, see <a href="https://x.example/a?b=c&amp;d=e">this</a></p>\n'
    )
    html = f"<html><body>{paragraph * 180}</body></html>\n"
    return Rendered(subject="Spring offers for Zoë", html=html, text="Hi Zoë,\n\nOur offers.\n")


@pytest.fixture
def build(settings: Settings, rendered: Rendered) -> Callable[..., Outgoing]:
    """build(**overrides) -> Outgoing for delivery 42 of run 7, contact 42."""

    def _build(
        builder: MessageBuilder | None = None, content: Rendered | None = None, **overrides: object
    ) -> Outgoing:
        builder = builder or MessageBuilder(settings, campaign="spring-sale", department="sales", run_id=7)
        arguments: dict[str, object] = {
            "to_email": "zoe@example.com",
            "to_name": "Zoë Ünal",
            "message_id": message_id(7, 42, DOMAIN),
            "links": recipient_links(settings, 42),
            "delivery_id": 42,
        }
        arguments.update(overrides)
        return builder.build(content or rendered, **arguments)  # type: ignore[arg-type]

    return _build


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def dns(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> Callable[..., bytes | None]:
    """A dnsfunc for dkim.verify publishing both public keys, as the DNS TXT records would."""
    rsa_public = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ed_public = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    records = {
        f"mail._domainkey.{DOMAIN}.".encode(): b"v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_public),
        f"ed._domainkey.{DOMAIN}.".encode(): b"v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_public),
    }

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name)

    return lookup
