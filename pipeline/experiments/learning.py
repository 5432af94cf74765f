"""The team's learning log: every decided A/B test appends one line to reports/ab-log.md, kept in git.

Each line starts ``- YYYY-MM-DD `` (the decision date, UTC) and says, in Markdown, the campaign, the
variants, the metric, each arm's figures (n, rate, P(best)) and the decision with its reason. The
exec report reads these lines; keep to the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.workspace.folders import Workspace

LOG = Path("reports") / "ab-log.md"
_HEADER = (
    "# A/B learning log\n\nOne line per decided test (`comms ab decide`, or the daemon at decision time).\n\n"
)


def log_line(decision: dict[str, Any]) -> str:
    """DECISION (as reports.ab shows it: small arms suppressed in aggregate mode) as the log's one
    Markdown line."""
    arms = "; ".join(
        f"{arm['variant']}: suppressed (fewer than min_cell)"
        if arm.get("suppressed")
        else f"{arm['variant']}: n={arm['n']}, {arm['rate']:.1%}, P(best) {arm['p_best']:.3f}"
        for arm in decision["arms"]
    )
    variants = " vs ".join(f"`{arm['variant']}`" for arm in decision["arms"])
    sent = f"sent to the other {decision['released']}" if decision["released"] else "learn only, nobody held"
    return (
        f"- {decision['decided_at'][:10]} **{decision['campaign']}** (run {decision['run_id']}): "
        f"{variants}, {decision['metric_label'].lower()} — {arms} — "
        f"decision: **{decision['winner']}** ({decision['chosen_by']}; {sent}): {decision['reason']}"
    )


def append(ws: Workspace, decision: dict[str, Any]) -> Path:
    """Append DECISION's line to the workspace's log (made, with a heading, the first time)."""
    path = ws.root / LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    line = " ".join(log_line(decision).split())  # one line, whatever a reason holds
    with path.open("a", encoding="utf-8") as out:
        if out.tell() == 0:
            out.write(_HEADER)
        out.write(line + "\n")
    return path
