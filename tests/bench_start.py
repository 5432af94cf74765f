"""Benchmark: what starting `comms` costs, for `comms --help` and `comms runs list`.

    python -m tests.bench_start [--repeat N]

The workspace is a fresh one from the sample (`comms init`) with a migrated SQLite database holding
two runs of the sample campaign (180 deliveries each). Each command runs REPEAT times as a subprocess;
printed are its CPU time (user + sys) and peak resident memory, median with the lowest and highest,
and the load average they were taken under (CPU time grows on a loaded machine). The goal on a
2-core machine: under 0.3 s of CPU and 40 MB.

The commands run with bytecode cached, as after `pip install` (which compiles it): a warm-up run
writes it, even where PYTHONDONTWRITEBYTECODE is set (some sandboxes set it, and every command
would then compile comms from source, a tenth of a second more).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.cli import COMMS

COMMANDS = (("--help",), ("runs", "list"))


def make_workspace(root: Path) -> None:
    """The sample workspace with its customers imported, one run cancelled and one queued (nothing is sent).

    Run in a process of its own: a child's peak memory counts from its parent's size at the fork,
    so the process that measures must stay small.
    """
    from pipeline.runs.control import cancel_run
    from pipeline.runs.start import start_run
    from pipeline.storage.engines import upgrade
    from pipeline.workspace.folders import Workspace
    from pipeline.workspace.init import init_workspace
    from tests.support.workspace import CAMPAIGN, SECRET, configure

    os.environ["COMMS_SECRET"] = SECRET  # starting a run signs its links

    init_workspace(root)
    configure(root, {"approvals": "required = false", "checks": "spamassassin = false"})
    upgrade(f"sqlite:///{root / 'comms.db'}")
    _run(root, "contacts", "import", "audiences/customers.csv", "--list", "customers")
    first = start_run(Workspace.open(root), CAMPAIGN, started_by="bench")
    cancel_run(Workspace.open(root), first.id or 0)
    start_run(Workspace.open(root), CAMPAIGN, started_by="bench", again=True)


def _run(root: Path, *args: str) -> tuple[float, int]:
    """One `comms ARGS` in ROOT: its CPU seconds and peak RSS in KB (from wait4, so its own only)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    process = subprocess.Popen([*COMMS, *args], cwd=root, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"comms {' '.join(args)} exited {process.returncode}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "ws"
        code = "import sys; from pathlib import Path; from tests.bench_start import make_workspace; "
        subprocess.run([sys.executable, "-c", code + "make_workspace(Path(sys.argv[1]))", root], check=True)
        for command in COMMANDS:  # compiled bytecode in place before the first measurement
            _run(root, *command)
        for command in COMMANDS:
            figures = [_run(root, *command) for _ in range(args.repeat)]
            cpu = sorted(seconds for seconds, _ in figures)
            rss = sorted(kb / 1024 for _, kb in figures)
            print(
                f"comms {' '.join(command):10}"
                f"  CPU {statistics.median(cpu):.2f} s ({cpu[0]:.2f}-{cpu[-1]:.2f})"
                f"  max RSS {statistics.median(rss):.1f} MB ({rss[0]:.1f}-{rss[-1]:.1f})"
                f"  over {args.repeat} runs"
            )
    print("load average " + " ".join(f"{load:.2f}" for load in os.getloadavg()))


if __name__ == "__main__":
    main()
