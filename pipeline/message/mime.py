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

import binascii
import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

from pipeline.message.dkim import Signer
from pipeline.message.headers import address, check, fold_header, label, mailbox_words, text_words
from pipeline.message.tokens import make_token
from pipeline.types import Links, Outgoing, Rendered
from pipeline.workspace.settings import Settings

TEST_PREFIX = "[TEST] "
# About 70 messages' per-recipient lines: 4096 held 2.6 MB more of a sender's peak and saved no CPU.
_KNOWN_QP_LINES = 1024
_QP_LINE = 76  # RFC 2045 6.7 (5): encoded lines at most 76 characters, the soft break's "=" included


class _QuotedPrintable:
    """QP with CRLF line ends, for one run's bodies; '=' is always escaped, so the '=_' boundary
    can never occur.

    Each line is encoded on its own (a hard line break resets QP's column, so this gives what
    encoding the whole text gives, except that whitespace ending a line at column 73 or later
    goes after a soft break, where b2a_qp over the whole text can make that line 77 characters
    long, one more than RFC 2045 allows). Most of a run's HTML is the same for every recipient:
    b2a_qp over all ~20 KB of it was a fifth of the sending loop, and splitting it into lines to
    look each one up still a tenth. So the HTML comes as the template rendered it, piece by piece
    (Rendered.html_parts): a piece of the template's own text is one str object, the same for
    every recipient, whose inner lines are encoded once, by identity; only the lines a value
    lands on (a name, a tracked link) are encoded per message, and those that come out the same
    each time (a language code) are looked up by content. QP rather than base64, which is faster
    to encode in one piece: base64 makes the part a third bigger, hides markup that is plain
    ASCII from a reader of the source, and spam filters score a base64 text part that did not
    need it. Both caches are emptied when full, as lines carrying a recipient's tokens would
    otherwise pile up.

    No encoded line starts with a dot (see _without_leading_dots), so the message needs no SMTP
    dot-stuffing: the bytes go on the wire as built, and nothing scans them for it again.
    """

    def __init__(self) -> None:
        self._lines: dict[str, bytes] = {}
        # id(piece) -> (piece, its first line's start, its inner lines encoded or None, its last line's end)
        self._pieces: dict[int, tuple[str, str, bytes | None, str]] = {}

    def encode(self, text: str) -> bytes:
        return self.encode_parts((text,), template=False)

    def encode_parts(self, parts: Sequence[str], *, template: bool = True) -> bytes:
        """PARTS as a template rendered them (TEMPLATE: its own text pieces are plain str, every
        value it put in is markupsafe.Markup, as autoescaping makes them) or any strings."""
        if len(self._lines) > _KNOWN_QP_LINES:
            self._lines.clear()
        if len(self._pieces) > _KNOWN_QP_LINES:
            self._pieces.clear()
        encoded: list[bytes] = []
        line: list[str] = []  # the pieces of the line not yet ended
        for part in parts:
            if "\r" in part:  # rare: one pass over the whole text, line ends made LF first
                whole = "".join(parts).replace("\r\n", "\n").replace("\r", "\n")
                return self.encode_parts((whole,), template=False)
            if "\n" not in part:
                line.append(part)
                continue
            if template and type(part) is str:
                known = self._pieces.get(id(part))
                if known is None or known[0] is not part:
                    known = self._pieces[id(part)] = self._piece(part)
                _, first, inner, last = known
                line.append(first)
                encoded.append(self._line("".join(line)))
                if inner is not None:
                    encoded.append(inner)
                line = [last]
                continue
            first, *inside, last = part.split("\n")
            line.append(first)
            encoded.append(self._line("".join(line)))
            encoded.extend(self._line(each) for each in inside)
            line = [last]
        encoded.append(self._line("".join(line)))
        return b"\r\n".join(encoded)

    def _piece(self, piece: str) -> tuple[str, str, bytes | None, str]:
        first, _, rest = piece.partition("\n")
        inner, between, last = rest.rpartition("\n")
        lines = b"\r\n".join(self._line(each, keep=False) for each in inner.split("\n")) if between else None
        return piece, first, lines, last

    def _line(self, line: str, keep: bool = True) -> bytes:
        quoted = self._lines.get(line)
        if quoted is None:
            quoted = _qp_line(line)
            if keep:
                self._lines[line] = quoted
        return quoted


def _qp_line(line: str) -> bytes:
    """One line's QP (no line end). Printable ASCII with no space at the end needs only its '='
    escaped and soft breaks put in, a quarter of what binascii.b2a_qp takes over it."""
    if line.isascii() and line.isprintable() and not line.endswith(" "):
        quoted = line.replace("=", "=3D").encode("ascii")
        if len(quoted) >= _QP_LINE:
            quoted = _soft_breaks(quoted)
    else:
        quoted = binascii.b2a_qp(line.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    if quoted.startswith(b".") or b"\n." in quoted:
        quoted = _without_leading_dots(quoted)
    return quoted


def _soft_breaks(quoted: bytes) -> bytes:
    """QUOTED cut into lines of at most 76 characters, each but the last ending in a soft break
    ("="), never inside an =XX; where binascii.b2a_qp would cut (which lets only a last plain
    character reach column 76, never an =XX)."""
    lines = []
    start, end = 0, len(quoted)
    while end - start > _QP_LINE or (end - start == _QP_LINE and quoted[end - 3] == 0x3D):
        cut = start + _QP_LINE - 1
        if quoted[cut - 1] == 0x3D:  # "=" just before the cut: the escape moves to the next line
            cut -= 1
        elif quoted[cut - 2] == 0x3D:
            cut -= 2
        lines.append(quoted[start:cut])
        start = cut
    lines.append(quoted[start:])
    return b"=\r\n".join(lines)


def _without_leading_dots(quoted: bytes) -> bytes:
    """QUOTED (one source line's QP, maybe with soft breaks) re-wrapped so that no encoded line
    starts with ".": such a dot is written =2E, which decodes the same. SMTP would otherwise have
    to double it on the wire (RFC 5321 4.5.2), scanning every message to find the few that need
    it. A soft break landing before a dot is common in long per-recipient lines (URLs), so this
    works on whole segments: what no longer fits moves on to the next one, never splitting an =XX."""
    segments = quoted.split(b"=\r\n")
    last = len(segments) - 1
    lines: list[bytes] = []
    pending = b""
    for n, segment in enumerate(segments):
        content = pending + segment
        pending = b""
        while True:
            if content[:1] == b".":
                content = b"=2E" + content[1:]
            if len(content) <= (_QP_LINE if n == last else _QP_LINE - 1):
                lines.append(content)
                break
            cut = _QP_LINE - 1  # this line ends in a soft break
            if content[cut - 1 : cut] == b"=":
                cut -= 1
            elif content[cut - 2 : cut - 1] == b"=":
                cut -= 2
            lines.append(content[:cut])
            content = content[cut:]
            if n != last:
                pending = content
                break
    return b"=\r\n".join(lines)


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
        from_email = address("sender.from_email", sender.from_email)
        unsubscribe_mailto = address("sender.unsubscribe_mailto", sender.unsubscribe_mailto)
        self._mailto_address = unsubscribe_mailto.rpartition("@")
        self._from_email = from_email
        self._bounce: tuple[str, str] | None = None
        if sender.bounce_address:
            local, _, domain = address("sender.bounce_address", sender.bounce_address).rpartition("@")
            self._bounce = (local, domain)
        self._boundary = f"=_comms_{run_id}_{hashlib.sha256(str(run_id).encode()).hexdigest()[:16]}"

        list_domain = check("sender.list_id_domain", sender.list_id_domain)
        list_id = f"<{label(campaign)}.{label(department)}.{list_domain}>"
        feedback = ":".join(
            [label(campaign), label(department), "comms", label(check("sender_id", sender.sender_id))]
        )
        from_name = check("sender.from_name", sender.from_name)
        self._from = fold_header("From", mailbox_words("From", from_name, from_email))
        static = ["MIME-Version: 1.0\r\n"]
        if sender.reply_to:
            static.append(fold_header("Reply-To", [address("sender.reply_to", sender.reply_to)]))
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
        self._qp = _QuotedPrintable()

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
        to_email = address("recipient email", to_email)
        subject = check("subject", rendered.subject)
        if test:
            subject = TEST_PREFIX + subject
        unsubscribe = f"<{check('unsubscribe URL', links.unsubscribe_url)}>,"
        local, at, domain = self._mailto_address
        if delivery_id is not None:
            local += f"+{links.unsubscribe_token}"
        mailto = f"mailto:{local}{at}{domain}"
        head = "".join(
            [
                self._from,
                fold_header("To", mailbox_words("To", check("recipient name", to_name or ""), to_email)),
                fold_header("Subject", text_words("Subject", subject)),
                "Date: ",
                self._now(),
                "\r\nMessage-ID: ",
                check("Message-ID", message_id),
                "\r\n",
                self._middle,
                fold_header("List-Unsubscribe", [unsubscribe, f"<{mailto}>"]),
            ]
        )
        parts = rendered.html_parts
        html = self._qp.encode_parts(parts) if parts else self._qp.encode(rendered.html)
        data = b"".join(
            [
                head.encode("utf-8"),
                self._trailer,
                self._plain_head,
                self._qp.encode(rendered.text),
                self._html_head,
                html,
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
