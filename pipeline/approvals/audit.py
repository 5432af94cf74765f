"""The audit the exec report reads: runs sent without an approval, and approvals voided by later edits."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.approvals.content import campaign_content
from pipeline.approvals.ledger import changed_parts
from pipeline.errors import CommsError
from pipeline.storage import approvals as store
from pipeline.storage.engines import opened
from pipeline.storage.models import Approval, Run
from pipeline.workspace.folders import Workspace


@dataclass(frozen=True)
class VoidedApproval:
    approval: Approval
    current_hash: str | None  # None: the campaign no longer assembles (or is gone)
    changed: list[str]  # what changed since, in words, where the approval kept its parts
    reapproved: bool  # a later approval covers the campaign as it is now


@dataclass(frozen=True)
class ApprovalAudit:
    sent_without_approval: list[Run]  # runs that queued recipients with no approval (approvals off)
    voided: list[VoidedApproval]  # approvals whose content is no longer what the campaign would send


def approval_audit(ws: Workspace) -> ApprovalAudit:
    """Every run sent without an approval, and every approval a later change to its campaign voided."""
    with opened(ws.settings) as engine, engine.connect() as conn:
        unapproved = store.runs_sent_without_approval(conn)
        every = store.approvals_of(conn)
    current: dict[str, tuple[str | None, dict[str, str]]] = {}
    voided = []
    for approval in every:
        if approval.campaign not in current:
            try:
                content = campaign_content(ws, approval.campaign)
                current[approval.campaign] = (content.hash, content.parts)
            except CommsError:
                current[approval.campaign] = (None, {})
        now_hash, parts = current[approval.campaign]
        if approval.content_hash == now_hash:
            continue
        reapproved = any(a.campaign == approval.campaign and a.content_hash == now_hash for a in every)
        voided.append(VoidedApproval(approval, now_hash, changed_parts(approval.parts, parts), reapproved))
    return ApprovalAudit(unapproved, voided)
