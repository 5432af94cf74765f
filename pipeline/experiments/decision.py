"""Deciding an A/B test: each arm's figures, the rule, the release of the held rest, the record.

The rule (README, "A/B tests"): the winner is the arm with

    P(best) ≥ 0.95,  expected loss ≤ 0.1 × the target lift,  every arm at its minimum sample,
    and its unsubscribe and complaint rates within the guardrails;

otherwise the control. The metric is a human one from the reports glossary (human click rate by
default; human open rate only while the arms' Apple-proxy share of openers stays low). The minimum
sample per arm is the sample size for the baseline (the test's stated one, else the campaign's
earlier runs, else the control's observed rate) and the target lift. A person may override the rule
with a reason; the figures are computed and kept all the same.

One transaction records the decision in the run (meta["ab"]["decision"], the decision time cleared)
and turns the held deliveries into queued ones carrying the winner's variant, so a crash cannot
leave one done without the other; the learning log line follows.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from pipeline.assembly.variants import MAX_APPLE_SHARE_FOR_OPENS, Test
from pipeline.errors import ExperimentError
from pipeline.experiments import learning
from pipeline.experiments.planning import past_rate
from pipeline.experiments.stats import posteriors, sample_size
from pipeline.reports import queries
from pipeline.reports.ab import shown_decision
from pipeline.reports.glossary import BY_ID, COUNTS, Rate, count_of, derive, rates
from pipeline.reports.queries import Scope
from pipeline.storage import outbox
from pipeline.storage.models import Run, utcnow
from pipeline.storage.statuses import RunStatus
from pipeline.workspace.folders import Workspace

log = logging.getLogger("comms.experiments")

P_BEST = 0.95
LOSS_SHARE_OF_LIFT = 0.1
RULE = (
    f"winner: P(best) ≥ {P_BEST:.2f}, expected loss ≤ {LOSS_SHARE_OF_LIFT:g} × lift, minimum sample per arm "
    "met, unsubscribe and complaint rates within the guardrails; otherwise the control"
)


@dataclass(frozen=True)
class Arm:
    variant: str
    n: int  # delivered
    k: int  # with the metric's event (human clickers, or human openers)
    rate: float
    low: float  # the rate's 95% Wilson interval (the glossary's, as every report rate has)
    high: float
    p_best: float
    expected_loss: float
    unsubscribe_rate: float
    complaint_rate: float
    apple_proxy_share: float


def test_of(run: Run) -> Test:
    """The test as it was frozen with RUN (the copy may have changed since)."""
    frozen = dict((run.meta.get("ab") or {})["test"])
    frozen["decide_after"] = frozen.pop("decide_after_s")
    return Test.model_validate(frozen)


def arms(conn: Connection, run: Run, metric: str) -> list[Arm]:
    """Each variant's figures in RUN, the control first, from the reports' own counts and rates."""
    assert run.id is not None
    by_variant = {
        key[0]: derive(found)
        for key, found in queries.counts(conn, Scope(run_ids=(run.id,)), [queries.D.c.variant])
    }
    names = list(run.meta["ab"]["variants"])
    zero = derive(dict.fromkeys(COUNTS, 0))  # an arm nobody was delivered to yet
    figures = [by_variant.get(name, zero) for name in names]
    numerator = BY_ID[metric].numerator
    found = posteriors([(count_of(f, numerator), f["delivered"]) for f in figures])
    out = []
    for name, counted, posterior in zip(names, figures, found, strict=True):
        shown = rates(counted)
        interval = shown[metric]
        out.append(
            Arm(
                variant=name,
                n=posterior.n,
                k=posterior.k,
                rate=_value(interval),
                low=_value(interval, "low"),
                high=_value(interval, "high"),
                p_best=posterior.p_best,
                expected_loss=posterior.expected_loss,
                unsubscribe_rate=_value(shown["unsubscribe_rate"]),
                complaint_rate=_value(shown["complaint_rate"]),
                apple_proxy_share=_value(shown["apple_proxy_share"]),
            )
        )
    return out


def _value(rate: Rate | None, side: str = "value") -> float:
    """RATE's value (or its low or high bound); 0 for an arm nobody was delivered to."""
    found = getattr(rate, side) if rate is not None else None
    return float(found) if found is not None else 0.0


def baseline(conn: Connection, run: Run, test: Test, control: Arm) -> tuple[float, str]:
    """The rate the minimum sample is computed from, and where it came from."""
    if test.baseline is not None:
        return test.baseline, "stated in the test"
    earlier = past_rate(conn, run.campaign, test.metric, before=run.created_at)
    if earlier is not None:
        return earlier[0], f"the campaign's earlier runs ({earlier[1]} delivered)"
    return control.rate, "the control's observed rate"


def judge(test: Test, control: str, found: list[Arm], needed: int) -> tuple[str, str]:
    """The rule: (winner, why)."""
    best = max(found, key=lambda arm: arm.p_best)
    small = [arm.variant for arm in found if arm.n < needed]
    loss_limit = LOSS_SHARE_OF_LIFT * test.lift
    if test.metric == "human_open_rate":
        apple = max(arm.apple_proxy_share for arm in found)
        if apple >= MAX_APPLE_SHARE_FOR_OPENS:
            return control, f"Apple-proxy share of openers is {apple:.0%}: human opens cannot decide; control"
    if best.p_best < P_BEST:
        chances = ", ".join(f"{arm.variant} {arm.p_best:.3f}" for arm in found)
        return control, f"no clear winner: P(best) {chances}, none ≥ {P_BEST:.2f}; control"
    if best.variant == control:
        return control, f"the control is best (P(best) {best.p_best:.3f})"
    if best.expected_loss > loss_limit:
        return control, f"{best.variant}'s expected loss {best.expected_loss:.4f} > {loss_limit:.4f}"
    if small:
        return control, f"minimum sample not met: {', '.join(small)} below {needed} delivered per arm"
    guard = test.guardrails
    if best.unsubscribe_rate > guard.unsubscribe_rate:
        return control, (
            f"guardrail: {best.variant}'s unsubscribe rate {best.unsubscribe_rate:.2%} > "
            f"{guard.unsubscribe_rate:.2%}; control"
        )
    if best.complaint_rate > guard.complaint_rate:
        return control, (
            f"guardrail: {best.variant}'s complaint rate {best.complaint_rate:.2%} > "
            f"{guard.complaint_rate:.2%}; control"
        )
    return best.variant, (
        f"P(best) {best.p_best:.3f} ≥ {P_BEST:.2f}, expected loss {best.expected_loss:.4f} ≤ "
        f"{loss_limit:.4f}, every arm ≥ {needed} delivered, guardrails held"
    )


def decide(
    ws: Workspace,
    engine: Engine,
    run_id: int,
    *,
    winner: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Decide RUN_ID's test (by the rule, or WINNER for REASON), release the rest, log it; the decision."""
    now = now or utcnow()
    with engine.begin() as conn:
        run = outbox.lock_run(conn, run_id)
        if run is None:
            raise ExperimentError(f"no run {run_id}")
        ab = dict(run.meta.get("ab") or {})
        if not ab:
            raise ExperimentError(f"run {run_id} ({run.campaign}) has no A/B test")
        if "decision" in ab:
            done = ab["decision"]
            raise ExperimentError(
                f"run {run_id}'s test was decided on {done['decided_at'][:16]}: "
                f"{done['winner']} ({done['reason']})"
            )
        test = test_of(run)
        control = ab["control"]
        found = arms(conn, run, test.metric)
        rate, source = baseline(conn, run, test, found[0])
        needed = sample_size(rate, test.lift)
        if winner is not None:
            if winner not in ab["variants"]:
                raise ExperimentError(
                    f"no variant {winner!r} in run {run_id} (variants: {', '.join(ab['variants'])})"
                )
            if not (reason or "").strip():
                raise ExperimentError("a manual decision needs a reason (--reason)")
            chosen, why, by = winner, f"manual: {reason}", "manual"
        else:
            chosen, why = judge(test, control, found, needed)
            by = "rule"
        released = 0
        if run.status in (RunStatus.sending, RunStatus.paused, RunStatus.finished):
            released = outbox.release_held(conn, run_id, chosen, now)
        decision = {
            "run_id": run_id,
            "campaign": run.campaign,
            "decided_at": now.isoformat(),
            "metric": test.metric,
            "metric_label": BY_ID[test.metric].label,
            "arms": [asdict(arm) for arm in found],
            "winner": chosen,
            "chosen_by": by,
            "reason": why,
            "rule": RULE,
            "lift": test.lift,
            "baseline": rate,
            "baseline_source": source,
            "needed_per_arm": needed,
            "released": released,
        }
        outbox.set_run_meta(conn, run_id, {**run.meta, "ab": {**ab, "decision": decision}}, ab_decide_at=None)
    learning.append(ws, shown_decision(decision, ws.settings))
    log.info("run %s: A/B test decided: %s (%s)", run_id, chosen, why)
    return decision


def decide_due(ws: Workspace, engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    """Decide every test whose decision time has come (the daemon calls this every few seconds)."""
    now = now or utcnow()
    with engine.connect() as conn:
        due = outbox.tests_due(conn, now)
    decided = []
    for run_id in due:
        try:
            decided.append(decide(ws, engine, run_id, now=now))
        except ExperimentError as exc:  # decided meanwhile by `comms ab decide`
            log.info("run %s: %s", run_id, exc)
    return decided
