"""Score the bounce reader on the fixture corpus: kinds right and recipients exact, by format family.

    python -m tests.feedback.score_bounces [-v]

Each fixture under tests/feedback/bounces/ is listed in manifest.json with its source, its expected
kind (hard, soft, sender, delayed, complaint, auto-reply), the failed recipients (for a complaint, the
complaining address when the report names it) and the enhanced status. -v prints every miss.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pipeline.feedback.dsn import parse_message, read_report

CORPUS = Path(__file__).parent / "bounces"
_WORST_FIRST = ("hard", "sender", "soft", "delayed")


@dataclass(frozen=True)
class Reading:
    kind: str
    recipients: tuple[str, ...]
    status: str | None


def reading(raw: bytes) -> Reading:
    """What the reader made of RAW, in the manifest's terms ("none": not a report at all)."""
    report = read_report(parse_message(raw))
    if report is None:
        return Reading("none", (), None)
    if report.kind != "bounce":
        complainant = getattr(report, "complainant", None)
        return Reading(report.kind, (complainant.lower(),) if complainant else (), None)
    failures = sorted(report.failures, key=lambda f: _WORST_FIRST.index(str(f.severity)))
    if not failures:
        return Reading("none", (), None)
    recipients = tuple(sorted({f.recipient.lower() for f in failures if f.recipient}))
    return Reading(str(failures[0].severity), recipients, failures[0].status)


def manifest() -> list[dict[str, object]]:
    return json.loads((CORPUS / "manifest.json").read_text())  # type: ignore[no-any-return]


def kind_right(expected: str, got: str) -> bool:
    # An auto-reply the reader leaves alone as "not a report" is read right.
    return got == expected or (expected == "auto-reply" and got == "none")


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for entry in manifest():
        got = reading((CORPUS / str(entry["file"])).read_bytes())
        expected_recipients = tuple(sorted(str(r).lower() for r in entry["recipients"]))  # type: ignore[attr-defined]
        right = kind_right(str(entry["kind"]), got.kind)
        exact = got.recipients == expected_recipients
        status = entry["status"] is None or got.status == entry["status"]
        row = totals[str(entry["family"])]
        row[0] += 1
        row[1] += right
        row[2] += exact
        row[3] += status
        if verbose and not (right and exact and status):
            print(
                f"MISS {entry['file']}: expected {entry['kind']} {list(expected_recipients)} "
                f"{entry['status']}, got {got.kind} {list(got.recipients)} {got.status}"
            )
    print(f"{'family':<16} {'N':>3} {'kinds':>6} {'recipients':>11} {'status':>7}")
    sums = [0, 0, 0, 0]
    for family in sorted(totals):
        n, right, exact, status = totals[family]
        sums = [a + b for a, b in zip(sums, totals[family], strict=True)]
        print(f"{family:<16} {n:>3} {right:>6} {exact:>11} {status:>7}")
    n, right, exact, status = sums
    print(f"{'all':<16} {n:>3} {right:>6} {exact:>11} {status:>7}")
    print(f"kinds right {right}/{n}, recipients exact {exact}/{n}, status right {status}/{n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
