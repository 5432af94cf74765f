"""Approvals recorded twice: a row in the database, and a line appended to the workspace's approvals.log.

The log is what a team reviews in git; the database is what the gate and the audit query. A log line
committed elsewhere (the lead approves on a laptop, the daemon's server pulls) is taken into the
database the first time the campaign is looked at, and counts like any other — if its approver is
one of `[approvals] approvers` today. Whoever can commit to the workspace can also turn approvals
off in comms.toml, so the log is trusted exactly as far as the repository is.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from pipeline.approvals.content import Content, campaign_content
from pipeline.assembly.campaign import check_campaign
from pipeline.errors import ApprovalError
from pipeline.storage import approvals as store
from pipeline.storage.engines import opened
from pipeline.storage.models import Approval, utcnow
from pipeline.workspace.folders import Workspace

_PARTS = {"content": "the copy, layout or brand", "test": "the A/B test"}


def approve(
    ws: Workspace, campaign: str, *, by: str, note: str = "", now: datetime | None = None
) -> Approval:
    """Approve CAMPAIGN as it is now, as BY; refused when BY is not one of `[approvals] approvers`."""
    who = by.strip()
    if not who:
        raise ApprovalError("an approval needs the approver's name or email (--as NAME)")
    rules = ws.settings.approvals
    if not rules.may_approve(who):
        raise ApprovalError(
            f"{who} may not approve: [approvals] approvers are {', '.join(rules.approvers)}",
            path="comms.toml",
        )
    content = campaign_content(ws, campaign)
    check_campaign(ws, content.campaign)  # nobody signs off a campaign that cannot be rendered
    approval = Approval(
        campaign=campaign,
        content_hash=content.hash,
        approver=who,
        note=note.strip(),
        approved_at=now or utcnow(),
        git_commit=_committed_as(ws, content),
        parts=content.parts,
        sources=content.sources,
    )
    with opened(ws.settings) as engine, engine.begin() as conn:
        approval.id = store.add_approval(conn, approval)
        _append_log(ws, approval)  # inside the transaction: no row without its line
    return approval


@dataclass(frozen=True)
class ApprovalState:
    """Whether CONTENT may be sent: the approval it goes under, or why not (one line, with what to do)."""

    content: Content
    approval: Approval | None
    reason: str


def verdict(
    ws: Workspace,
    conn: Connection,
    campaign: str,
    audience: str | None = None,
    *,
    content: Content | None = None,
) -> ApprovalState:
    """The valid approval of CAMPAIGN's current CONTENT (hashed now, unless the caller has it) for
    AUDIENCE (when given), or the reason there is none; approvals.log lines not yet in the database
    are taken in first."""
    content = content or campaign_content(ws, campaign)
    take_in_log(ws, conn)
    rules = ws.settings.approvals
    history = [a for a in store.approvals_of(conn, campaign) if rules.may_approve(a.approver)]
    command = f"`comms approve {campaign}`"
    if audience is not None and audience not in content.audiences:
        covered = ", ".join(content.audiences)
        return ApprovalState(
            content,
            None,
            f"{campaign} goes to {covered}, not {audience}: name {audience} in its copy or a schedule, "
            f"then run {command}",
        )
    for approval in history:
        if approval.content_hash == content.hash:
            return ApprovalState(content, approval, "")
    if not history:
        return ApprovalState(content, None, f"{campaign} has no approval: run {command}")
    last = history[0]
    changed = changed_parts(last.parts, content.parts)
    what = f" ({', '.join(changed)} changed)" if changed else ""
    return ApprovalState(
        content,
        None,
        f"{campaign} was approved by {last.approver} on {last.approved_at:%Y-%m-%d %H:%M} UTC, but it has "
        f"changed since{what}: review and run {command}",
    )


def changed_parts(approved: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """The parts that differ, in words ("the copy, layout or brand", "schedule x", "audience y")."""
    if not approved:
        return []  # taken in from approvals.log, which keeps only the whole hash
    keys = sorted(set(approved) | set(now), key=lambda k: (k != "content", k))
    return [_PARTS.get(k, k.replace(":", " ")) for k in keys if approved.get(k) != now.get(k)]


# -- approvals.log ---------------------------------------------------------------------------------


def _line(approval: Approval) -> str:
    assert approval.approved_at is not None
    entry = {
        "at": approval.approved_at.isoformat(),
        "campaign": approval.campaign,
        "hash": approval.content_hash,
        "by": approval.approver,
        "note": approval.note,
        "commit": approval.git_commit,
    }
    return json.dumps(entry, ensure_ascii=False)


def _append_log(ws: Workspace, approval: Approval) -> None:
    with ws.approvals_log.open("a", encoding="utf-8") as log:
        log.write(_line(approval) + "\n")


def read_log(ws: Workspace) -> list[Approval]:
    """Every approval in approvals.log; ApprovalError names the line that is not one."""
    path = ws.approvals_log
    if not path.is_file():
        return []
    found = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry: dict[str, Any] = json.loads(raw)
            found.append(
                Approval(
                    campaign=str(entry["campaign"]),
                    content_hash=str(entry["hash"]),
                    approver=str(entry["by"]),
                    note=str(entry.get("note") or ""),
                    approved_at=datetime.fromisoformat(entry["at"]),
                    git_commit=entry.get("commit"),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ApprovalError(
                f"not an approval line ({exc}); this file is only appended to by `comms approve`",
                path=ws.relative(path),
                line=number,
            ) from None
    return found


def take_in_log(ws: Workspace, conn: Connection) -> int:
    """Record the approvals.log lines the database does not have yet; returns how many."""
    known = store.approval_keys(conn)
    new = [a for a in read_log(ws) if (a.campaign, a.content_hash, a.approver, a.approved_at) not in known]
    for approval in new:
        store.add_approval(conn, approval)
    return len(new)


def _committed_as(ws: Workspace, content: Content) -> str | None:
    """HEAD, when the workspace is a git repository and the approved files are committed unchanged."""
    files = list(content.sources)
    try:
        status = git(ws, "status", "--porcelain", "--", *files)
        return git(ws, "rev-parse", "HEAD").strip() if not status.strip() else None
    except (OSError, subprocess.CalledProcessError):
        return None  # not a repository, no commits yet, or no git


def git(ws: Workspace, *args: str) -> str:
    """`git ARGS` in the workspace; raises OSError (no git) or CalledProcessError (not a repository...)."""
    done = subprocess.run(
        ["git", "-C", str(ws.root), *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout
