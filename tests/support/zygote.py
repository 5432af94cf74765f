"""A warm start for the suite's `comms` processes: one process imports the library once, then forks
a fresh `comms` for every call, so that a call costs the command's work and not its imports (two
seconds of CPU a call on a slow 2-core machine, most of the suite's time).

Each call is still a process of its own, started as `python -c "from pipeline.cli import main;
main()" ARGS` starts one: its own working directory, environment, argv, standard streams, exit
code and traceback, and the interpreter's normal shutdown. Imported before the fork are the
library and its third-party packages only; `pipeline.cli`, whose consoles read COLUMNS and ask
whether they write to a terminal as they are imported, is imported afresh in each call. Tests
that read a running `comms` through a pipe (the studio's first line, a pipe into another program,
the tracking server's outage test) start a real interpreter instead.

The parts: the zygote (`python zygote.py SOCKET`) forks a waiter for each request; the waiter
forks the `comms` process, tells the caller its pid, waits for it and reports its exit code. The
zygote ends when its standard input (a pipe from the test process) closes.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import locale
import os
import pkgutil
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import IO, Any, NoReturn

# Imported on demand by the commands that need them; worth having warm.
_HEAVY = (
    "matplotlib.figure",
    "matplotlib.backends.backend_svg",
    "weasyprint",
    "numpy",
    "scipy.stats",
    "watchfiles",
    "uvicorn",
    "psycopg",
)
_MAX_REQUEST = 1 << 20


# -- the caller's side (the test process) ---------------------------------------------------------


class Zygote:
    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="comms-zygote-")
        self.path = os.path.join(self.folder, "socket")
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline() != b"ready\n":
            raise RuntimeError("the comms zygote did not start")
        atexit.register(self.close)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(
        self,
        args: list[str],
        env: dict[str, str],
        cwd: Path | None = None,
        stdout: Stream = None,
        stderr: Stream = None,
    ) -> Forked:
        """`comms ARGS` started, as subprocess.Popen starts it (standard input from /dev/null; STDOUT
        and STDERR a file, a descriptor or subprocess.DEVNULL, the caller's own streams if None)."""
        streams = [os.open(os.devnull, os.O_RDONLY)]
        for given, default in ((stdout, 1), (stderr, 2)):
            streams.append(
                os.open(os.devnull, os.O_WRONLY)
                if given == subprocess.DEVNULL
                else os.dup(_fd(given, default))
            )
        try:
            return self._fork(args, env, cwd, streams)
        finally:
            for fd in streams:
                os.close(fd)

    def run(
        self, args: list[str], cwd: Path, env: dict[str, str], input: bytes | None, timeout: float
    ) -> tuple[int, bytes, bytes]:
        """(exit code, stdout, stderr) of `comms ARGS`; TimeoutExpired (and the process killed)
        after TIMEOUT seconds, as subprocess.run does."""
        stdin_r, stdin_w = os.pipe() if input is not None else (os.open(os.devnull, os.O_RDONLY), -1)
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        try:
            process = self._fork(args, env, cwd, [stdin_r, stdout_w, stderr_w])
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        out: list[bytes] = []
        err: list[bytes] = []
        threads = [
            threading.Thread(target=_drain, args=(stdout_r, out)),
            threading.Thread(target=_drain, args=(stderr_r, err)),
        ]
        if input is not None:
            threads.append(threading.Thread(target=_feed, args=(stdin_w, input)))
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            for thread in threads:
                thread.join()
            raise subprocess.TimeoutExpired(args, timeout, b"".join(out), b"".join(err)) from None
        for thread in threads:  # a process it started may still hold its streams open
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            raise subprocess.TimeoutExpired(args, timeout, b"".join(out), b"".join(err))
        return code, b"".join(out), b"".join(err)

    def _fork(self, args: list[str], env: dict[str, str], cwd: Path | None, streams: list[int]) -> Forked:
        request = json.dumps({"args": args, "cwd": os.path.abspath(cwd or "."), "env": env}).encode()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.connect(self.path)
        socket.send_fds(conn, [request], streams)
        return Forked(args, conn, int(conn.recv(64)))


Stream = IO[Any] | int | None


def _fd(stream: Stream, default: int) -> int:
    if stream is None:
        return default
    return stream if isinstance(stream, int) else stream.fileno()


class Forked:
    """A `comms` process from the zygote, with the part of Popen's interface the tests use."""

    def __init__(self, args: list[str], conn: socket.socket, pid: int) -> None:
        self.args = args
        self.pid = pid
        self.returncode: int | None = None
        self._conn = conn  # its waiter sends the exit code here

    def poll(self) -> int | None:
        if self.returncode is None:
            self._conn.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                self._ended(self._conn.recv(64))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._conn.settimeout(timeout)
            try:
                self._ended(self._conn.recv(64))
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
        assert self.returncode is not None
        return self.returncode

    def _ended(self, code: bytes) -> None:
        self.returncode = int(code)
        self._conn.close()

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _drain(fd: int, into: list[bytes]) -> None:
    with open(fd, "rb", closefd=True) as stream:
        while chunk := stream.read1(65536):
            into.append(chunk)


def _feed(fd: int, data: bytes) -> None:
    # It may exit without reading, as a process may.
    with open(fd, "wb", closefd=True) as stream, contextlib.suppress(BrokenPipeError):
        stream.write(data)


_zygote: Zygote | None = None
_lock = threading.Lock()


def zygote() -> Zygote:
    """The test process's one zygote, started on first use."""
    global _zygote
    with _lock:
        if _zygote is None:
            _zygote = Zygote()
        return _zygote


def text(data: bytes) -> str:
    """DATA as subprocess.run(text=True) decodes it: the locale's encoding, universal newlines."""
    decoded = data.decode(locale.getpreferredencoding(False))
    return decoded.replace("\r\n", "\n").replace("\r", "\n")


# -- the zygote and its children ------------------------------------------------------------------


def _warm() -> None:
    import pipeline

    _import_all(pipeline)
    assert "pipeline.cli" not in sys.modules, "a library module imports pipeline.cli"
    for name in _HEAVY:
        with contextlib.suppress(ImportError):  # not here: the command that needs it says so itself
            importlib.import_module(name)


def _import_all(package: types.ModuleType) -> None:
    """Every module of PACKAGE but the CLI's (and the benchmarks', which no test runs warm)."""
    for found in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if found.name in ("pipeline.cli", "pipeline.bench"):
            continue
        module = importlib.import_module(found.name)
        if found.ispkg:
            _import_all(module)


def _serve(path: str) -> None:
    """Fork a `comms` for each request on PATH; returns only in a forked `comms` process, set up
    as its request asks (the zygote itself exits when its standard input closes)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the waiters are reaped by the kernel
    sys.stdout.buffer.write(b"ready\n")
    sys.stdout.flush()
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready:
            os._exit(0)
        conn, _ = listener.accept()
        request, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 3)
        if os.fork() == 0:  # the waiter
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            pid = os.fork()
            if pid == 0:
                conn.close()
                _become(json.loads(request), fds)
                return
            for fd in fds:
                os.close(fd)
            conn.send(str(pid).encode())
            _, status = os.waitpid(pid, 0)
            conn.send(str(os.waitstatus_to_exitcode(status)).encode())
            os._exit(0)
        conn.close()
        for fd in fds:
            os.close(fd)


def _become(request: dict[str, Any], fds: list[int]) -> None:
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["-c", *request["args"]]
    sys.path[0] = ""  # as `python -c` has it


def _comms() -> NoReturn:
    """Run `comms` and end as the interpreter ends a process, less its teardown of every module
    (which takes longer than most commands: 1.6 s on a slow machine)."""
    from pipeline.cli import main

    code = 0
    try:
        main()
    except SystemExit as exc:
        code = _status(exc.code)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # what the interpreter does first
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _status(code: object) -> int:
    """The exit status sys.exit(CODE) gives."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    _warm()
    _serve(sys.argv[1])
    _comms()
