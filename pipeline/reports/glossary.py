"""The one glossary of metrics: every count and rate a report shows is defined here, once.

Every view (run, campaign, departments, period), every format (text, JSON, CSV, HTML) and what
builds on them (the exec report, A/B tests, the studio) takes its figures from `rates()`, so the same
number is the same everywhere. README.md ("Metrics") lists the same formulas for people.

Counts are over one group of deliveries (a run, a department, a period), seed addresses left out:

    snapshotted   deliveries the run snapshotted
    attempted  A  snapshotted − not attempted (skipped, cancelled, or never tried yet)
    accepted   S  the receiving server answered 250
    bounced    B  accepted, then a hard or soft bounce came back (hard_bounced + soft_bounced)
    delivered  D  S − B
    ...and, among the delivered, how many had each kind of engagement (see COUNTS).

Every rate carries a 95% Wilson score interval: a 49-person team is not a 50,000 list, and the
interval says so where a bare percentage would not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Z95 = 1.959963984540054  # the two-sided 95% normal quantile

# Every count a report query returns, with what it counts (the README's table is this one).
COUNTS: dict[str, str] = {
    "snapshotted": "deliveries in the run's snapshot (seed addresses left out)",
    "attempted": "A: snapshotted minus skipped, cancelled and not yet tried",
    "accepted": "S: accepted by the receiving server (250)",
    "rejected": "A − S: refused at SMTP or given up",
    "hard_bounced": "accepted, then a hard bounce",
    "soft_bounced": "accepted, then a soft bounce (and no hard one)",
    "bounced": "B = hard_bounced + soft_bounced",
    "delivered": "D = S − B",
    "complaints": "C: delivered messages marked as spam (feedback loop)",
    "unsubscribes": "U: delivered messages whose recipient unsubscribed from them",
    "pixel_openers": "delivered messages whose pixel loaded at all (machines included)",
    "human_pixel_openers": "delivered messages whose pixel a person loaded (not a privacy proxy)",
    "inferred_openers": "delivered messages with a human open or a human click (a click implies an open)",
    "apple_proxy_openers": "delivered messages opened through Apple Mail Privacy Protection",
    "trackable": "delivered messages with no Apple proxy open (their pixel means what it says)",
    "trackable_openers": "trackable messages with a human open",
    "raw_clickers": "delivered messages with any click (scanners included)",
    "clickers": "delivered messages with a human click",
}


@dataclass(frozen=True)
class Metric:
    id: str
    label: str
    numerator: str  # a COUNTS key, or a difference "a-b" of two
    denominator: str
    formula: str  # as README shows it
    # Alert direction for comparisons: +1 when higher is better, -1 when lower is.
    better: int = 1


METRICS: tuple[Metric, ...] = (
    Metric("delivery_rate", "Delivery rate", "delivered", "attempted", "D / A"),
    Metric("bounce_rate", "Bounce rate", "attempted-delivered", "attempted", "(A − D) / A", -1),
    Metric("complaint_rate", "Complaint rate", "complaints", "delivered", "C / D", -1),
    Metric("unsubscribe_rate", "Unsubscribe rate", "unsubscribes", "delivered", "U / D", -1),
    Metric("human_open_rate", "Human open rate", "inferred_openers", "delivered", "inferred openers / D"),
    Metric("raw_open_rate", "Raw pixel open rate", "pixel_openers", "delivered", "pixel openers / D"),
    Metric(
        "machine_open_share",
        "Machine-open share",
        "pixel_openers-human_pixel_openers",
        "pixel_openers",
        "(pixel openers − human pixel openers) / pixel openers",
        -1,
    ),
    Metric(
        "apple_proxy_share",
        "Apple-proxy share of openers",
        "apple_proxy_openers",
        "pixel_openers",
        "Apple proxy openers / pixel openers",
        -1,
    ),
    Metric(
        "trackable_open_rate",
        "Trackable open rate",
        "trackable_openers",
        "trackable",
        "trackable openers / trackable (D without Apple proxy opens)",
    ),
    Metric("human_click_rate", "Human click rate", "clickers", "delivered", "human clickers / D"),
    Metric(
        "click_to_open", "Click-to-open", "clickers", "inferred_openers", "human clickers / inferred openers"
    ),
    Metric(
        "machine_click_share",
        "Machine-click share",
        "raw_clickers-clickers",
        "raw_clickers",
        "(raw clickers − human clickers) / raw clickers",
        -1,
    ),
)
BY_ID = {metric.id: metric for metric in METRICS}
# Metrics only a tracked run can have (its pixel and links are what measure them).
ENGAGEMENT = frozenset(m.id for m in METRICS if m.id not in ("delivery_rate", "bounce_rate"))


@dataclass(frozen=True)
class Rate:
    """A proportion k/n with its 95% Wilson interval; value, low and high are None when n is 0."""

    k: int
    n: int
    value: float | None
    low: float | None
    high: float | None


def wilson(k: int, n: int, z: float = Z95) -> Rate:
    """K successes in N trials as a Rate with the Wilson score interval (good at small n and near 0)."""
    if n <= 0:
        return Rate(k, n, None, None, None)
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Rate(k, n, p, max(0.0, centre - half), min(1.0, centre + half))


def count_of(counts: Mapping[str, int], expression: str) -> int:
    """A COUNTS key, or "a-b" for the difference of two."""
    first, _, second = expression.partition("-")
    return counts[first] - (counts[second] if second else 0)


def derive(counts: Mapping[str, int]) -> dict[str, int]:
    """The counts a query does not return directly, from those it does."""
    out = dict(counts)
    out["rejected"] = out["attempted"] - out["accepted"]
    out["bounced"] = out["hard_bounced"] + out["soft_bounced"]
    out["delivered"] = out["accepted"] - out["bounced"]
    return out


def rates(counts: Mapping[str, int], *, tracked: bool = True) -> dict[str, Rate | None]:
    """Every METRICS rate of one group; engagement rates are None for an untracked group."""
    return {
        metric.id: (
            None
            if not tracked and metric.id in ENGAGEMENT
            else wilson(count_of(counts, metric.numerator), count_of(counts, metric.denominator))
        )
        for metric in METRICS
    }


def estimated_openers(counts: Mapping[str, int]) -> float | None:
    """Brevo's method: the trackable open rate applied to every delivered message (Apple's included)."""
    if not counts["trackable"]:
        return None
    return counts["trackable_openers"] / counts["trackable"] * counts["delivered"]


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """The pooled two-proportion z statistic of k1/n1 against k2/n2 (None when either n is 0)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 0.0
    return (k1 / n1 - k2 / n2) / spread


def significant(z: float | None, z_crit: float = Z95) -> bool:
    return z is not None and abs(z) >= z_crit


def p_chart_limits(p_bar: float, n: int) -> tuple[float, float]:
    """The 3-sigma limits of a p-chart at sample size N: p̄ ± 3√(p̄(1−p̄)/n), clipped to [0, 1]."""
    if n <= 0:
        return 0.0, 1.0
    sigma = math.sqrt(p_bar * (1 - p_bar) / n)
    return max(0.0, p_bar - 3 * sigma), min(1.0, p_bar + 3 * sigma)


def quantile(sorted_values: list[float], q: float) -> float | None:
    """The Q-quantile of SORTED_VALUES by linear interpolation (numpy's default), None when empty."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


# The engagement curve's checkpoints: share of eventual human clickers who had clicked by then.
CURVE_HOURS = (1, 4, 24, 72)
