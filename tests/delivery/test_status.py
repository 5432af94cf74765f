"""The one SMTP-status classifier: codes first, then the phrase tables of status_phrases.toml, each phrase
tested on its own, and the same answer for an SMTP reply and for a DSN carrying that reply."""

from __future__ import annotations

import pytest

from pipeline.delivery import status
from pipeline.delivery.status import Severity, by_phrase, classify, classify_reply, codes, phrase_tables
from pipeline.delivery.verdicts import is_retryable
from pipeline.feedback.dsn import is_auto_reply, parse_message, read_report

PHRASES = [(table, severity, phrase) for table, severity, phrases in phrase_tables() for phrase in phrases]


@pytest.mark.parametrize(("table", "severity", "phrase"), PHRASES, ids=[f"{t}:{p}" for t, _, p in PHRASES])
def test_each_phrase_alone_decides_a_reply_without_a_code(
    table: str, severity: Severity, phrase: str
) -> None:
    # No enhanced code, the reply's words in another case and wrapped over two lines, as MTAs send them.
    words = phrase.upper().split(" ")
    text = f"host mx.example.org said: {' '.join(words[:1])}\n    {' '.join(words[1:])} (in reply to RCPT TO)"
    expected = Severity.soft if severity is Severity.delayed else severity  # a 5xx is never "still trying"
    assert classify(None, 550, text) is expected
    assert by_phrase(text) is severity


@pytest.mark.parametrize("table", ["auto_reply", "complaint"])
def test_each_subject_phrase_is_recognised(table: str) -> None:
    for phrase in status.subject_phrases(table):
        message = parse_message(
            f"From: someone@example.net\r\nTo: news@kestrelforge.example\r\nSubject: {phrase.title()} Spring"
            "\r\n\r\nbody\r\n".encode()
        )
        if table == "auto_reply":
            assert is_auto_reply(message), phrase
        else:
            assert read_report(message) is None  # a complaint subject alone, nothing attached: not a report


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("550 5.1.1 <a@example.org>: Recipient address rejected: User unknown", Severity.hard),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", Severity.hard),
        ("550 5.2.1 The email account that you tried to reach is disabled", Severity.hard),
        ("550 5.3.0 Addressee unknown", Severity.hard),
        ("550 5.3.0 Other mail system problem", Severity.soft),
        ("552 5.2.2 Mailbox full", Severity.soft),  # full is never permanent
        ("452 4.2.2 The recipient's inbox is out of storage space", Severity.soft),
        ("451 4.3.0 Temporary local problem", Severity.soft),
        ("553 5.1.7 bad sender address syntax", Severity.sender),  # our address, not theirs
        ("553 5.1.8 <news@kestrelforge.example>: Sender address rejected: Domain not found", Severity.sender),
        ("554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org", Severity.sender),
        ("550 5.7.26 unauthenticated sender", Severity.sender),
        ("550 5.7.606 Access denied, banned sending IP [192.0.2.10]", Severity.sender),
        (
            "451 4.7.650 The mail server [192.0.2.10] has been temporarily rate limited due to IP reputation",
            Severity.sender,
        ),
        ("421 4.7.0 [TSS04] Messages temporarily deferred due to user complaints", Severity.sender),
        ("550 Requested action not taken: mailbox unavailable", Severity.hard),
        ("450 mailbox unavailable, try later", Severity.soft),  # a 4xx about an address is not a verdict
        ("554 delivery error: dd This user doesn't have a yahoo.com account", Severity.hard),
        ("550 5.0.0 <a@example.org>... 550 5.1.1 User unknown", Severity.hard),  # generic code refined
        ("554 Transaction failed", Severity.soft),
    ],
)
def test_codes_decide_before_words(reply: str, expected: Severity) -> None:
    assert classify_reply(reply) is expected


def test_a_delayed_action_is_delayed_whatever_the_code() -> None:
    assert classify("5.1.1", 550, "user unknown", action="delayed") is Severity.delayed
    assert (
        classify("4.4.1", None, "connection timed out", action="Delayed (still trying)") is Severity.delayed
    )


def test_codes_are_read_from_anywhere_in_the_text_but_not_from_dates_or_versions() -> None:
    assert codes("<EX2003.contoso.example #5.1.1>") == ("5.1.1", None)
    assert codes("Sorry, no mailbox here by that name. (#5.1.1)") == ("5.1.1", None)
    assert codes("550-5.1.1 The email account\n550 5.1.1 does not exist") == ("5.1.1", 550)
    assert codes("version 1.5.1.1 released on 2026.5.1") == (None, None)


SENDER_ADDRESS_DSN = b"""Return-Path: <>\r
From: MAILER-DAEMON@mx.example.org\r
To: bounces@kestrelforge.example\r
Subject: Undelivered Mail Returned to Sender\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r
\r
--b\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.org\r
\r
Final-Recipient: rfc822; fine@example.org\r
Action: failed\r
Status: 5.1.7\r
Diagnostic-Code: smtp; 550 5.1.7 <bounces@kestrelforge.example>: malformed sender\r
\r
--b--\r
"""


def test_a_reply_and_a_dsn_carrying_it_mean_the_same() -> None:
    reply = "550 5.1.7 <bounces@kestrelforge.example>: malformed sender"
    report = read_report(parse_message(SENDER_ADDRESS_DSN))
    assert report is not None and report.failures[0].severity is classify_reply(reply) is Severity.sender
    assert is_retryable(550, reply)  # our address can be fixed, then it is worth another try
