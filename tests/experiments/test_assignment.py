"""Who gets which variant: a pure function of the run and its audience, stratified, at the test share."""

from __future__ import annotations

from pipeline.runs.assignment import assign
from pipeline.storage.outbox import Stratum


def _people(count: int) -> list[Stratum]:
    return [
        Stratum(i + 100, i, ("sales", "finance", "ops")[i % 3], ("a.com", "b.org")[i % 2], seed=False)
        for i in range(count)
    ]


def test_assignment_is_stable_stratified_and_keeps_the_share() -> None:
    people = _people(600)
    first = assign(people, 7, ("a", "b", "c"), 0.3)
    assert assign(list(reversed(people)), 7, ("a", "b", "c"), 0.3) == first  # row order does not matter
    assert sorted(first) != sorted(assign(people, 8, ("a", "b", "c"), 0.3))  # another run, another draw
    by_id = {d: (v, held) for d, v, held in first}
    assert sum(1 for _, held in by_id.values() if not held) == 180
    cells: dict[tuple[str, str], dict[str, int]] = {}
    for person in people:
        variant, _ = by_id[person.delivery_id]
        cell = cells.setdefault((person.department, person.domain), {})
        cell[variant] = cell.get(variant, 0) + 1
    for cell in cells.values():  # every stratum: 30% in the test, the arms within one person
        assert abs(sum(n for v, n in cell.items() if v) - 0.3 * 100) <= 1
        arms = [cell.get(v, 0) for v in "abc"]
        assert max(arms) - min(arms) <= 1


def test_learn_only_puts_everyone_in_an_arm_and_seeds_get_the_control() -> None:
    people = [*_people(10), Stratum(999, 999, "sales", "a.com", seed=True)]
    assigned = assign(people, 1, ("a", "b"), None)
    assert not any(held for _, _, held in assigned)
    assert (999, "a", False) in assigned
    assert sorted(v for d, v, _ in assigned if d != 999) == ["a"] * 5 + ["b"] * 5
