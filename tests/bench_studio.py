"""Benchmark: how current the studio keeps an open page, on a copy of the sample workspace.

    python -m tests.bench_studio [--repeat N]

Prints the median and worst of: the campaign list (every campaign assembled and checked), one
campaign page (composed for the [preview] contact, checked), and the time from saving the copy file
to the `change` event on the page's event stream. A saved file is on screen after the event plus
one campaign page (the page fetches itself again), which is the "within a second" goal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from pipeline.storage.engines import upgrade
from pipeline.workspace.init import init_workspace
from tests.studio.conftest import serve_studio


def _timed(url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        httpx.get(url, timeout=120).raise_for_status()
        times.append(time.perf_counter() - started)
    return times


def _save_to_event(url: str, copy: Path, repeat: int) -> list[float]:
    times = []
    with httpx.stream("GET", f"{url}/events", timeout=120) as stream:
        lines = stream.iter_lines()
        while next(lines) != "event: ready":
            pass
        for i in range(repeat):
            started = time.perf_counter()
            copy.write_text(copy.read_text(encoding="utf-8") + f"\nEdit {i}.\n", encoding="utf-8")
            while next(lines) != "event: change":
                pass
            times.append(time.perf_counter() - started)
            time.sleep(0.3)  # past the debounce, so each save is its own event
    return times


def _show(label: str, times: list[float]) -> None:
    print(f"{label:<44} median {statistics.median(times) * 1000:7.0f} ms   worst {max(times) * 1000:7.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        init_workspace(root)
        os.environ["COMMS_DATABASE_URL"] = f"sqlite:///{tmp}/comms.db"
        upgrade(os.environ["COMMS_DATABASE_URL"])
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        with serve_studio(root) as url:
            _show("campaign list (4 campaigns checked)", _timed(url + "/", args.repeat))
            _show("campaign page (spring-launch)", _timed(url + "/campaigns/spring-launch", args.repeat))
            _show(
                "save -> change event",
                _save_to_event(url, root / "templates/copy/spring-launch.md", args.repeat),
            )


if __name__ == "__main__":
    main()
