"""What a test needs before it is sent: the per-arm sample for its baseline and lift, against the
audience it has — and, when that is too small, what learn-only would detect instead.

`comms plan` and `comms send --dry-run` print `describe(plan_test(...))`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from pipeline.assembly.copy import load_copy
from pipeline.assembly.variants import MAX_APPLE_SHARE_FOR_OPENS, AbTest, load_test
from pipeline.experiments.stats import CONFIDENCE, POWER, detectable_lift, sample_size
from pipeline.reports import queries
from pipeline.reports.glossary import BY_ID, derive, rates
from pipeline.reports.queries import Scope
from pipeline.storage.engines import opened
from pipeline.workspace.folders import Workspace

# Without a stated baseline or earlier runs, the estimate assumes this rate (and says so).
ASSUMED_BASELINE = 0.10


def past_rate(
    conn: Connection, campaign: str, metric: str, before: datetime | None = None
) -> tuple[float, int] | None:
    """METRIC over CAMPAIGN's runs (started before BEFORE) and how many were delivered; None: no data."""
    found = list(queries.counts(conn, Scope(campaign=campaign, end=before)))
    if not found:
        return None
    shown = rates(derive(found[0][1]))[metric]
    if shown is None or shown.value is None or not shown.n:
        return None
    return float(shown.value), shown.n


@dataclass(frozen=True)
class TestPlan:
    campaign: str
    test: AbTest
    audience: int
    baseline: float
    baseline_source: str
    needed_per_arm: int
    in_test: int  # audience members in the arms together
    per_arm: float
    detectable: float | None  # the smallest lift PER_ARM detects (None: not even 100 points)
    learn_only_detectable: float | None  # ... with the whole audience in the arms
    apple_share: float | None = None  # of openers in the campaign's earlier runs (for the open metric)

    @property
    def enough(self) -> bool:
        return self.per_arm >= self.needed_per_arm


def plan_test(conn: Connection, campaign: str, test: AbTest, audience: int) -> TestPlan:
    """CAMPAIGN's TEST against an AUDIENCE of that many recipients."""
    stated = test.test
    if stated.baseline is not None:
        rate, source = stated.baseline, "stated in the test"
    elif (past := past_rate(conn, campaign, stated.metric)) is not None:
        rate, source = past[0], f"the campaign's earlier runs, {past[1]} delivered"
    else:
        rate, source = ASSUMED_BASELINE, "assumed: no earlier runs and no `baseline:` in the test"
    apple = past_rate(conn, campaign, "apple_proxy_share") if stated.metric == "human_open_rate" else None
    arms = len(test.variants)
    in_test = audience if stated.learn_only else math.floor(audience * float(stated.share))
    return TestPlan(
        campaign=campaign,
        test=test,
        audience=audience,
        baseline=rate,
        baseline_source=source,
        needed_per_arm=sample_size(rate, stated.lift),
        in_test=in_test,
        per_arm=in_test / arms,
        detectable=detectable_lift(rate, in_test / arms),
        learn_only_detectable=detectable_lift(rate, audience / arms),
        apple_share=apple[0] if apple else None,
    )


def _points(lift: float | None) -> str:
    return "no lift at all" if lift is None else f"±{lift * 100:.1f} points"


def describe(plan: TestPlan) -> list[str]:
    """The plan in a few lines, as `comms plan` and `comms send --dry-run` print it."""
    test, stated = plan.test, plan.test.test
    hours = stated.decide_after.total_seconds() / 3600
    lines = [
        f"{len(test.variants)} variants ({', '.join(test.variants)}; control {test.control}), "
        f"{BY_ID[stated.metric].label.lower()}, smallest lift worth detecting "
        f"+{stated.lift * 100:.1f} points, decided {hours:g}h after the start",
        f"baseline {plan.baseline:.1%} ({plan.baseline_source}): {plan.needed_per_arm:,} per arm needed "
        f"at {CONFIDENCE:.0%} confidence, {POWER:.0%} power",
    ]
    if stated.learn_only:
        lines.append(
            f"learn only: all {plan.audience:,} in the arms, {plan.per_arm:,.0f} per arm, nobody held; "
            f"detects {_points(plan.detectable)}"
        )
    else:
        lines.append(
            f"test share {float(stated.share):.0%}: {plan.in_test:,} of {plan.audience:,} in the arms "
            f"({plan.per_arm:,.0f} per arm); the other {plan.audience - plan.in_test:,} wait for the winner"
        )
    if plan.apple_share is not None and plan.apple_share >= MAX_APPLE_SHARE_FOR_OPENS:
        lines.append(
            f"{plan.apple_share:.0%} of this campaign's openers were Apple proxies: human opens cannot "
            "decide this test (the rule keeps the control); use metric: human_click_rate"
        )
    if not plan.enough and stated.learn_only:
        lines.append(
            f"too small to prove +{stated.lift * 100:.1f} points: the rule will keep the control, and the "
            "figures go to the learning log"
        )
    elif not plan.enough:
        lines.append(
            f"too small: {plan.per_arm:,.0f} per arm detects only {_points(plan.detectable)}, not "
            f"+{stated.lift * 100:.1f}; the rule will keep the control. Consider `share: learn only`: "
            f"{plan.audience / len(test.variants):,.0f} per arm detects {_points(plan.learn_only_detectable)}"
        )
    return lines


def plan_lines(ws: Workspace, campaign: str, audience: int) -> list[str]:
    """describe() for CAMPAIGN's test against AUDIENCE recipients; [] when the copy has no test."""
    test = load_test(load_copy(ws, campaign))
    if test is None:
        return []
    with opened(ws.settings) as engine, engine.connect() as conn:
        return describe(plan_test(conn, campaign, test, audience))
