"""Kept for old habits: `python -m tests.bench_send ARGS` is `comms bench send ARGS` (pipeline.bench.send)."""

from __future__ import annotations

import sys

from pipeline.cli import app

if __name__ == "__main__":
    app(["bench", "send", *sys.argv[1:]])
