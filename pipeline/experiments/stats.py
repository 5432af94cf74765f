"""The statistics of an A/B test: sample size before sending, posteriors and the risk of a choice after.

Before sending (two proportions, two-sided test at confidence 1 − α with power 1 − β):

    n per arm = ( z(1−α/2) · √(2 p̄ (1 − p̄)) + z(1−β) · √(p₁(1 − p₁) + p₂(1 − p₂)) )² / (p₂ − p₁)²

with p₁ the baseline, p₂ = p₁ + lift and p̄ = (p₁ + p₂) / 2: 8% → 10% at 95% / 80% needs 3,213 per
arm. The smallest detectable lift of a given audience is that formula solved for the lift.

After sending, each arm's rate has a Beta posterior from a uniform Beta(1, 1) prior:

    p_i ~ Beta(1 + k_i, 1 + n_i − k_i)       (k_i successes of n_i delivered)

    P(best_i)        = ∫ f_i(x) · Π_{j≠i} F_j(x) dx
    expected loss_i  = E[max_j p_j − p_i] = E[max_j p_j] − E[p_i],  E[max_j p_j] = ∫ (1 − Π_j F_j(x)) dx

f and F the Beta densities and distribution functions. Both integrals are computed exactly enough
(±1e-4) by the trapezoid rule on a grid over the part of [0, 1] where the posteriors have mass.
scipy is imported only here and only when a test is planned or decided, so `comms --help` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95
POWER = 0.80
_GRID = 20001


def _z(probability: float) -> float:
    return NormalDist().inv_cdf(probability)


def _needed(p1: float, p2: float, confidence: float, power: float) -> float:
    mean = (p1 + p2) / 2
    alpha = _z(1 - (1 - confidence) / 2) * math.sqrt(2 * mean * (1 - mean))
    beta = _z(power) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return (alpha + beta) ** 2 / (p2 - p1) ** 2


def sample_size(baseline: float, lift: float, confidence: float = CONFIDENCE, power: float = POWER) -> int:
    """Deliveries needed per arm to detect BASELINE → BASELINE + LIFT (absolute)."""
    if lift <= 0 or not 0 <= baseline < 1:
        raise ValueError("a baseline in [0, 1) and a positive lift")
    return math.ceil(_needed(baseline, min(baseline + lift, 1.0), confidence, power))


def detectable_lift(
    baseline: float, per_arm: float, confidence: float = CONFIDENCE, power: float = POWER
) -> float | None:
    """The smallest absolute lift PER_ARM deliveries per arm can detect from BASELINE (None: not even
    100 points, or no one)."""
    if per_arm <= 0:
        return None
    low, high = 1e-6, 1.0 - baseline
    if high <= low or _needed(baseline, baseline + high, confidence, power) > per_arm:
        return None
    for _ in range(60):  # bisection: needed() falls as the lift grows
        middle = (low + high) / 2
        if _needed(baseline, baseline + middle, confidence, power) > per_arm:
            low = middle
        else:
            high = middle
    return high


@dataclass(frozen=True)
class Posterior:
    """One arm: K successes of N, its Beta(1 + k, 1 + n − k) posterior, P(best) and expected loss."""

    k: int
    n: int
    mean: float
    p_best: float
    expected_loss: float


def posteriors(arms: Sequence[tuple[int, int]]) -> list[Posterior]:
    """Each arm's (successes, trials) as its posterior, with P(best) and expected loss among ARMS."""
    import numpy as np
    from scipy.stats import beta

    shapes = [(1 + k, 1 + n - k) for k, n in arms]
    # The grid covers where any posterior has mass (down to 1e-12 in either tail).
    low = min(float(beta.ppf(1e-12, a, b)) for a, b in shapes)
    high = max(float(beta.isf(1e-12, a, b)) for a, b in shapes)
    x = np.linspace(low, high, _GRID)
    pdf = np.array([beta.pdf(x, a, b) for a, b in shapes])
    cdf = np.array([beta.cdf(x, a, b) for a, b in shapes])
    everyone = np.prod(cdf, axis=0)
    # E[max] = low + ∫_low^high (1 − Π F_j) dx; below LOW every F_j is 0, above HIGH every F_j is 1.
    expected_max = low + float(np.trapezoid(1 - everyone, x))
    found = []
    for i, (k, n) in enumerate(arms):
        others = np.prod(np.delete(cdf, i, axis=0), axis=0) if len(arms) > 1 else np.ones_like(x)
        p_best = float(np.trapezoid(pdf[i] * others, x))
        mean = shapes[i][0] / (shapes[i][0] + shapes[i][1])
        found.append(Posterior(k, n, mean, min(1.0, max(0.0, p_best)), max(0.0, expected_max - mean)))
    return found
