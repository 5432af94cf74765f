"""Runs as an operator drives them: start, control (pause, resume, cancel, retry) and rehearsal (dry run,
test send, preview).

May import: delivery and everything below it.
"""
