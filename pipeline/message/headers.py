"""Header fields as RFC 5322 wants them: checked for CR/LF and controls, encoded (RFC 2047) and folded.

Data never reaches a header unchecked: a value holding a line break could start a header of its own.
"""

from __future__ import annotations

import base64
import hashlib
import re

from pipeline.errors import HeaderInjectionError

LINE = 78
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


def message_id(run_id: int, contact_key: int | str, domain: str, *, salt: str = "") -> str:
    """The same run and contact always give the same Message-ID, in any process, so a message
    resent after a crash is recognisably the same message. The contact is hashed, never shown.

    SALT is the run's own random value (Run.meta["message_id_salt"]): bounces are tied to
    deliveries by Message-ID, so outsiders must not be able to compute one and forge a bounce.
    """
    check("Message-ID domain", domain)
    digest = hashlib.sha256(f"{salt}\x00{run_id}\x00{contact_key}".encode()).hexdigest()[:24]
    return f"<{run_id}.{digest}@{domain}>"


def check(field: str, value: str) -> str:
    if _CONTROL.search(value):
        raise HeaderInjectionError(f"{field} contains a line break or control character: {value[:80]!r}")
    return value


def address(field: str, value: str) -> str:
    check(field, value)
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


def text_words(name: str, text: str) -> list[str]:
    """Unstructured text (RFC 5322 3.2.5) as foldable words: as-is when it is short-worded
    printable ASCII that no reader could mistake for an encoded-word, encoded otherwise."""
    if _PLAIN_PHRASE.fullmatch(text) and "=?" not in text:
        words = _WORD_GAP.split(text)
        if all(len(word) <= LINE - 2 for word in words):
            return words
    return _encoded_words(text, _first_word_bytes(name))


def mailbox_words(name: str, display: str | None, address: str) -> list[str]:
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
        fits_alone = 1 + len(word) <= LINE
        if column + 1 + len(word) > LINE and (column > len(name) + 1 or fits_alone):
            parts.append("\r\n ")
            column = 1
        else:
            parts.append(" ")
            column += 1
        parts.append(word)
        column += len(word)
    parts.append("\r\n")
    return "".join(parts)


def label(value: str) -> str:
    return _LABEL_UNSAFE.sub("-", value.lower()).strip("-") or "none"
