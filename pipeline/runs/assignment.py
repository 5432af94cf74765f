"""Who gets which A/B variant: stable, stratified, decided once at snapshot and frozen in the outbox.

Each delivery's place comes from a hash of (run, contact), so the assignment depends on nothing but
the run and its audience, never on the order rows come back in or on a restart. Within each stratum
(recipient department x mailbox domain) deliveries are taken in hash order; walking the strata one
after the other, every 1/share-th delivery joins the test and test deliveries are dealt to the arms
in turn. So each stratum is represented in the test at the test share, and in every arm about
equally: a finance-heavy arm cannot happen by chance. The rest of the audience is held.

Seed addresses (left out of every rate) get the control at once: they watch placement, not the test.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from pipeline.storage.outbox import Stratum


def _order(run_id: int, stratum: Stratum) -> tuple[str, str, str]:
    key = f"{run_id}:{stratum.contact_id if stratum.contact_id is not None else -stratum.delivery_id}"
    return stratum.department, stratum.domain, hashlib.sha256(key.encode()).hexdigest()


def assign(
    strata: Sequence[Stratum], run_id: int, variants: Sequence[str], share: float | None
) -> list[tuple[int, str, bool]]:
    """(delivery id, variant, held) for every delivery; SHARE of the audience goes to the test arms
    (None: learn only, everyone is in an arm and nobody is held)."""
    assigned: list[tuple[int, str, bool]] = []
    people = sorted((s for s in strata if not s.seed), key=lambda s: _order(run_id, s))
    dealt = 0
    for position, stratum in enumerate(people):
        in_test = share is None or math.floor((position + 1) * share) > math.floor(position * share)
        if in_test:
            assigned.append((stratum.delivery_id, variants[dealt % len(variants)], False))
            dealt += 1
        else:
            assigned.append((stratum.delivery_id, "", True))
    assigned += [(s.delivery_id, variants[0], False) for s in strata if s.seed]
    return assigned
