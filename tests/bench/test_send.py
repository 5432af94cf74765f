"""`comms bench send` measures what it says: every client sends every message into the sink, each
reports its own peak memory. No figure is asserted (benchmarks print; a person judges)."""

from __future__ import annotations

import shutil

from pipeline.bench.send import bench_send


def test_every_client_sends_every_message_and_reports_its_own_peak() -> None:
    result = bench_send(recipients=40, connections=2, dkim=True, processes=2)
    names = [figure.name for figure in result.figures]
    signed = [", DKIM RSA-2048", ", DKIM Ed25519", ", DKIM RSA-2048 + Ed25519"]
    expected = ["aiosmtplib alone", "comms SMTP client alone"]
    expected += [
        send + variant for send in ("comms send", "comms send, 2 processes") for variant in ["", *signed]
    ]
    if shutil.which("smtp-source"):
        expected.insert(0, "smtp-source (Postfix)")
    assert names == expected
    assert all(figure.messages == 40 for figure in result.figures)
    assert all(figure.peak_mb is not None and figure.peak_mb > 0 for figure in result.figures)
    # Its own peak, not the parent's: a bare client stays below a process that loaded the whole pipeline.
    bare = result.figure("aiosmtplib alone")
    full = result.figure("comms send")
    assert bare is not None and full is not None and bare.peak_mb < full.peak_mb  # type: ignore[operator]
    several = result.figure("comms send, 2 processes")
    assert several is not None and len(several.sender_peaks_mb) == 2  # each sender's own
    assert all(peak > 0 for peak in several.sender_peaks_mb)
    # The two processes that started each comms send run (its content's, the run's) reported their
    # own peaks; the bare clients start none.
    starts = {f.name: f.starter_peaks_mb for f in result.figures}
    assert all(
        len(starts[name]) == 2 and min(starts[name]) > 0 for name in names if name.startswith("comms send")
    )
    assert all(starts[name] == () for name in names if not name.startswith("comms send"))
