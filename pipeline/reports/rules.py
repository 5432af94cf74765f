"""Recommendations: deterministic rules over a report's figures, each with its evidence and threshold.

A rule answers one of three ways: `fired` (with a suggested action), `ok`, or `insufficient` when the
report has too little data to judge (fewer than [reports.rules] min_delivered delivered messages,
min_clickers clickers, too short a history); it never fires on noise. Thresholds live in
[reports.rules] (pipeline.workspace.settings.ReportRules); README.md lists the rules.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pipeline.workspace.settings import ReportRules

if TYPE_CHECKING:
    from pipeline.reports.views import PeriodReport, RunReport, SeriesPoint

Status = Literal["fired", "ok", "insufficient"]


@dataclass(frozen=True)
class Recommendation:
    rule: str
    status: Status
    severity: Literal["info", "warning", "critical"]
    evidence: str
    threshold: str
    action: str


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _insufficient(rule: str, why: str, threshold: str) -> Recommendation:
    return Recommendation(rule, "insufficient", "info", f"too little data: {why}", threshold, "")


def _judge(
    rule: str, fired: bool, evidence: str, threshold: str, action: str, severity: str = "warning"
) -> Recommendation:
    if fired:
        return Recommendation(rule, "fired", severity, evidence, threshold, action)  # type: ignore[arg-type]
    return Recommendation(rule, "ok", "info", evidence, threshold, "")


def _share(k: int, n: int) -> float:
    return k / n if n else 0.0


def _share_rule(
    rule: str,
    part: int,
    whole: int,
    of: str,
    min_whole: int,
    limit: float,
    what: str,
    action: str,
    severity: str = "warning",
) -> Recommendation:
    """RULE fires when PART is more than LIMIT of WHOLE (counted in OF), judged once WHOLE reaches
    MIN_WHOLE: below it a share swings too far from one recipient to the next."""
    threshold = f"> {_pct(limit)} of {of}"
    if whole < min_whole:
        return _insufficient(rule, f"{whole} {of}", threshold)
    share = _share(part, whole)
    return _judge(rule, share > limit, f"{what} {_pct(share)}", threshold, action, severity)


def run_rules(
    report: RunReport,
    rules: ReportRules,
    unsubscribe_history: list[float],
    point: SeriesPoint | None,
    series_length: int,
) -> list[Recommendation]:
    c = report.figures.counts
    assert c is not None
    out: list[Recommendation] = []
    delivered, attempted = c["delivered"], c["attempted"]
    enough = delivered >= rules.min_delivered
    few = f"{delivered} delivered, the rules need {rules.min_delivered}"

    threshold = f"> {_pct(rules.bounce_rate)} of attempted"
    if attempted < rules.min_delivered:
        out.append(_insufficient("bounce-rate", f"{attempted} attempted", threshold))
    else:
        rate = _share(attempted - delivered, attempted)
        out.append(
            _judge(
                "bounce-rate",
                rate > rules.bounce_rate,
                f"bounce rate {_pct(rate)} ({attempted - delivered} of {attempted})",
                threshold,
                "clean the list: remove hard-bounced and long-inactive addresses, check the import source",
            )
        )

    threshold = f">= {_pct(rules.complaint_alert)} alert, >= {_pct(rules.complaint_critical)} critical"
    if not enough:
        out.append(_insufficient("complaint-rate", few, threshold))
    else:
        rate = _share(c["complaints"], delivered)
        critical = rate >= rules.complaint_critical
        out.append(
            _judge(
                "complaint-rate",
                rate >= rules.complaint_alert,
                f"complaint rate {_pct(rate)} ({c['complaints']} of {delivered})",
                threshold,
                "send less often or only to engaged contacts; make unsubscribing easier to find"
                + (" (above Gmail's 0.3% bulk-sender line)" if critical else ""),
                "critical" if critical else "warning",
            )
        )

    threshold = (
        f"> {rules.unsubscribe_vs_median}x the department's median "
        f"of its last {rules.unsubscribe_history_runs} runs"
    )
    if not enough or len(unsubscribe_history) < 3:
        out.append(
            _insufficient(
                "unsubscribe-spike",
                few if not enough else f"{len(unsubscribe_history)} earlier runs of the department",
                threshold,
            )
        )
    else:
        median = statistics.median(unsubscribe_history)
        rate = _share(c["unsubscribes"], delivered)
        out.append(
            _judge(
                "unsubscribe-spike",
                rate > rules.unsubscribe_vs_median * median,
                f"unsubscribe rate {_pct(rate)} against a median of {_pct(median)}",
                threshold,
                "check the subject and the audience: this run lost people faster than the department's usual",
            )
        )

    out.append(
        _share_rule(
            "machine-clicks",
            c["raw_clickers"] - c["clickers"],
            c["raw_clickers"],
            "clicking messages",
            rules.min_clickers,
            rules.machine_click_share,
            "machine-click share",
            "ask the recipients' IT to allow-list the tracking domain in their link scanner",
        )
    )
    out.append(
        _share_rule(
            "apple-proxy",
            c["apple_proxy_openers"],
            c["pixel_openers"],
            "openers",
            rules.min_clickers,
            rules.apple_proxy_share,
            "Apple-proxy share of openers",
            "judge this audience by clicks, not opens: most of its opens are Apple's proxy",
            "info",
        )
    )

    threshold = "human click rate below the p-chart's lower limit"
    if point is None or series_length < rules.pchart_min_runs or point.lower is None:
        out.append(
            _insufficient(
                "below-control-limit",
                f"{series_length} runs in the series, need {rules.pchart_min_runs}",
                threshold,
            )
        )
    else:
        out.append(
            _judge(
                "below-control-limit",
                point.outside == "below",
                f"human click rate {_pct(point.p or 0)} against a lower limit of {_pct(point.lower)}",
                threshold,
                "propose an A/B test of subject or call to action for the next run",
            )
        )

    clickers = c["clickers"]
    threshold = (
        f"> {_pct(rules.deep_link_share)} of clickers beyond position {rules.deep_link_position}, "
        f"or the cta_url under {_pct(rules.cta_share)}"
    )
    if clickers < rules.min_clickers:
        out.append(
            _insufficient(
                "call-to-action-position", f"{clickers} clickers, need {rules.min_clickers}", threshold
            )
        )
    else:
        deep = sum(link.clickers for link in report.links if link.position > rules.deep_link_position)
        deep_share = _share(deep, sum(link.clickers for link in report.links))
        cta = next((link for link in report.links if link.cta), None)
        cta_share = _share(cta.clickers, clickers) if cta else None
        fired = deep_share > rules.deep_link_share or (cta_share is not None and cta_share < rules.cta_share)
        cta_text = f", cta_url {_pct(cta_share)} of clickers" if cta_share is not None else ""
        out.append(
            _judge(
                "call-to-action-position",
                fired,
                f"{_pct(deep_share)} of link clicks beyond position {rules.deep_link_position}{cta_text}",
                threshold,
                "move the call to action up, into the first screen",
            )
        )

    threshold = (
        f"peak >= {rules.send_window_hours:g} h from the sending hour, "
        f"with >= {rules.send_window_clickers} clickers"
    )
    if clickers < rules.send_window_clickers or report.click_peak_hour is None or report.started_at is None:
        out.append(
            _insufficient("send-window", f"{clickers} clickers, need {rules.send_window_clickers}", threshold)
        )
    else:
        sent_hour = report.started_at.hour
        gap = min((report.click_peak_hour - sent_hour) % 24, (sent_hour - report.click_peak_hour) % 24)
        out.append(
            _judge(
                "send-window",
                gap >= rules.send_window_hours,
                f"human clicks peak at {report.click_peak_hour:02d}:00 UTC, sent at {sent_hour:02d}:00 UTC",
                threshold,
                f"schedule the next run for about {report.click_peak_hour:02d}:00 UTC",
                "info",
            )
        )
    return out


def period_rules(report: PeriodReport, rules: ReportRules) -> list[Recommendation]:
    reach = report.reach.get("reach") or 0
    share = report.reach.get("dormant_share")
    threshold = f"> {_pct(rules.dormant_share)} of contacts reached"
    if not isinstance(reach, int) or reach < rules.min_delivered or share is None:
        return [
            _insufficient(
                "dormant-contacts", f"{reach} contacts reached, need {rules.min_delivered}", threshold
            )
        ]
    return [
        _judge(
            "dormant-contacts",
            float(share) > rules.dormant_share,
            f"{report.reach['dormant']} of {reach} contacts reached ({_pct(float(share))}) "
            "neither opened nor clicked",
            threshold,
            "run a re-engagement campaign for the dormant contacts, then stop mailing those who stay silent",
        )
    ]
