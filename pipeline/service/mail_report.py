"""A report's schedule fired: build the exec report and mail it through comms itself.

One message per schedule to its `to` list: the page (CSS inlined, as a campaign's is) as the
HTML body, a short text part with the key figures, and the PDF attached. Tracking is off: the
body has no pixel and its links are not rewritten, since a report to the head of the company
is not a campaign and has no delivery to count against. It goes through the workspace's
transport (SMTP, file, console) and is signed with [dkim] when that is set.

The job function is `fire_report`, an importable function with plain arguments (APScheduler
pickles its reference and its arguments into the job store). Each fire is mailed at most once:
it is claimed in `report_mailing` (pipeline.storage.mailings) before the report is built, and
the row keeps the outcome. A daemon killed between the claim and the server's answer leaves
the row `sending`, and the report is not sent again: a report to the board twice is worse
than one an operator re-sends after reading the log.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

from sqlalchemy import Engine

from pipeline.assembly.inline import inline_css
from pipeline.delivery.transports import transport_for
from pipeline.errors import CommsError
from pipeline.logs import log_event
from pipeline.message.dkim import Signer
from pipeline.reports import ExecReport, Period, exec_html, exec_pdf, exec_report, parse_period
from pipeline.reports.exec_render import kpi_lines
from pipeline.storage.engines import opened
from pipeline.storage.mailings import claim_mailing, finish_mailing, mailing_status
from pipeline.storage.models import MailingStatus, utcnow
from pipeline.timetable.scheduler import due_occurrence
from pipeline.types import Outgoing, SendResult
from pipeline.workspace.folders import Workspace

log = logging.getLogger("comms.reports")


def report_message(ws: Workspace, report: ExecReport, html: str, pdf: bytes, to: list[str]) -> Outgoing:
    """The report as one message to TO, ready for a transport (CRLF, nothing to dot-stuff)."""
    settings = ws.settings
    sender = settings.sender
    domain = sender.from_email.rpartition("@")[2]
    message = EmailMessage()
    message["From"] = formataddr((sender.from_name, sender.from_email))
    message["To"] = ", ".join(to)
    message["Subject"] = f"{report.company}: communications report {report.period.label}"
    message["Date"] = format_datetime(utcnow())
    message_id = make_msgid("report", domain=domain)
    message["Message-ID"] = message_id
    text = "\n".join(
        [
            f"Communications report {report.period.label}",
            "",
            *kpi_lines(report),
            "",
            "The full report is attached (PDF).",
        ]
    )
    # base64 everywhere: no body line can start with "." (transports send DATA as it is).
    message.set_content(text + "\n", cte="base64")
    message.add_alternative(inline_css(html), subtype="html", cte="base64")
    message.add_attachment(
        pdf, maintype="application", subtype="pdf", filename=f"exec-{report.period.label}.pdf"
    )
    data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    signer = Signer.from_settings(settings, ws.root)
    if signer is not None:
        data = signer.sign(data) + data
    return Outgoing(
        envelope_from=sender.bounce_address or sender.from_email,
        recipients=tuple(to),
        data=data,
        message_id=message_id.strip("<>"),
    )


async def _send(ws: Workspace, message: Outgoing) -> SendResult:
    async with transport_for(ws.settings, ws.root) as transport:
        return await transport.send(message)


def mail_report(ws: Workspace, engine: Engine, period: Period, compare: str, to: list[str]) -> SendResult:
    """Build the exec report for PERIOD and send it to TO; what the server said."""
    report = exec_report(engine, ws, period, compare="yoy" if compare == "yoy" else "previous")
    html = exec_html(report, ws)
    message = report_message(ws, report, html, exec_pdf(html), to)
    return asyncio.run(_send(ws, message))


def fire_report(
    *,
    root: str,
    schedule: str,
    report: str,
    period: str,
    compare: str,
    to: list[str],
    timezone: str,
    at: str | None,
    cron: str | None,
    grace_s: float,
) -> None:
    """APScheduler's job for a report's schedule: claim this fire, build, mail, record and log
    what happened (never raises for a report that could not go).

    The fire is claimed in the database before anything is built: a fire already claimed (by
    this daemon before a restart, or by another) is logged as `report.already_mailed` with
    what became of it, and not sent again. The outcome goes into the claimed row and the log:
    `report.sent`, or `report.not_sent` / `report.failed` with the server's reply or the error.
    """
    now = utcnow()
    occurrence = due_occurrence(schedule, timezone=timezone, at=at, cron=cron, grace_s=grace_s, now=now)
    if occurrence is None:
        return
    about: dict[str, Any] = {"schedule": schedule, "report": report, "occurrence": occurrence}
    try:
        ws = Workspace.open(root)
        chosen = parse_period(period, now)
        with opened(ws.settings) as engine:
            claimed = claim_mailing(
                engine, schedule=schedule, occurrence=occurrence, report=report, period=chosen.label, now=now
            )
            if claimed is None:
                status = mailing_status(engine, schedule, occurrence)
                log_event(log, "report.already_mailed", **about, status=status)
                return
            try:
                result = mail_report(ws, engine, chosen, compare, to)
            except Exception as exc:
                finish_mailing(engine, claimed, MailingStatus.failed, str(exc) or repr(exc), utcnow())
                raise
            sent = result.status == "sent"
            reply = f"{result.code or ''} {result.reply}".strip()
            outcome = MailingStatus.sent if sent else MailingStatus.failed
            finish_mailing(engine, claimed, outcome, reply, utcnow())
    except CommsError as exc:
        log_event(log, "report.failed", level=logging.ERROR, **about, error=exc)
        return
    log_event(
        log,
        "report.sent" if sent else "report.not_sent",
        level=logging.INFO if sent else logging.ERROR,
        **about,
        period=chosen.label,
        to=",".join(to),
        code=result.code,
        reply=result.reply,
    )
