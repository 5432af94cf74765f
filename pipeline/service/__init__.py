"""The long-running processes: the daemon and its workers, the leader lock, Prometheus metrics and log
lines.

May import: timetable, feedback and everything below them. (Log lines are pipeline.logs, at the bottom,
since every layer writes them.)
"""
