"""The statistics against known values and against a seeded Monte Carlo of the same posteriors."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.experiments.stats import detectable_lift, posteriors, sample_size


def test_sample_size_for_8_to_10_percent_is_about_3200_per_arm() -> None:
    assert sample_size(0.08, 0.02) == 3213  # the textbook formula; G*Power and Evan Miller give ~3,200
    assert sample_size(0.10, 0.30) == 32
    assert sample_size(0.08, 0.01) > 4 * sample_size(0.08, 0.02) * 0.9  # half the lift, ~4x the sample


def test_a_49_person_team_detects_only_about_33_points() -> None:
    lift = detectable_lift(0.08, 49 / 2)
    assert lift is not None and 0.31 <= lift <= 0.36
    assert sample_size(0.08, lift) <= 25  # consistent with the sample size it inverts
    assert detectable_lift(0.08, 0) is None


@pytest.mark.parametrize(
    "arms",
    [
        [(80, 1000), (100, 1000)],
        [(8, 40), (8, 40)],
        [(800, 10000), (850, 10000), (790, 10000)],
        [(0, 10), (1, 10)],
        [(3, 49), (9, 49)],
    ],
)
def test_p_best_and_expected_loss_agree_with_a_seeded_monte_carlo(arms: list[tuple[int, int]]) -> None:
    found = posteriors(arms)
    rng = np.random.default_rng(20261201)
    draws = np.array([rng.beta(1 + k, 1 + n - k, 400_000) for k, n in arms])
    best = np.argmax(draws, axis=0)
    for i, posterior in enumerate(found):
        assert abs(posterior.p_best - float(np.mean(best == i))) <= 0.005
        loss = float(np.mean(draws.max(axis=0) - draws[i]))
        assert abs(posterior.expected_loss - loss) <= max(0.0005, 0.02 * loss)
    assert abs(sum(p.p_best for p in found) - 1) < 1e-3


def test_known_posteriors() -> None:
    tie, other = posteriors([(8, 40), (8, 40)])
    assert tie.p_best == pytest.approx(0.5, abs=1e-4) and tie.expected_loss == pytest.approx(
        other.expected_loss
    )
    low, high = posteriors([(4, 40), (24, 40)])
    assert high.p_best > 0.9999 and high.expected_loss < 1e-5
    assert low.mean == pytest.approx(5 / 42)
