"""Benchmarks that print figures (`comms bench ...`): never timed assertions in tests.

Sits above runs (it starts and dispatches real runs) and below the CLI; nothing but the CLI imports it.
"""
