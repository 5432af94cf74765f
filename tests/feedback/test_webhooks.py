"""Amazon SES notifications through SNS, posted over HTTP and signed with a certificate made here.

The real SNS certificate cannot be fetched offline, so the server gets a fetcher that serves this
test's own certificate at an sns.<region>.amazonaws.com URL; the signature check itself is the
production code path.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, select

from pipeline.feedback.server import create_app
from pipeline.feedback.webhooks import canonical_string
from pipeline.message.tokens import make_token
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Event, Suppression
from pipeline.workspace.settings import Settings
from tests.feedback.conftest import ServerThread, World

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem"


class FakeSns:
    """Signs messages as SNS does, and serves its certificate (and records URLs fetched)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        self.cert_pem = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        self.fetched: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.cert_pem if url == CERT_URL else b"<ConfirmSubscriptionResponse/>"

    def envelope(
        self, kind: str, body: dict[str, Any] | str, *, version: str = "2", **extra: str
    ) -> dict[str, Any]:
        message = {
            "Type": kind,
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": TOPIC,
            "Message": body if isinstance(body, str) else json.dumps(body),
            "Timestamp": "2026-03-02T09:00:05.000Z",
            "SignatureVersion": version,
            "SigningCertURL": CERT_URL,
            **extra,
        }
        algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = self.key.sign(canonical_string(message), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return message


@pytest.fixture
def sns() -> FakeSns:
    return FakeSns()


@pytest.fixture
def webhook(settings: Settings, engine: Engine, sns: FakeSns) -> Iterator[str]:
    settings.bounces.ses_topic_arns = [TOPIC]
    with ServerThread(create_app(settings, engine, sns_fetcher=sns.fetch), settings) as url:
        yield f"{url}/webhooks/ses"


def ses_bounce(
    source: str, email: str, bounce_type: str = "Permanent", status: str = "5.1.1"
) -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": email,
                    "action": "failed",
                    "status": status,
                    "diagnosticCode": "smtp; 550 5.1.1",
                }
            ],
        },
        "mail": {"source": source, "messageId": "0100018e-ses-id", "destination": [email]},
    }


def state(engine: Engine) -> tuple[dict[str | None, str], list[tuple[int | None, str]], list[str]]:
    with session(engine) as db:
        suppressions = {s.email: s.reason for s in db.scalars(select(Suppression))}
        events = [(e.delivery_id, e.kind) for e in db.scalars(select(Event).order_by(Event.id))]
        statuses = list(db.scalars(select(Delivery.status).order_by(Delivery.id)))
    return suppressions, events, statuses


def test_signed_permanent_bounce_suppresses(world: World, webhook: str, sns: FakeSns, engine: Engine) -> None:
    sent = world.send(world.add_contact("gone@example.org"))
    source = f"bounces+{make_token(world.settings.secret, 'b', sent.delivery_id)}@kestrelforge.example"
    response = httpx.post(
        webhook, content=json.dumps(sns.envelope("Notification", ses_bounce(source, "gone@example.org")))
    )
    assert response.status_code == 200, response.text
    assert state(engine) == ({"gone@example.org": "hard_bounce"}, [(sent.delivery_id, "bounce")], ["failed"])
    assert sns.fetched == [CERT_URL]


@pytest.mark.parametrize("headers", ["full", "common"])
def test_complaint_by_message_id_with_signature_version_1(
    world: World, webhook: str, sns: FakeSns, engine: Engine, headers: str
) -> None:
    sent = world.send(world.add_contact("angry@example.net"))
    # SES sends the original headers only when asked to; commonHeaders always.
    if headers == "full":
        original = {"headers": [{"name": "Message-ID", "value": sent.message_id}]}
    else:
        original = {"commonHeaders": {"messageId": sent.message_id, "subject": "Hello"}}
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "angry@example.net"}],
            "complaintFeedbackType": "abuse",
        },
        "mail": {"source": "news@kestrelforge.example", **original},
    }
    response = httpx.post(webhook, content=json.dumps(sns.envelope("Notification", complaint, version="1")))
    assert response.status_code == 200, response.text
    assert state(engine) == ({"angry@example.net": "complaint"}, [(sent.delivery_id, "complaint")], ["sent"])


def test_forged_tampered_or_foreign_notifications_change_nothing(
    world: World, webhook: str, sns: FakeSns, engine: Engine
) -> None:
    sent = world.send(world.add_contact("gone@example.org"))
    source = f"bounces+{make_token(world.settings.secret, 'b', sent.delivery_id)}@kestrelforge.example"
    genuine = sns.envelope("Notification", ses_bounce(source, "gone@example.org"))

    tampered = dict(genuine, Message=json.dumps(ses_bounce(source, "someone-else@example.org")))
    assert httpx.post(webhook, content=json.dumps(tampered)).status_code == 403
    elsewhere = dict(genuine, SigningCertURL="https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem")
    assert httpx.post(webhook, content=json.dumps(elsewhere)).status_code == 400
    plain_http = dict(genuine, SigningCertURL=CERT_URL.replace("https:", "http:"))
    assert httpx.post(webhook, content=json.dumps(plain_http)).status_code == 400
    other_topic = sns.envelope("Notification", ses_bounce(source, "gone@example.org"))
    other_topic["TopicArn"] = "arn:aws:sns:eu-west-1:999999999999:someone-elses"
    assert httpx.post(webhook, content=json.dumps(other_topic)).status_code == 403
    assert httpx.post(webhook, content=b"{not json").status_code == 400
    assert state(engine) == ({}, [], ["sent"])


def test_subscription_confirmation_is_confirmed_once_verified(
    webhook: str, sns: FakeSns, engine: Engine
) -> None:
    subscribe = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=abc"
    message = sns.envelope(
        "SubscriptionConfirmation", "You have chosen to subscribe", SubscribeURL=subscribe, Token="abc"
    )
    response = httpx.post(webhook, content=json.dumps(message))
    assert response.status_code == 200 and sns.fetched == [CERT_URL, subscribe]


def test_endpoint_is_off_without_configured_topics(settings: Settings, engine: Engine, sns: FakeSns) -> None:
    with ServerThread(create_app(settings, engine, sns_fetcher=sns.fetch), settings) as url:
        message = sns.envelope("Notification", ses_bounce("x@example.org", "x@example.org"))
        assert httpx.post(f"{url}/webhooks/ses", content=json.dumps(message)).status_code == 404
    assert sns.fetched == []
