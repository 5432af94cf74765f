"""A/B tests: the sample a test needs before sending, the decision after, and the learning log.

    stats.py      sample size, smallest detectable lift, Beta posteriors, P(best), expected loss
    planning.py   what `comms plan` and `comms send --dry-run` say about a campaign's test
    decision.py   the decision at decision time (daemon) or by `comms ab decide`: figures, rule, release
    learning.py   one line per decided test in the workspace's reports/ab-log.md

The variants and the test are written in the copy (pipeline.assembly.variants); the assignment is
frozen in the outbox at run start (pipeline.runs.assignment); held deliveries wait there until the
decision releases them with the winning variant. Figures come from the reports glossary and queries,
so an arm's human click rate here is the one `comms report run` shows.

May import: timetable, feedback, reports and everything below them; only cli and service import it.
"""
