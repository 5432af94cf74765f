"""Every sample campaign, sent DKIM-signed through the file transport, survives a parse and
re-serialisation by Python's email package (policy.default) with its signature intact."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.audience.importer import import_contacts
from pipeline.runs import dispatch, start
from pipeline.storage.engines import make_engine, upgrade
from pipeline.workspace.folders import Workspace
from tests.conftest import sqlite_only
from tests.message.conftest import DOMAIN
from tests.support.workspace import SECRET, configure

pytestmark = sqlite_only  # see tests/conftest.py


@pytest.fixture
def signed_ws(
    workspace_dir: Path, database_url: str, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (workspace_dir / "dkim.pem").write_bytes(pem)
    configure(
        workspace_dir,
        {
            "database": f'url = "{database_url}"',
            "dkim": f'selector = "mail"\ndomain = "{DOMAIN}"\nkey_file = "dkim.pem"',
            "rate": "per_second = 100000\nper_domain_per_second = 100000",
        },
    )
    upgrade(database_url)
    engine = make_engine(database_url)
    for name in ("customers", "staff"):
        import_contacts(engine, workspace_dir / "audiences" / f"{name}.csv", list_name=name)
    engine.dispose()
    return workspace_dir


def test_every_sample_campaign_verifies_after_reserialisation(
    signed_ws: Path, dns: Callable[..., bytes | None]
) -> None:
    ws = Workspace.open(signed_ws)
    outbox = signed_ws / "outbox"
    checked = 0
    for name in ws.campaign_names():
        before = set(outbox.glob("*.eml")) if outbox.exists() else set()
        run = start.start_run(ws, name, started_by="test")
        report = dispatch.dispatch_run(ws, run.id)
        files = sorted(set(outbox.glob("*.eml")) - before)
        # An A/B test's arms go out first (both variants); the rest is held for the decision.
        assert report.counts["sent"] == len(files) == run.recipient_count - report.counts["held"] > 0, name
        for file in files:
            original = file.read_bytes()
            assert dkim.verify(original, dnsfunc=dns), file.name
            again = message_from_bytes(original, policy=policy.default).as_bytes(
                policy=policy.default.clone(linesep="\r\n")
            )
            assert dkim.verify(again, dnsfunc=dns), (
                f"{name}: {file.name} no longer verifies once re-serialised"
            )
            checked += 1
    assert checked > 300
