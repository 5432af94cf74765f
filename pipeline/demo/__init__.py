"""Demo data for the sample workspace: synthetic history so that reports have something to show.

    history.py   `comms demo seed-history`: quarters of runs, deliveries and events, clearly marked

Everything written is marked as demo (contacts at demo.example, runs started by
"demo:seed-history"), the exec report footnotes it, and `--remove` takes it all out again.

May import: reports (for its demo marker) and everything below it; sits beside service and bench.
"""
