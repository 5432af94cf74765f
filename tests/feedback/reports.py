"""Bounce and complaint messages as real mail systems send them, for the ingestion tests.

dsn() follows RFC 3464 (multipart/report; report-type=delivery-status, per-message and
per-recipient fields, the returned headers as text/rfc822-headers); arf() follows RFC 5965;
postfix_text() and exchange_text() are the plain-text notices those servers send when no
machine-readable part survives (or was never made).
"""

from __future__ import annotations


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def dsn(
    *,
    to: str,
    recipient: str,
    status: str,
    diagnostic: str,
    original_message_id: str,
    action: str = "failed",
    returned: str = "headers",
) -> bytes:
    """An RFC 3464 report; RETURNED is "headers" (text/rfc822-headers) or "message" (message/rfc822)."""
    original = (
        f"From: Kestrel Forge <news@kestrelforge.example>\n"
        f"To: {recipient}\n"
        f"Subject: Spring launch\n"
        f"Message-ID: {original_message_id}\n"
        f"Date: Mon, 02 Mar 2026 09:00:00 +0000\n"
    )
    if returned == "headers":
        returned_part = f"Content-Type: text/rfc822-headers\n\n{original}"
    else:
        returned_part = f"Content-Type: message/rfc822\n\n{original}\nHello there.\n"
    return _crlf(
        f"""Return-Path: <>
Delivered-To: {to}
Received: from mx.example.org by inbound.kestrelforge.example; Mon, 02 Mar 2026 09:00:05 +0000
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 02 Mar 2026 09:00:04 +0000
Message-ID: <20260302090004.ABC123@mx.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="ABC123.1772442004/mx.example.org"

This is a MIME-encapsulated message.

--ABC123.1772442004/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--ABC123.1772442004/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: ABC123
Arrival-Date: Mon,  2 Mar 2026 09:00:01 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; {diagnostic}

--ABC123.1772442004/mx.example.org
Content-Description: Undelivered Message Headers
{returned_part}
--ABC123.1772442004/mx.example.org--
"""
    )


def arf(*, to: str, original_mail_from: str, complainant: str, original_message_id: str) -> bytes:
    """An RFC 5965 abuse report, as a mailbox provider's feedback loop sends it."""
    return _crlf(
        f"""From: <feedbackloop@fbl.example.net>
To: {to}
Subject: FW: Spring launch
Date: Tue, 03 Mar 2026 10:00:00 +0000
Message-ID: <fbl.77@fbl.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="part1_13d.2e68ed54"

--part1_13d.2e68ed54
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP 192.0.2.1 on
Mon, 02 Mar 2026 09:00:01 +0000. For more information about this format please see
http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <{original_mail_from}>
Original-Rcpt-To: <{complainant}>
Arrival-Date: Mon, 02 Mar 2026 09:00:01 +0000
Reporting-MTA: dns; mail.fbl.example.net
Source-IP: 192.0.2.1
Authentication-Results: mail.fbl.example.net; dkim=pass header.d=kestrelforge.example

--part1_13d.2e68ed54
Content-Type: message/rfc822
Content-Disposition: inline

From: <news@kestrelforge.example>
To: <{complainant}>
Subject: Spring launch
Message-ID: {original_message_id}
Date: Mon, 02 Mar 2026 09:00:00 +0000

Hello there.

--part1_13d.2e68ed54--
"""
    )


def postfix_text(*, to: str, recipient: str, reply: str, original_message_id: str) -> bytes:
    """A single-part plain-text bounce in Postfix's wording (no delivery-status part)."""
    return _crlf(
        f"""Return-Path: <>
To: {to}
From: MAILER-DAEMON (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
Date: Mon, 02 Mar 2026 09:00:04 +0000
Content-Type: text/plain; charset=us-ascii

This is the mail system at host relay.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{recipient}>: host mail.example.org[198.51.100.7] said: {reply}
    (in reply to RCPT TO command)

--- Below this line is a copy of the message.

From: Kestrel Forge <news@kestrelforge.example>
To: {recipient}
Subject: Spring launch
Message-ID: {original_message_id}

Hello there.
"""
    )


def exchange_text(*, to: str, recipient: str, original_message_id: str) -> bytes:
    """An Exchange / Office 365 non-delivery report with no machine-readable part."""
    return _crlf(
        f"""From: Microsoft Outlook <postmaster@contoso.example>
To: {to}
Subject: Undeliverable: Spring launch
Date: Mon, 02 Mar 2026 09:00:09 +0000
Content-Type: text/plain; charset="us-ascii"

Delivery has failed to these recipients or groups:

{recipient}
The email address you entered couldn't be found. Please check the recipient's email address and
try to resend the message. If the problem continues, please contact your helpdesk.

Diagnostic information for administrators:

Generating server: EX01.contoso.example

{recipient}
Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'

Original message headers:

Received: from out.kestrelforge.example (192.0.2.10) by EX01.contoso.example
From: Kestrel Forge <news@kestrelforge.example>
To: <{recipient}>
Subject: Spring launch
Message-ID: {original_message_id}
MIME-Version: 1.0
"""
    )


def auto_reply(*, to: str) -> bytes:
    return _crlf(
        f"""From: Ada <ada@example.com>
To: {to}
Subject: Out of office: Spring launch
Auto-Submitted: auto-replied

I am away until Monday 550 miles from a computer.
"""
    )
