"""MIME assembly: a personalised Rendered becomes the exact bytes that go on the wire.

Built as bytes by hand because the standard library's generator costs ~2 ms a message (MEASURED.md);
everything that is the same for every recipient of a run is encoded once in MessageBuilder.__init__.
The result parses with ``email`` (tests hold it to that) and follows:

- RFC 5322 headers, folded at 78 characters; RFC 2047 base64 encoded-words for non-ASCII text;
- RFC 2046 multipart/alternative, text/plain first and text/html last (the last is preferred);
- RFC 2369 / 8058 List-Unsubscribe with one-click POST, RFC 2919 List-Id, Gmail's Feedback-ID;
- every header line under 78 characters as built (RFC 5322 2.1.1), so a parse and re-serialise
  with ``email.policy.default`` leaves the bytes DKIM signed alone. That is why the mailto: token
  rides in the local part (``unsubscribe+TOKEN@domain``) rather than in a long ``?subject=``;
- ``Date`` with a numeric zone, ``+0000`` (RFC 5322 4.3 makes ``GMT`` obsolete).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

from pipeline.assembly.personalize import Links, Rendered
from pipeline.errors import HeaderInjectionError
from pipeline.message.tokens import make_token
from pipeline.workspace.settings import Settings

if TYPE_CHECKING:
    from pipeline.message.dkim import Signer

TEST_PREFIX = "[TEST] "
_LINE = 78
# CR and LF would start a new header; the other C0 controls and DEL have no business there either.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# What a bare address may not contain without breaking the header around it (no quoted local parts).
_ADDRESS = re.compile(r"[^\s<>(),;:\"\\\[\]@]+@[^\s<>(),;:\"\\\[\]@]+")
# Words may be separated by one space; runs of spaces stay inside a word so folding never
# produces a whitespace-only line and unfolding gives back the exact text.
_WORD_GAP = re.compile(r"(?<=\S) (?=\S)")
_PLAIN_PHRASE = re.compile(r"[ -~]*")
_LABEL_UNSAFE = re.compile(r"[^a-z0-9_-]+")
_ENCODED_WORD_BYTES = 45  # 60 base64 chars: "=?utf-8?b?" + 60 + "?=" = 72 <= 75 (RFC 2047)
_KNOWN_QP_LINES = 4096  # a few hundred messages' worth of per-recipient lines


@dataclass(frozen=True)
class Outgoing:
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str


def message_id(run_id: int, contact_key: int | str, domain: str, *, salt: str = "") -> str:
    """The same run and contact always give the same Message-ID, in any process, so a message
    resent after a crash is recognisably the same message. The contact is hashed, never shown.

    SALT is the run's own random value (Run.meta["message_id_salt"]): bounces are tied to
    deliveries by Message-ID, so outsiders must not be able to compute one and forge a bounce.
    """
    _check("Message-ID domain", domain)
    digest = hashlib.sha256(f"{salt}\x00{run_id}\x00{contact_key}".encode()).hexdigest()[:24]
    return f"<{run_id}.{digest}@{domain}>"


def _check(field: str, value: str) -> str:
    if _CONTROL.search(value):
        raise HeaderInjectionError(f"{field} contains a line break or control character: {value[:80]!r}")
    return value


def _address(field: str, value: str) -> str:
    _check(field, value)
    if not _ADDRESS.fullmatch(value):
        raise HeaderInjectionError(f"{field} is not a plain email address: {value[:80]!r}")
    return value


def _encoded_words(text: str, first_bytes: int) -> list[str]:
    """RFC 2047 'b' words; each holds whole UTF-8 characters, as the RFC requires."""
    data = text.encode("utf-8")
    words: list[str] = []
    start, budget = 0, first_bytes
    while start < len(data):
        end = min(start + budget, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a multi-byte character
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start, budget = end, _ENCODED_WORD_BYTES
    return words


def _first_word_bytes(name: str) -> int:
    """How many bytes fit in the encoded-word on the header's first line (76 with 'Name: ')."""
    return (76 - len(name) - 2 - 12) // 4 * 3


def _text_words(name: str, text: str) -> list[str]:
    """Unstructured text (RFC 5322 3.2.5) as foldable words: as-is when it is short-worded
    printable ASCII that no reader could mistake for an encoded-word, encoded otherwise."""
    if _PLAIN_PHRASE.fullmatch(text) and "=?" not in text:
        words = _WORD_GAP.split(text)
        if all(len(word) <= _LINE - 2 for word in words):
            return words
    return _encoded_words(text, _first_word_bytes(name))


def _mailbox_words(name: str, display: str | None, address: str) -> list[str]:
    if not display:
        return [address]
    if _PLAIN_PHRASE.fullmatch(display) and "=?" not in display:
        quoted = display.replace("\\", "\\\\").replace('"', '\\"')
        return [f'"{quoted}"', f"<{address}>"]
    return [*_encoded_words(display, _first_word_bytes(name)), f"<{address}>"]


def fold_header(name: str, words: list[str]) -> str:
    """NAME: words joined by spaces, folded (CRLF SP) before a word that would pass 78 columns.

    The first word goes on a line of its own too when that makes it fit (RFC 5322 allows folding
    white space right after the colon): a line over 78 is refolded by anything that re-serialises
    the message, Python's email package included, and that breaks the DKIM signature.
    """
    parts = [name, ":"]
    column = len(name) + 1
    for word in words:
        fits_alone = 1 + len(word) <= _LINE
        if column + 1 + len(word) > _LINE and (column > len(name) + 1 or fits_alone):
            parts.append("\r\n ")
            column = 1
        else:
            parts.append(" ")
            column += 1
        parts.append(word)
        column += len(word)
    parts.append("\r\n")
    return "".join(parts)


def _label(value: str) -> str:
    return _LABEL_UNSAFE.sub("-", value.lower()).strip("-") or "none"


def _quoted_printable(text: str, known: dict[str, bytes]) -> bytes:
    """QP with CRLF line ends; '=' is always escaped, so the '=_' boundary can never occur.

    Each line is encoded on its own (a hard line break resets QP's column, so this gives what
    encoding the whole text gives, except that whitespace ending a line at column 73 or later
    goes after a soft break, where b2a_qp over the whole text can make that line 77 characters
    long, one more than RFC 2045 allows) and looked up in KNOWN first: most lines of a run's
    HTML are the same for every recipient, and b2a_qp over all ~20 KB of it cost a fifth of the
    sending loop's time. QP rather than base64, which is faster to encode in one piece: base64
    makes the part a third bigger, hides markup that is plain ASCII from a reader of the source,
    and spam filters score a base64 text part that did not need it. KNOWN is emptied when full,
    as the lines that carry a recipient's name or tokens would otherwise pile up in it.
    """
    if len(known) > _KNOWN_QP_LINES:
        known.clear()
    if "\r" in text:  # rare, and replace() costs ~20 us on a 20 KB non-ASCII text even when idle
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = []
    for line in text.split("\n"):
        quoted = known.get(line)
        if quoted is None:
            quoted = binascii.b2a_qp(line.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
            known[line] = quoted
        encoded.append(quoted)
    return b"\r\n".join(encoded)


class MessageBuilder:
    """Builds every message of one run; only To, Subject, Date, Message-ID, the unsubscribe
    links and the two bodies change between recipients."""

    def __init__(
        self,
        settings: Settings,
        *,
        campaign: str,
        department: str,
        run_id: int,
        signer: Signer | None = None,
    ) -> None:
        sender = settings.sender
        self._settings = settings
        self._signer = signer
        from_email = _address("sender.from_email", sender.from_email)
        unsubscribe_mailto = _address("sender.unsubscribe_mailto", sender.unsubscribe_mailto)
        self._mailto_address = unsubscribe_mailto.rpartition("@")
        self._from_email = from_email
        self._bounce: tuple[str, str] | None = None
        if sender.bounce_address:
            local, _, domain = _address("sender.bounce_address", sender.bounce_address).rpartition("@")
            self._bounce = (local, domain)
        self._boundary = f"=_comms_{run_id}_{hashlib.sha256(str(run_id).encode()).hexdigest()[:16]}"

        list_domain = _check("sender.list_id_domain", sender.list_id_domain)
        list_id = f"<{_label(campaign)}.{_label(department)}.{list_domain}>"
        feedback = ":".join(
            [_label(campaign), _label(department), "comms", _label(_check("sender_id", sender.sender_id))]
        )
        from_name = _check("sender.from_name", sender.from_name)
        self._from = fold_header("From", _mailbox_words("From", from_name, from_email))
        static = ["MIME-Version: 1.0\r\n"]
        if sender.reply_to:
            static.append(fold_header("Reply-To", [_address("sender.reply_to", sender.reply_to)]))
        static.append(fold_header("List-Id", [list_id]))
        self._middle = "".join(static)
        self._trailer = "".join(
            [
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                fold_header("Feedback-ID", [feedback]),
                f'Content-Type: multipart/alternative; boundary="{self._boundary}"\r\n\r\n',
            ]
        ).encode("ascii")
        part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        self._plain_head = f"--{self._boundary}\r\n{part.format('plain')}".encode("ascii")
        self._html_head = f"\r\n--{self._boundary}\r\n{part.format('html')}".encode("ascii")
        self._end = f"\r\n--{self._boundary}--\r\n".encode("ascii")
        self._date_second = -1
        self._date = ""
        self._qp_lines: dict[str, bytes] = {}  # see _quoted_printable

    def build(
        self,
        rendered: Rendered,
        *,
        to_email: str,
        to_name: str | None,
        message_id: str,
        links: Links,
        delivery_id: int | None,
        test: bool = False,
    ) -> Outgoing:
        """One recipient's message; HeaderInjectionError if any header data holds CR, LF or
        another control character, or the address would break the To header."""
        to_email = _address("recipient email", to_email)
        subject = _check("subject", rendered.subject)
        if test:
            subject = TEST_PREFIX + subject
        unsubscribe = f"<{_check('unsubscribe URL', links.unsubscribe_url)}>,"
        local, at, domain = self._mailto_address
        if delivery_id is not None:
            local += f"+{make_token(self._settings.secret, 'u', delivery_id)}"
        mailto = f"mailto:{local}{at}{domain}"
        head = "".join(
            [
                self._from,
                fold_header("To", _mailbox_words("To", _check("recipient name", to_name or ""), to_email)),
                fold_header("Subject", _text_words("Subject", subject)),
                "Date: ",
                self._now(),
                "\r\nMessage-ID: ",
                _check("Message-ID", message_id),
                "\r\n",
                self._middle,
                fold_header("List-Unsubscribe", [unsubscribe, f"<{mailto}>"]),
            ]
        )
        data = b"".join(
            [
                head.encode("utf-8"),
                self._trailer,
                self._plain_head,
                _quoted_printable(rendered.text, self._qp_lines),
                self._html_head,
                _quoted_printable(rendered.html, self._qp_lines),
                self._end,
            ]
        )
        if self._signer is not None:
            data = self._signer.sign(data) + data
        return Outgoing(
            envelope_from=self._envelope_from(delivery_id),
            recipients=(to_email,),
            data=data,
            message_id=message_id,
        )

    def _envelope_from(self, delivery_id: int | None) -> str:
        """VERP (bounces+TOKEN@domain) so a bounce names its delivery even when the DSN is mangled."""
        if self._bounce is None:
            return self._from_email
        local, domain = self._bounce
        if delivery_id is None:
            return f"{local}@{domain}"
        return f"{local}+{make_token(self._settings.secret, 'b', delivery_id)}@{domain}"

    def _now(self) -> str:
        second = int(time.time())
        if second != self._date_second:
            self._date_second, self._date = second, format_datetime(datetime.fromtimestamp(second, UTC))
        return self._date
