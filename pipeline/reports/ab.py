"""A/B tests as the reports show them: a run's test and decision, privacy applied, and the list of tests.

The figures are the ones pipeline.experiments.decision stored with the run when it decided
(meta["ab"]["decision"]); `comms report run` (text, JSON, CSV, HTML), `comms ab decide`, the
learning log and the studio all show them through shown_decision, and nothing here computes them
again. In [reports] mode = "aggregate" an arm with fewer than min_cell delivered recipients is
shown as suppressed, as a small breakdown cell is: its n, rate, P(best), expected loss and
guardrail rates would describe a handful of people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from pipeline.reports import queries
from pipeline.reports.glossary import Rate
from pipeline.reports.queries import Scope
from pipeline.storage.models import Run
from pipeline.workspace.settings import Settings

TESTING = "testing"  # the arms collect clicks until the decision time
WAITING = "waiting for decision"  # the decision time has passed (no daemon decided it yet)
DECIDED = "decided"


def shown_arm(arm: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """ARM's stored figures, or only its name and `suppressed` below min_cell in aggregate mode."""
    reports = settings.reports
    if reports.mode == "aggregate" and arm["n"] < reports.min_cell:
        return {"variant": arm["variant"], "suppressed": True}
    return arm


def arm_rate(arm: dict[str, Any]) -> Rate:
    """A stored arm's metric rate as the glossary's Rate, for pct() to show as every rate is shown."""
    return Rate(arm["k"], arm["n"], arm["rate"], arm["low"], arm["high"])


def shown_decision(decision: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A stored decision with each arm as shown_arm shows it."""
    return {**decision, "arms": [shown_arm(arm, settings) for arm in decision["arms"]]}


def ab_view(run: Run, settings: Settings) -> dict[str, Any] | None:
    """RUN's A/B test as frozen at start (without its message sources), its decision time while
    undecided, and its decision as shown_decision shows it; None outside a test."""
    frozen = run.meta.get("ab")
    if not frozen:
        return None
    shown = {key: value for key, value in frozen.items() if key != "templates"}
    if run.ab_decide_at is not None:
        shown["decide_at"] = queries._aware(run.ab_decide_at).isoformat()
    if "decision" in shown:
        shown["decision"] = shown_decision(shown["decision"], settings)
    return shown


@dataclass(frozen=True)
class AbTest:
    """One run's test as the list of tests shows it."""

    run_id: int
    campaign: str
    variants: list[str]
    control: str
    metric: str  # a glossary metric id
    status: str  # TESTING, WAITING or DECIDED
    decision_time: datetime | None  # when it was decided, or when it is due
    winner: str | None
    chosen_by: str | None  # "rule" or "manual"


def status_of(ab: dict[str, Any], now: datetime) -> str:
    """AB (as ab_view shows it) is decided, past its decision time, or still testing."""
    if "decision" in ab:
        return DECIDED
    due = ab.get("decide_at")
    return WAITING if due is not None and datetime.fromisoformat(due) <= now else TESTING


def ab_tests(engine: Engine, settings: Settings, now: datetime) -> list[AbTest]:
    """Every run with an A/B test, the newest first."""
    with engine.connect() as conn:
        runs = queries.runs_in(conn, Scope())
    found = []
    for run in sorted(runs, key=lambda r: r.id or 0, reverse=True):
        ab = ab_view(run, settings)
        if ab is None or run.id is None:
            continue
        decision = ab.get("decision") or {}
        when = decision.get("decided_at") or ab.get("decide_at")
        found.append(
            AbTest(
                run_id=run.id,
                campaign=run.campaign,
                variants=list(ab["variants"]),
                control=ab["control"],
                metric=ab["test"]["metric"],
                status=status_of(ab, now),
                decision_time=datetime.fromisoformat(when) if when else None,
                winner=decision.get("winner"),
                chosen_by=decision.get("chosen_by"),
            )
        )
    return found
