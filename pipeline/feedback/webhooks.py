"""Provider webhooks: Amazon SES bounce and complaint notifications delivered through SNS.

Trust comes from SNS's own signature, checked the way AWS documents it: the signing certificate
must be served over https from ``sns.<region>.amazonaws.com``, and the message's canonical string
(its fields in a fixed order, each as ``Name\\nvalue\\n``) must verify under that certificate's key,
with SHA1 (SignatureVersion 1) or SHA256 (2). A signature only proves the message came from *some*
SNS topic, and anyone can own one, so the TopicArn must also be listed in
``[bounces] ses_topic_arns``; with none listed the endpoint is off (404).

A verified SubscriptionConfirmation is confirmed by fetching its SubscribeURL (same host rule).
Bounce and Complaint notifications go through pipeline.feedback.bounces like any ingested report: the
envelope sender SES reports (``mail.source``, our VERP address) or the original Message-ID header
names the delivery.

A body is at most MAX_BODY_BYTES (SNS messages are at most 256 KB; the tracking server answers 413
before reading more) and its JSON at most MAX_JSON_DEPTH deep (SES nests about five), checked before
it is parsed, so a hostile body costs neither memory nor Python's recursion limit.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.request
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import Engine

from pipeline.feedback.bounces import apply_report
from pipeline.feedback.dsn import ses_report
from pipeline.storage.engines import session
from pipeline.workspace.settings import Settings

# GET an https URL on SNS: the signing certificate, and a SubscribeURL to confirm a subscription.
SnsFetcher = Callable[[str], bytes]

_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
_CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": _CONFIRMATION_FIELDS,
}
FETCH_TIMEOUT_S = 10
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32


class WebhookRejected(Exception):
    """The request is not a genuine notification we accept; carries the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@lru_cache(maxsize=16)
def fetch_from_sns(url: str) -> bytes:
    """GET an SNS URL; cached, since SNS rotates its certificate rarely and confirms a subscription once."""
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
        return response.read()  # type: ignore[no-any-return]


def _sns_url(url: str | None, field: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme != "https" or not _SNS_HOST.fullmatch(parts.hostname or ""):
        raise WebhookRejected(400, f"{field} is not an https URL on sns.<region>.amazonaws.com")
    return str(url)


def _fetch(fetcher: SnsFetcher, url: str) -> bytes:
    try:
        return fetcher(url)
    except OSError as exc:  # SNS retries a notification answered with 5xx
        raise WebhookRejected(503, f"cannot fetch {url}: {exc}") from None


def canonical_string(message: dict[str, Any]) -> bytes:
    """The text SNS signs: the type's fields that are present, in order, as 'Name\\nvalue\\n'."""
    fields = _SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise WebhookRejected(400, f"unknown SNS message type {message.get('Type')!r}")
    return "".join(f"{name}\n{message[name]}\n" for name in fields if name in message).encode()


def verify_sns(message: dict[str, Any], fetcher: SnsFetcher) -> None:
    """WebhookRejected unless MESSAGE carries a valid SNS signature."""
    version = str(message.get("SignatureVersion"))
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        raise WebhookRejected(400, f"unsupported SignatureVersion {version!r}")
    cert_url = _sns_url(message.get("SigningCertURL"), "SigningCertURL")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        key = x509.load_pem_x509_certificate(_fetch(fetcher, cert_url)).public_key()
    except (binascii.Error, ValueError) as exc:
        raise WebhookRejected(400, f"unreadable signature or certificate: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRejected(400, "the signing certificate does not hold an RSA key")
    try:
        key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise WebhookRejected(403, "SNS signature does not verify") from None


def parse_json(body: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """BODY parsed, or WebhookRejected (400) when it is not JSON or nests deeper than LIMIT.

    The C parser itself stops at Python's recursion limit (RecursionError); what it returns is then
    walked without recursion, so the depth check cannot overflow either.
    """
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise WebhookRejected(400, f"not JSON: {exc.msg}") from None
    except RecursionError:
        raise WebhookRejected(400, f"JSON nested deeper than {limit} levels") from None
    level: list[Any] = [value]
    for _depth in range(limit):
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return value
    raise WebhookRejected(400, f"JSON nested deeper than {limit} levels")


def handle_ses(settings: Settings, engine: Engine, body: bytes, *, fetcher: SnsFetcher) -> tuple[int, str]:
    """(HTTP status, text) for one SNS POST; nothing is written unless the message verifies."""
    allowed = settings.bounces.ses_topic_arns
    if not allowed:
        return 404, "not found"
    try:
        message = parse_json(body)
        if not isinstance(message, dict):
            raise WebhookRejected(400, "the body is not a JSON object")
        if message.get("TopicArn") not in allowed:
            raise WebhookRejected(403, "topic not accepted")
        verify_sns(message, fetcher)
        if message["Type"] == "SubscriptionConfirmation":
            _fetch(fetcher, _sns_url(message.get("SubscribeURL"), "SubscribeURL"))
            return 200, "subscription confirmed"
        if message["Type"] != "Notification":
            return 200, "ignored"
        notification = parse_json(str(message["Message"]))
        if not isinstance(notification, dict):
            raise WebhookRejected(400, "the SNS Message is not a JSON object")
        report = ses_report(notification)
    except WebhookRejected as exc:
        return exc.status, exc.reason
    if report is None:
        return 200, "ignored"
    with session(engine) as db:
        outcome = apply_report(db, settings, report, source="ses")
    return 200, f"{outcome.kind}: {outcome.note}"
