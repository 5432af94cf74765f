"""Reading bounce and complaint messages: what failed, for whom, why, and which message it was about.

Formats understood, in the order they are tried:

- RFC 3464 delivery status notifications (``multipart/report; report-type=delivery-status``, and
  RFC 6533's ``message/global-delivery-status``): per-recipient Action, Status, Diagnostic-Code.
- RFC 5965 ARF feedback reports (``report-type=feedback-report``): a complaint.
- Plain-text bounces that carry no machine-readable part: the Postfix/qmail style
  (``<user@host>: host mx[ip] said: 550 5.1.1 ...``), the Exchange style ("Delivery has failed to
  these recipients", ``Remote Server returned '550 5.1.1 ...'``), and any other mailer-daemon text
  with an SMTP reply code in it.

The original message is found from an attached ``message/rfc822`` or ``text/rfc822-headers`` part, or
from a "Message-ID:" line quoted in the text. Which delivery a report belongs to is decided
elsewhere (pipeline.feedback.bounces); this module only reads.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser

# An RFC 3463 enhanced status code, and an SMTP reply code (possibly followed by one).
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"(?<![\d.])([245]\d\d)(?:[ -]|$)")
_MESSAGE_ID = re.compile(r"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
# Postfix: one paragraph per recipient starting "<address>: ".
_POSTFIX_RECIPIENT = re.compile(
    r"^<([^>\s]+@[^>\s]+)>:[ \t]*(.*?)(?=^\s*$|^<[^>\s]+>:|\Z)", re.MULTILINE | re.DOTALL
)
_EXCHANGE_REPLY = re.compile(
    r"Remote Server returned '([^']*)'|#(\d{3} \d\.\d{1,3}\.\d{1,3}[^#\n]*)", re.IGNORECASE
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery (has )?fail|returned mail|"
    r"failure notice|mail delivery (failed|subsystem)|could not be delivered|non[- ]?delivery",
    re.IGNORECASE,
)
_DAEMON_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery (subsystem|system)", re.IGNORECASE)
# Words that settle an SMTP reply that came without an enhanced code.
_HARD_WORDS = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|doesn't exist|"
    r"address rejected|recipient not found|recipnotfound|invalid (recipient|mailbox)|mailbox unavailable",
    re.IGNORECASE,
)
_SENDER_WORDS = re.compile(
    r"spam|blocked|blacklist|blocklist|policy|reputation|dmarc|spf|dkim", re.IGNORECASE
)


class Severity(enum.StrEnum):
    hard = "hard"  # the address does not exist (5.1.x): suppress
    soft = "soft"  # temporary or unclear (4.x.x, other 5.x.x): count, suppress after N in a row
    sender = "sender"  # refused because of the sender, not the recipient (5.7.x): never suppress
    delayed = "delayed"  # a warning that delivery is still being tried: no failure yet


@dataclass(frozen=True)
class Failure:
    recipient: str | None
    severity: Severity
    status: str | None  # enhanced status, e.g. "5.1.1"
    smtp_code: int | None
    diagnostic: str


@dataclass(frozen=True)
class Report:
    kind: str  # "bounce" or "complaint"
    format: str  # rfc3464, arf, postfix-text, exchange-text, plain-text
    failures: tuple[Failure, ...]  # a bounce's failed (or delayed) recipients; none for a complaint
    original_message_id: str | None
    # Addresses the report was sent to or names as the original envelope sender (VERP candidates).
    envelope_addresses: tuple[str, ...]
    complainant: str | None = None  # ARF Original-Rcpt-To
    feedback_type: str | None = None  # ARF Feedback-Type (abuse, fraud, ...)


def parse_message(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def classify(status: str | None, smtp_code: int | None, diagnostic: str, action: str = "failed") -> Severity:
    """RFC 3463 classes first (5.1.x hard, 5.7.x sender, 4.x.x soft), then the reply code and wording."""
    if action.lower() == "delayed":
        return Severity.delayed
    if status:
        klass, subject, _ = status.split(".")
        if klass == "4":
            return Severity.soft
        if klass == "5" and subject == "1":
            return Severity.hard
        if klass == "5" and subject == "7":
            return Severity.sender
    if _SENDER_WORDS.search(diagnostic) and not _HARD_WORDS.search(diagnostic):
        return Severity.sender
    if (smtp_code is None or smtp_code >= 500) and _HARD_WORDS.search(diagnostic):
        return Severity.hard
    return Severity.soft


def _codes(text: str) -> tuple[str | None, int | None]:
    enhanced = _ENHANCED.search(text)
    reply = _REPLY.search(text)
    return (enhanced.group(0) if enhanced else None), (int(reply.group(1)) if reply else None)


def _typed_value(field: str | None) -> str | None:
    """'rfc822; user@example.org' -> 'user@example.org' (RFC 3464 address-type; address)."""
    if not field:
        return None
    value = str(field).partition(";")[2] if ";" in str(field) else str(field)
    return " ".join(value.split()) or None


def header_addresses(message: Message) -> list[str]:
    """Every address the message says it was delivered to, most specific header first."""
    found: list[str] = []
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Return-Path"):
        for value in message.get_all(name, []):
            found += _ADDRESS.findall(str(value))
    return found


def _original_headers(message: Message) -> Message | None:
    """The returned message's headers, from a message/rfc822 or text/rfc822-headers part."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]  # type: ignore[no-any-return]
        if kind in ("text/rfc822-headers", "message/global-headers"):
            return HeaderParser().parsestr(_text_of(part))
    return None


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return str(part.get_payload())


def _readable_text(message: Message) -> str:
    """The text a person would read, without the returned original (which quotes our own links)."""
    if not message.is_multipart():
        return _text_of(message)
    texts = []
    for part in message.get_payload():
        kind = part.get_content_type()
        if kind == "text/plain":
            texts.append(_text_of(part))
        elif part.is_multipart() and kind != "message/rfc822":
            texts.append(_readable_text(part))
    return "\n".join(texts)


def _original_message_id(message: Message, text: str) -> str | None:
    original = _original_headers(message)
    if original is not None and original.get("Message-ID"):
        return str(original["Message-ID"]).strip()
    quoted = _MESSAGE_ID.search(text)
    return quoted.group(1) if quoted else None


def _envelope(message: Message, extra: list[str]) -> tuple[str, ...]:
    addresses = header_addresses(message) + extra
    original = _original_headers(message)
    if original is not None:
        addresses += _ADDRESS.findall(str(original.get("Return-Path", "")))
    return tuple(dict.fromkeys(addresses))


def _report_part(message: Message, *kinds: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in kinds:
            return part
    return None


def _rfc3464(message: Message, status_part: Message) -> Report:
    blocks = status_part.get_payload()
    failures = []
    for block in blocks[1:] if isinstance(blocks, list) else []:
        action = str(block.get("Action", "failed")).strip().lower()
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: not a failure
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        status = _ENHANCED.search(str(block.get("Status", "")))
        _, smtp_code = _codes(_typed_value(diagnostic) or "")
        code = status.group(0) if status else None
        failures.append(
            Failure(
                recipient=_typed_value(block.get("Final-Recipient"))
                or _typed_value(block.get("Original-Recipient")),
                severity=classify(code, smtp_code, diagnostic, action),
                status=code,
                smtp_code=smtp_code,
                diagnostic=diagnostic,
            )
        )
    text = _readable_text(message)
    return Report(
        "bounce", "rfc3464", tuple(failures), _original_message_id(message, text), _envelope(message, [])
    )


def _arf(message: Message, feedback_part: Message) -> Report:
    payload = feedback_part.get_payload()
    fields: Message = (
        payload[0] if isinstance(payload, list) and payload else HeaderParser().parsestr(str(payload))
    )
    complainer = (
        _typed_value(fields.get("Original-Rcpt-To"))
        or (_ADDRESS.findall(str(fields.get("Original-Rcpt-To", ""))) or [None])[0]
    )
    original_from = _ADDRESS.findall(str(fields.get("Original-Mail-From", "")))
    text = _readable_text(message)
    return Report(
        "complaint",
        "arf",
        (),
        _original_message_id(message, text),
        _envelope(message, original_from),
        complainant=complainer,
        feedback_type=str(fields.get("Feedback-Type", "abuse")).strip().lower(),
    )


def _text_failures(text: str) -> tuple[str, list[Failure]] | None:
    """Failures read from a plain-text bounce, with the style recognised; None when there is no reply code."""
    postfix = list(_POSTFIX_RECIPIENT.finditer(text))
    if postfix:
        failures = []
        for match in postfix:
            diagnostic = " ".join(match.group(2).split())
            status, code = _codes(diagnostic)
            failures.append(
                Failure(match.group(1), classify(status, code, diagnostic), status, code, diagnostic)
            )
        return "postfix-text", failures
    exchange = _EXCHANGE_REPLY.search(text)
    if exchange:
        diagnostic = " ".join((exchange.group(1) or exchange.group(2)).split())
        status, code = _codes(diagnostic)
        head = text[: exchange.start()]
        recipients = _ADDRESS.findall(head.split("Delivery has failed to these recipients or groups:")[-1])
        recipient = recipients[0] if recipients else None
        return "exchange-text", [
            Failure(recipient, classify(status, code, diagnostic), status, code, diagnostic)
        ]
    status, code = _codes(text)
    if status is None and code is None:
        return None
    line = next((ln for ln in text.splitlines() if (status or str(code)) in ln), "")
    diagnostic = " ".join(line.split())
    recipients = _ADDRESS.findall(line)
    return "plain-text", [
        Failure(
            recipients[0] if recipients else None,
            classify(status, code, diagnostic),
            status,
            code,
            diagnostic,
        )
    ]


def looks_like_bounce(message: Message) -> bool:
    """A mailer-daemon sender, an empty Return-Path or a bounce-like subject; auto-replies have none."""
    return bool(
        _DAEMON_SENDER.search(str(message.get("From", "")))
        or str(message.get("Return-Path", "")).strip() == "<>"
        or _BOUNCE_SUBJECT.search(str(message.get("Subject", "")))
    )


def read_report(message: Message) -> Report | None:
    """The bounce or complaint MESSAGE carries, or None when it is neither (an auto-reply, a person)."""
    if message.get_content_type() == "multipart/report":
        report_type = str(message.get_param("report-type", "")).lower()
        if report_type == "feedback-report":
            part = _report_part(message, "message/feedback-report")
            if part is not None:
                return _arf(message, part)
        status_part = _report_part(message, "message/delivery-status", "message/global-delivery-status")
        if status_part is not None:
            return _rfc3464(message, status_part)
    if not looks_like_bounce(message):
        return None
    text = _readable_text(message)
    found = _text_failures(text)
    if found is None:
        return None
    style, failures = found
    return Report(
        "bounce", style, tuple(failures), _original_message_id(message, text), _envelope(message, [])
    )
