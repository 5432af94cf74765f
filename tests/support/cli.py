"""Running `comms` as a person does: a process of its own, its exit code, stdout and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.zygote import Forked, Stream, text, zygote

# The command as a person runs it, from whichever tree PYTHONPATH (or the install) provides.
COMMS = [sys.executable, "-c", "from pipeline.cli import main; main()"]


def comms(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`comms ARGS` in CWD; INPUT is what the person types on standard input."""
    typed = None if input is None else input.encode()
    result = comms_bytes(*args, cwd=cwd, env=env, input=typed, timeout=timeout)
    return subprocess.CompletedProcess(
        result.args, result.returncode, text(result.stdout), text(result.stderr)
    )


def comms_bytes(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """comms() for a program's bytes: a message an MTA pipes in, a message written out.

    The process is forked from a zygote that has the library imported (tests/support/zygote.py)."""
    code, out, err = zygote().run(list(args), cwd, _env(env), input, timeout)
    return subprocess.CompletedProcess([*COMMS, *args], code, out, err)


def start_comms(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdout: Stream = subprocess.DEVNULL,
    stderr: Stream = subprocess.DEVNULL,
) -> Forked:
    """`comms ARGS` in CWD, in the environment comms() gives it, left running for the test to wait
    on, signal or kill; STDOUT and STDERR a file or descriptor (by default /dev/null)."""
    return zygote().start(list(args), _env(env), cwd=cwd, stdout=stdout, stderr=stderr)


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    full = {**os.environ, "COLUMNS": "200", **(extra or {})}
    full.pop("COMMS_WORKSPACE", None)
    return full


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# Printed last, at exit, so that it comes even after a command's sys.exit.
_REPORT_PACKAGES = (
    "import atexit, sys; atexit.register(lambda: print("
    "'\\n' + ' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)); "
)


def _reporting(code: str, argv: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-c", _REPORT_PACKAGES + code, *argv]


def fresh_interpreter(code: str, *argv: str) -> subprocess.Popen[str]:
    """CODE (with ARGV) started in a new interpreter, as a person starts one, not in the zygote,
    which has the library loaded; its standard error ends with the top-level packages it had
    loaded by its exit (loaded_packages)."""
    return subprocess.Popen(
        _reporting(code, argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def loaded_packages(stderr: str) -> set[str]:
    return set(stderr.splitlines()[-1].split())


def in_fresh_interpreter(code: str, *argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """CODE (with ARGV) run to its end in a new interpreter: what it printed, and the packages it loaded."""
    result = subprocess.run(_reporting(code, argv), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result, loaded_packages(result.stderr)
