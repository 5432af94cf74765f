"""What an SMTP status means, wherever it comes from: a reply during sending, a DSN, a bounce's text.

One classifier for all of them (DESIGN.md "Dispatch rules"), so a code cannot mean one thing when the
server says it and another when a bounce reports it:

- hard: the address does not exist (5.1.x, 5.2.1 disabled, "addressee unknown" texts): suppress.
- soft: temporary or unclear (4.x.x, other 5.x.x); a full mailbox (X.2.2) is always soft.
- sender: refused because of us, not the recipient: X.7.x (policy, reputation, authentication, and
  Microsoft's 4.7.650-style throttling), X.1.7/X.1.8 (our sender address), blocklist wording.
- delayed: a warning that delivery is still being tried.

Codes decide first; a generic code (X.0.0, 5.3.0, 5.5.0) or none at all leaves it to the phrase tables
in status_phrases.toml (data, each phrase with its own test).
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from functools import cache
from importlib.resources import files

# An RFC 3463 enhanced status code, and an SMTP reply code (possibly followed by one).
ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_REPLY = re.compile(r"(?<![\d.#])([245]\d\d)(?:[ -]|:|$)", re.MULTILINE)
# X.1.7 bad sender's mailbox syntax, X.1.8 bad sender's system address (RFC 3463 3.2).
_SENDER_ADDRESS_DETAILS = {7, 8}


class Severity(StrEnum):
    hard = "hard"
    soft = "soft"
    sender = "sender"
    delayed = "delayed"


@cache
def _tables() -> dict[str, object]:
    return tomllib.loads(files("pipeline.delivery").joinpath("status_phrases.toml").read_text("utf-8"))


def phrase_tables() -> list[tuple[str, Severity, tuple[str, ...]]]:
    """(table, severity, phrases) in the order they are tried."""
    data = _tables()
    return [
        (name, Severity(data[name]["severity"]), tuple(data[name]["phrases"]))  # type: ignore[index]
        for name in data["order"]  # type: ignore[attr-defined]
    ]


def subject_phrases(table: str) -> tuple[str, ...]:
    """The subject phrases of TABLE ("auto_reply" or "complaint")."""
    return tuple(_tables()[table]["subjects"])  # type: ignore[index]


def codes(text: str) -> tuple[str | None, int | None]:
    """(the most specific enhanced status, the first reply code) in TEXT; a 5.0.0 gives way to a 5.1.1."""
    found = [m.group(0) for m in ENHANCED.finditer(text)]
    specific = [code for code in found if not code.endswith(".0.0")]
    reply = _REPLY.search(text)
    status = (specific or found)[0] if found else None
    return status, int(reply.group(1)) if reply else None


def by_phrase(text: str) -> Severity | None:
    """The first phrase table (in `order`) with a phrase in TEXT."""
    flat = " ".join(text.lower().split())
    for _, severity, phrases in phrase_tables():
        if any(phrase in flat for phrase in phrases):
            return severity
    return None


def classify(status: str | None, smtp_code: int | None, text: str, *, action: str = "failed") -> Severity:
    """The severity of one failure: its enhanced STATUS first, then SMTP_CODE and the phrases of TEXT."""
    if action.strip().lower().startswith("delayed"):
        return Severity.delayed
    phrase = by_phrase(text)
    if status:
        klass, subject, detail = (int(part) for part in status.split("."))
        if subject == 7 or (subject == 1 and detail in _SENDER_ADDRESS_DETAILS):
            return Severity.sender
        if subject == 2 and detail == 2:
            return Severity.soft
        if klass == 4:
            return Severity.sender if phrase is Severity.sender else Severity.soft
        if subject == 1 or (subject, detail) == (2, 1):
            return Severity.hard
    if phrase is Severity.delayed:
        return Severity.delayed if smtp_code is None or smtp_code < 500 else Severity.soft
    if phrase is Severity.hard and smtp_code is not None and smtp_code < 500:
        return Severity.soft  # "try again later" about an address is not a verdict on it
    return phrase or Severity.soft


def classify_reply(reply: str) -> Severity:
    """The severity of an SMTP server's refusal, e.g. ``550 5.1.1 <a@b>: user unknown``."""
    status, code = codes(reply)
    return classify(status, code, reply)
