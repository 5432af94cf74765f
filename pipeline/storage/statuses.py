"""What state a run and a delivery are in: plain string enums, the words stored in their status columns.

Apart from the tables so that a command which only reads them (`comms runs list`, through
pipeline.storage.listing) can name them without loading SQLModel.
"""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    planned = "planned"
    sending = "sending"
    paused = "paused"
    finished = "finished"
    cancelled = "cancelled"
    failed = "failed"
    missed = "missed"
    blocked = "blocked"  # a gate at run start refused it (no valid approval...): nothing was queued


class DeliveryStatus(enum.StrEnum):
    queued = "queued"  # waiting to be claimed (also: waiting for its retry time)
    sending = "sending"  # claimed by a worker under a lease
    sent = "sent"  # 250 from the server
    failed = "failed"  # permanent refusal or gave up retrying
    skipped = "skipped"  # suppressed or capped at send time; skip_reason says why
    cancelled = "cancelled"  # the run was cancelled before it went
    # An A/B test's rest of the audience, waiting for the decision: never claimed; the decision
    # turns it into queued with the winning variant (pipeline.experiments.decision).
    held = "held"


def no_deliveries() -> dict[str, int]:
    """Deliveries by status before any are counted: every status present, at zero."""
    return {str(status): 0 for status in DeliveryStatus}


# Deliveries still to go. Held ones (an A/B test's rest of the audience) keep their run unfinished
# until the decision.
UNFINISHED = (DeliveryStatus.queued, DeliveryStatus.sending, DeliveryStatus.held)
