"""Reading bounce and complaint messages: what failed, for whom, why, and which message it was about.

Formats understood, in the order they are tried:

- RFC 3464 delivery status notifications (``message/delivery-status``, and RFC 6533's
  ``message/global-delivery-status``) wherever they sit: at the top, nested in a gateway's wrapper, or
  forwarded as an attachment. Only blocks whose Action is ``failed`` or ``delayed`` (a comment after
  it allowed) are failures; a block without an Action is not.
- RFC 5965 ARF feedback reports, anywhere in the message: a complaint. The complaining address is
  Original-Rcpt-To, else the returned message's To (redacted addresses are dropped; attribution then
  rests on VERP and the Message-ID).
- Amazon SES notifications delivered as mail (the SNS JSON in the body), read like the webhook's.
- Complaints that are not ARF (Outlook.com JMRP): a complaint subject with the original attached.
- Auto-replies and vacation notices (RFC 3834 headers or their subjects): kind ``auto-reply``.
- Bounces whose status is only in human text (Postfix, qmail, Exim, Sendmail, Exchange 2003-2019,
  Office 365, Gmail, Yahoo/AOL, Mimecast, MessageLabs, Barracuda, old mailers): each recipient is an
  address on its own line, at the start of a line, after a label ("Failed Recipient:"), or named in a
  "message to ADDRESS could not be delivered" sentence; its diagnostic is the text that follows it.
  Every recipient found is a failure, never one of our own addresses.

What the codes and words mean is pipeline.delivery.status's (one classifier for replies and bounces).
The original message is found from an attached ``message/rfc822`` or ``text/rfc822-headers`` part, or
from a "Message-ID:" line quoted in the text. Which delivery a report belongs to is decided elsewhere
(pipeline.feedback.bounces); this module only reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from html import unescape
from typing import Any

from pipeline.delivery.status import ENHANCED, Severity, by_phrase, classify, codes, subject_phrases

_MESSAGE_ID = re.compile(r"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
# (a domain without a dot is allowed: local bounces name user@localhost)
_ADDRESS_TEXT = (
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*"
)
_ADDRESS = re.compile(_ADDRESS_TEXT)
# Where a recipient's paragraph starts in a human-text bounce (group 1 the address, group 2 the rest).
_RECIPIENT_LINES = (
    # alone on its line, maybe <bracketed> or 'quoted' (Exim, Exchange, qmail, MessageLabs), Exchange
    # 2003's "'a@b' on DATE", or followed by ": text", "... text" or a wide gap (Postfix, Sendmail, X1)
    re.compile(
        rf"^\s*[<'\"]?({_ADDRESS_TEXT})[>'\"]?(?:\s+on\s+\d.*|:?\s*$|(?::|\.\.\.|\s{{2,}})\s*(\S.*))$"
    ),
    # after a label (Mimecast, Barracuda's DSN-like text)
    re.compile(
        rf"^\s*(?:failed recipients?|final-recipient|original-recipient|your message to|recipient)\s*:"
        rf"\s*(?:rfc822\s*;\s*)?<?({_ADDRESS_TEXT})>?\s*(.*)$",
        re.IGNORECASE,
    ),
)
# A recipient named in a sentence (Gmail, Office 365, old list servers).
_RECIPIENT_SENTENCE = re.compile(
    rf"(?:wasn't delivered to|message to|delivery to|not delivered to)\s+<?({_ADDRESS_TEXT})>?"
    r"\s+(?:could(?:n't| not) be delivered|because|failed|was blocked|has been blocked|was not delivered)",
    re.IGNORECASE,
)
# Where the returned copy of the original starts in a text bounce: nothing below it is the report.
_COPY_MARKERS = re.compile(
    r"^\s*(?:-+\s*Below this line is a copy of the message|-+\s*This is a copy of the message|"
    r"-+\s*Original message follows|-+\s*The header of the original message|Original message headers:|"
    r"-+\s*Original Message\s*-+)",
    re.IGNORECASE | re.MULTILINE,
)
# Which mailer wrote a text bounce, by the words it always uses (for the report's format, first match).
_TEXT_FAMILIES = (
    ("qmail", "this is the qmail-send program"),
    ("exim", "created automatically by mail delivery software"),
    ("postfix", "this is the mail system at host"),
    ("sendmail", "transcript of session follows"),
    ("exchange", "diagnostic information for administrators"),
    ("exchange", "following recipient(s) cannot be reached"),
    ("gmail", "support.google.com/mail"),
    ("yahoo", "sorry, we were unable to deliver your message"),
    ("messagelabs", "messagelabs"),
    ("mimecast", "mimecast"),
    ("barracuda", "barracuda"),
    ("postfix", "(in reply to"),
)
_HTML_BREAK = re.compile(r"<(?:br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^>]*>")
_BLOCK_LINES = 12  # a recipient's diagnostic is at most this many lines after its address
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery (has )?fail|returned mail|"
    r"failure notice|mail delivery (failed|subsystem|failure)|could not be delivered|non[- ]?delivery|"
    r"delivery failure|delivery delayed|delayed mail|warning: (message|could not send)|"
    r"message you sent blocked",
    re.IGNORECASE,
)
_DELAY_SUBJECT = re.compile(r"delayed|warning: could not send|delivery delayed", re.IGNORECASE)
_DAEMON_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery (subsystem|system)", re.IGNORECASE)
_REDACTED = re.compile(r"redacted|^x+@|^\*+@", re.IGNORECASE)
# Nesting deeper than this is not a report anyone sends; the reader stops looking there.
MAX_DEPTH = 20
# More multipart or message/* parts than this and the message is not read at all (parse_message).
MAX_PARTS = 200
_NESTED_PART = re.compile(rb"^content-type:[ \t]*(?:multipart|message)/", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Failure:
    recipient: str | None
    severity: Severity
    status: str | None  # enhanced status, e.g. "5.1.1"
    smtp_code: int | None
    diagnostic: str


@dataclass(frozen=True)
class Report:
    kind: str  # "bounce", "complaint" or "auto-reply"
    format: str  # rfc3464, arf, ses, ses-mail, jmrp, auto-reply, or FAMILY-text (postfix-text, exim-text...)
    failures: tuple[Failure, ...]  # a bounce's failed (or delayed) recipients; none for a complaint
    original_message_id: str | None
    # Addresses the report was sent to or names as the original envelope sender (VERP candidates).
    envelope_addresses: tuple[str, ...]
    complainant: str | None = None  # the complaining address, when the report names it
    feedback_type: str | None = None  # ARF Feedback-Type (abuse, fraud, ...)

    def worst(self) -> Failure | None:
        """The failure that decides what the report does: hard, then sender, soft, delayed."""
        return min(self.failures, key=lambda f: _WORST_FIRST.index(f.severity), default=None)


_WORST_FIRST = (Severity.hard, Severity.sender, Severity.soft, Severity.delayed)


class Unreadable(ValueError):
    """A message the reader will not or cannot parse; its text says why, for the operator."""


def parse_message(raw: bytes, *, max_bytes: int | None = None) -> EmailMessage:
    """RAW parsed, refused (Unreadable) when over MAX_BYTES or nested deeper than any report is.

    Python's parser recurses once per nested multipart and fails at about a thousand; counting the
    multipart and message/* parts first bounds the depth without parsing.
    """
    if max_bytes is not None and len(raw) > max_bytes:
        raise Unreadable(f"{len(raw)} bytes, over the limit of {max_bytes}")
    nested = sum(1 for _ in zip(range(MAX_PARTS + 1), _NESTED_PART.finditer(raw), strict=False))
    if nested > MAX_PARTS:
        raise Unreadable(f"more than {MAX_PARTS} multipart and message/* parts")
    try:
        return message_from_bytes(raw, policy=policy.default)
    except RecursionError:
        raise Unreadable("nested too deep to parse") from None


def header_addresses(message: Message) -> list[str]:
    """Every address the message says it was delivered to, most specific header first."""
    found: list[str] = []
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Return-Path"):
        for value in message.get_all(name, []):
            found += _ADDRESS.findall(str(value))
    return found


# -- parts and text --------------------------------------------------------------------------------


def _parts(message: Message) -> list[Message]:
    """The parts inside a multipart, or the message inside a message/* part."""
    payload = message.get_payload()
    return [part for part in payload if isinstance(part, Message)] if isinstance(payload, list) else []


def _walk(message: Message, depth: int = 0) -> Iterator[tuple[Message, Message | None]]:
    """(part, its parent) depth-first, through message/rfc822 attachments too, at most MAX_DEPTH down."""
    yield message, None
    if depth >= MAX_DEPTH:
        return
    for child in _parts(message):
        for part, parent in _walk(child, depth + 1):
            yield part, parent if parent is not None else message


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know: the codes and addresses are ASCII anyway
            text = payload.decode("utf-8", errors="replace")
    else:
        text = str(part.get_payload())
    return _html_lines(text) if part.get_content_type() == "text/html" else text


def _html_lines(html: str) -> str:
    """An HTML notice (Exchange, Office 365) as lines of text: block ends and <br> become line ends."""
    text = _HTML_BREAK.sub("\n", html)
    return unescape(_HTML_TAG.sub("", text))


def _readable_text(message: Message, depth: int = 0) -> str:
    """The text a person would read, without the returned original (which quotes our own links)."""
    if not message.is_multipart():
        return _text_of(message) if message.get_content_maintype() == "text" else ""
    texts: list[str] = []
    for part in _parts(message) if depth < MAX_DEPTH else []:
        kind = part.get_content_type()
        if kind == "text/plain" or (kind == "text/html" and not texts):
            texts.append(_text_of(part))
        elif part.is_multipart() and kind != "message/rfc822":
            texts.append(_readable_text(part, depth + 1))
    return "\n".join(texts)


def _report_text(text: str) -> str:
    """TEXT up to the returned copy of the original."""
    marker = _COPY_MARKERS.search(text)
    return text[: marker.start()] if marker else text


def _addresses(values: Iterable[object]) -> list[str]:
    """Every address in VALUES, lower-cased: for comparing (not for VERP, whose token has case)."""
    return [a.lower() for a in _verbatim(values)]


def _verbatim(values: Iterable[object]) -> list[str]:
    return [a for value in values for a in _ADDRESS.findall(str(value))]


def _original_headers(container: Message) -> Message | None:
    """The returned message's headers, from a message/rfc822 or text/rfc822-headers part of CONTAINER."""
    for part in _parts(container):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            inner = _parts(part)
            if inner:
                return inner[0]
        if kind in ("text/rfc822-headers", "message/global-headers"):
            return HeaderParser().parsestr(_text_of(part))
    return None


def _original_message_id(original: Message | None, text: str) -> str | None:
    if original is not None and original.get("Message-ID"):
        return str(original["Message-ID"]).strip()
    quoted = _MESSAGE_ID.search(text)
    return quoted.group(1) if quoted else None


def _envelope(message: Message, original: Message | None, extra: Iterable[str] = ()) -> tuple[str, ...]:
    names = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Return-Path")
    found = _verbatim(value for name in names for value in message.get_all(name, []))
    if original is not None:
        found += _verbatim(original.get_all("Return-Path", []))
    return tuple(dict.fromkeys([*found, *extra]))


def _own(message: Message, original: Message | None, own: Iterable[str]) -> set[str]:
    """Our addresses as this report shows them: never a failed recipient."""
    found = {a.lower() for a in own}
    found.update(_addresses(message.get_all("To", []) + message.get_all("Delivered-To", [])))
    found.update(_addresses(message.get_all("From", [])))
    if original is not None:
        for name in ("From", "Sender", "Reply-To", "Return-Path"):
            found.update(_addresses(original.get_all(name, [])))
    return found


# -- RFC 3464 --------------------------------------------------------------------------------------


def _typed_value(field: object) -> str | None:
    """'rfc822; user@example.org' -> 'user@example.org' (RFC 3464 address-type; address)."""
    if not field:
        return None
    value = str(field).partition(";")[2] if ";" in str(field) else str(field)
    return " ".join(value.split()).strip("<>") or None


def _status_blocks(status_part: Message) -> list[Message]:
    """The per-recipient blocks; message/global-delivery-status comes as text, split on blank lines."""
    inner = _parts(status_part)
    if status_part.get_content_type() == "message/delivery-status" and inner:
        return inner[1:]
    # Other message/* types parse as one message: the per-message fields, then the rest as its body.
    rest = str(inner[0].get_payload()) if inner else _text_of(status_part)
    paragraphs = re.split(r"\r?\n\s*\r?\n", rest.strip())
    skip = 0 if inner else 1
    return [HeaderParser().parsestr(p.strip() + "\n") for p in paragraphs[skip:] if p.strip()]


def _rfc3464(message: Message, container: Message, status_part: Message) -> Report:
    original = _original_headers(container)
    text = _readable_text(container)
    human: dict[str, str] | None = None  # the notice's own words per recipient, read when needed
    failures = []
    for block in _status_blocks(status_part):
        action = str(block.get("Action", "")).strip().lower().split(" ")[0].split("(")[0]
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded, or no Action at all: not a failure
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        status_field = ENHANCED.search(str(block.get("Status", "")))
        status, smtp_code = codes(_typed_value(diagnostic) or "")
        if status_field is not None and not (
            status and status_field.group(0).endswith(".0.0") and status[0] == status_field.group(1)
        ):
            status = status_field.group(0)  # the Status field, unless a generic one the diagnostic refines
        recipient = _typed_value(block.get("Final-Recipient") or block.get("Original-Recipient"))
        if (status is None or status.endswith(".0.0")) and by_phrase(diagnostic) is None and recipient:
            # Exim's "Status: 5.0.0" with no Diagnostic-Code: the human part says "Unrouteable address".
            if human is None:
                human = _recipient_blocks(_report_text(text), set())
            diagnostic = " ".join(p for p in (diagnostic, human.get(recipient.lower(), "")) if p)
        failures.append(
            Failure(
                recipient.lower() if recipient else None,
                classify(status, smtp_code, diagnostic, action=action),
                status,
                smtp_code,
                diagnostic,
            )
        )
    message_id = _original_message_id(original, text)
    return Report("bounce", "rfc3464", tuple(failures), message_id, _envelope(message, original))


# -- complaints ------------------------------------------------------------------------------------


def _unredacted(address: str | None) -> str | None:
    return None if address is None or _REDACTED.search(address) else address.lower()


def _first_address(values: Iterable[object]) -> str | None:
    found = _addresses(values)
    return found[0] if found else None


def _arf(message: Message, container: Message, feedback_part: Message) -> Report:
    inner = _parts(feedback_part)
    fields = inner[0] if inner else HeaderParser().parsestr(str(feedback_part.get_payload()))
    original = _original_headers(container)
    complainant = _first_address(fields.get_all("Original-Rcpt-To", []))
    if complainant is None and original is not None:
        complainant = _first_address(original.get_all("To", []))
    original_from = _verbatim(fields.get_all("Original-Mail-From", []))
    text = _readable_text(container)
    return Report(
        "complaint",
        "arf",
        (),
        _original_message_id(original, text),
        _envelope(message, original, original_from),
        complainant=_unredacted(complainant),
        feedback_type=str(fields.get("Feedback-Type", "abuse")).strip().lower(),
    )


def _jmrp(message: Message) -> Report | None:
    """Outlook.com's Junk Mail Reporting Program and its kind: the original attached, a complaint subject."""
    subject = str(message.get("Subject", "")).lower()
    if not any(phrase in subject for phrase in subject_phrases("complaint")):
        return None
    original = _original_headers(message)
    if original is None:
        return None
    complainant = _first_address(
        original.get_all("X-HmXmrOriginalRecipient", [])
        + message.get_all("X-HmXmrOriginalRecipient", [])
        + original.get_all("To", [])
    )
    text = _readable_text(message)
    return Report(
        "complaint",
        "jmrp",
        (),
        _original_message_id(original, text),
        _envelope(message, original),
        complainant=_unredacted(complainant),
        feedback_type="abuse",
    )


# -- Amazon SES as mail ----------------------------------------------------------------------------


def _ses_header(mail: dict[str, Any], name: str, common: str) -> str | None:
    """Header NAME of the original message: from the full headers when SES sent them, else COMMON
    (its camel-case key in commonHeaders, e.g. messageId)."""
    for header in mail.get("headers") or []:
        if str(header.get("name", "")).lower() == name.lower():
            return str(header.get("value"))
    value = (mail.get("commonHeaders") or {}).get(common)
    return str(value) if value else None


def ses_report(notification: dict[str, Any], *, format: str = "ses") -> Report | None:
    """The SES notification (or configuration-set event) as a Report; None for other types (Delivery...)."""
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") or {}
    addresses = tuple(str(a) for a in [mail.get("source"), mail.get("sourceArn")] if a)
    message_id = _ses_header(mail, "Message-ID", "messageId")
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        failures = []
        for recipient in bounce.get("bouncedRecipients") or []:
            diagnostic = str(recipient.get("diagnosticCode") or bounce.get("bounceSubType") or "")
            status = recipient.get("status")
            severity = classify(status, None, diagnostic)
            contradicted = str(status or "").startswith("4") or by_phrase(diagnostic) is not None
            if permanent and severity is Severity.soft and not contradicted:
                severity = Severity.hard  # SES says Permanent and nothing contradicts it
            address = recipient.get("emailAddress")
            failures.append(Failure(address.lower() if address else None, severity, status, None, diagnostic))
        return Report("bounce", format, tuple(failures), message_id, addresses)
    if kind == "Complaint":
        complaint = notification.get("complaint") or {}
        complainants = complaint.get("complainedRecipients") or [{}]
        return Report(
            "complaint",
            format,
            (),
            message_id,
            addresses,
            complainant=_unredacted(complainants[0].get("emailAddress")),
            feedback_type=complaint.get("complaintFeedbackType") or "abuse",
        )
    return None


def _ses_mail(message: Message) -> Report | None:
    text = _readable_text(message)
    start = text.find("{")
    if start < 0 or '"notificationType"' not in text:
        return None
    try:
        notification, _ = json.JSONDecoder().raw_decode(text[start:])
    except (json.JSONDecodeError, RecursionError):
        return None
    return ses_report(notification, format="ses-mail") if isinstance(notification, dict) else None


# -- auto-replies ----------------------------------------------------------------------------------


def looks_like_bounce(message: Message) -> bool:
    """A mailer-daemon sender, an empty Return-Path or a bounce-like subject."""
    return bool(
        _DAEMON_SENDER.search(str(message.get("From", "")))
        or str(message.get("Return-Path", "")).strip() == "<>"
        or _BOUNCE_SUBJECT.search(str(message.get("Subject", "")))
    )


def is_auto_reply(message: Message) -> bool:
    """RFC 3834's Auto-Submitted: auto-replied, the X-Autoreply family, or an out-of-office subject;
    bounces carry auto-* headers too, so a bounce-like subject is never an auto-reply."""
    subject = str(message.get("Subject", "")).lower()
    if _BOUNCE_SUBJECT.search(subject):
        return False
    if any(phrase in subject for phrase in subject_phrases("auto_reply")):
        return True
    submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    flagged = any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"))
    return (submitted.startswith("auto-") or flagged) and not _DAEMON_SENDER.search(str(message.get("From")))


# -- human text ------------------------------------------------------------------------------------


def _recipient_blocks(text: str, own: set[str]) -> dict[str, str]:
    """recipient -> the diagnostic text that follows it."""
    lines = text.splitlines()
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    taken = 0
    for line in lines:
        found = next((m for pattern in _RECIPIENT_LINES if (m := pattern.match(line))), None)
        if found is not None and found.group(1).lower() not in own:
            current = found.group(1).lower()
            blocks.setdefault(current, []).append(found.group(2) or "")
            taken = 0
        elif current is not None and taken < _BLOCK_LINES:
            if not line.strip() and any(part.strip() for part in blocks[current]):
                taken = _BLOCK_LINES  # a blank line ends a paragraph that has begun
                continue
            blocks[current].append(line)
            taken += 1
    if not blocks:
        for match in _RECIPIENT_SENTENCE.finditer(text):
            address = match.group(1).lower()
            if address not in own:
                blocks.setdefault(address, []).append(text[match.start() :])
    return {address: " ".join(" ".join(parts).split()) for address, parts in blocks.items()}


def _text_report(message: Message, own_addresses: Iterable[str]) -> Report | None:
    original = _original_headers(message)
    full = _readable_text(message)
    text = _report_text(full)
    own = _own(message, original, own_addresses)
    delayed = bool(_DELAY_SUBJECT.search(str(message.get("Subject", "")))) or by_phrase(text) is (
        Severity.delayed
    )
    action = "delayed" if delayed else "failed"
    blocks = _recipient_blocks(text, own)
    if not blocks:
        listed = [a for a in _addresses(message.get_all("X-Failed-Recipients", [])) if a not in own]
        blocks = dict.fromkeys(listed, " ".join(text.split()))
    if not blocks:
        status, code = codes(text)
        if status is None and code is None and by_phrase(text) is None:
            return None
        blocks = {"": " ".join(text.split())}
    failures = []
    for address, diagnostic in blocks.items():
        status, code = codes(diagnostic)
        if status is None and code is None and by_phrase(diagnostic) is None:
            diagnostic = " ".join(text.split())  # the recipient's lines say nothing: the notice does
            status, code = codes(diagnostic)
        severity = classify(status, code, diagnostic, action=action)
        failures.append(Failure(address or None, severity, status, code, diagnostic))
    lowered = (str(message.get("From", "")) + text).lower()
    family = next((name for name, words in _TEXT_FAMILIES if words in lowered), "plain")
    return Report(
        "bounce",
        f"{family}-text",
        tuple(failures),
        _original_message_id(original, full),
        _envelope(message, original),
    )


# -- entry point -----------------------------------------------------------------------------------


def read_report(message: Message, *, own: Iterable[str] = ()) -> Report | None:
    """The bounce, complaint or auto-reply MESSAGE carries, or None when it is none of these.

    OWN: our sender addresses, never taken for a failed recipient in a text bounce.
    """
    for part, parent in _walk(message):
        kind = part.get_content_type()
        container = parent if parent is not None else message
        if kind == "message/feedback-report":
            return _arf(message, container, part)
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            return _rfc3464(message, container, part)
    for read in (_ses_mail, _jmrp):
        found = read(message)
        if found is not None:
            return found
    if is_auto_reply(message):
        return Report("auto-reply", "auto-reply", (), None, ())
    if not looks_like_bounce(message):
        return None
    return _text_report(message, own)
