"""DKIM signatures checked by dkimpy's verifier against the test keys served as DNS records."""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import Relaxed

from pipeline.errors import SettingsError
from pipeline.message.dkim import Signer, _relaxed_body
from pipeline.message.mime import MessageBuilder
from pipeline.types import Outgoing
from pipeline.workspace.settings import Dkim, Settings, load_settings
from tests.support.workspace import configure

from .conftest import DOMAIN

Dns = Callable[..., bytes | None]


@pytest.fixture
def signed(
    build: Callable[..., Outgoing],
    settings: Settings,
    rsa_key: rsa.RSAPrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> Outgoing:
    signer = Signer(DOMAIN, "mail", rsa_key, ed25519_selector="ed", ed25519_key=ed_key)
    builder = MessageBuilder(settings, campaign="spring-sale", department="sales", run_id=7, signer=signer)
    return build(builder)


def verifies(data: bytes, index: int, dns: Dns) -> bool:
    """dkimpy's verdict on the INDEXth DKIM-Signature (dkim.verify only looks at the first)."""
    try:
        return dkim.DKIM(data).verify(idx=index, dnsfunc=dns)
    except dkim.DKIMException:
        return False


def tags(data: bytes, index: int) -> dict[bytes, bytes]:
    signature = dkim.DKIM(data).headers[index][1]
    return dkim.util.parse_tag_value(b"".join(signature.split()))


def test_both_signatures_verify_with_dkimpy(signed: Outgoing, dns: Dns) -> None:
    assert dkim.verify(signed.data, dnsfunc=dns)
    assert verifies(signed.data, 1, dns)
    assert tags(signed.data, 0)[b"a"] == b"rsa-sha256"
    assert tags(signed.data, 1)[b"a"] == b"ed25519-sha256"


def test_the_unsubscribe_and_feedback_headers_are_signed(signed: Outgoing) -> None:
    names = set(tags(signed.data, 0)[b"h"].split(b":"))
    assert {b"list-unsubscribe", b"list-unsubscribe-post", b"feedback-id", b"list-id"} <= names
    assert {b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"} <= names
    assert tags(signed.data, 0)[b"c"] == b"relaxed/relaxed"
    assert tags(signed.data, 0)[b"d"] == DOMAIN.encode()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda data: data.replace(b"Our offers.", b"Our 0ffers.", 1),
        lambda data: data.replace(b"Message-ID: <7.", b"Message-ID: <8.", 1),
        lambda data: data.replace(b"One-Click", b"One-click", 1),
        # A second List-Unsubscribe added in transit: the header list is signed twice against that.
        lambda data: data.replace(b"\r\n\r\n", b"\r\nList-Unsubscribe: <https://evil.example/>\r\n\r\n", 1),
    ],
    ids=["body", "message-id", "unsubscribe-post", "added-header"],
)
def test_tampering_breaks_the_signature(signed: Outgoing, dns: Dns, tamper: Callable[[bytes], bytes]) -> None:
    tampered = tamper(signed.data)
    assert tampered != signed.data
    assert not dkim.verify(tampered, dnsfunc=dns)
    assert not verifies(tampered, 1, dns)


def test_whitespace_changes_that_relaxed_canonicalisation_allows_still_verify(
    signed: Outgoing, dns: Dns
) -> None:
    rewrapped = signed.data.replace(b"Our offers.", b"Our   offers.  ", 1)
    assert dkim.verify(rewrapped, dnsfunc=dns)


def test_body_canonicalisation_matches_dkimpy_on_awkward_whitespace() -> None:
    generator = random.Random(6376)
    for _ in range(2000):
        body = bytes(generator.choice(b"ab \t\r\n") for _ in range(generator.randint(0, 40)))
        assert _relaxed_body(body) == Relaxed.canonicalize_body(body), body


def _write_pem(path: Path, key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def test_signer_from_settings_reads_keys_relative_to_the_workspace(
    settings: Settings,
    workspace_dir: Path,
    rsa_key: rsa.RSAPrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
    build: Callable[..., Outgoing],
    dns: Dns,
) -> None:
    assert Signer.from_settings(settings, workspace_dir) is None
    (workspace_dir / "keys").mkdir()
    _write_pem(workspace_dir / "keys" / "mail.pem", rsa_key)
    # dkimpy's dknewkey writes an Ed25519 key as the base64 of its 32 raw bytes.
    raw = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    (workspace_dir / "keys" / "ed.key").write_bytes(base64.b64encode(raw) + b"\n")
    settings.dkim = Dkim(
        selector="mail",
        domain=DOMAIN,
        key_file="keys/mail.pem",
        ed25519_selector="ed",
        ed25519_key_file="keys/ed.key",
    )
    signer = Signer.from_settings(settings, workspace_dir)
    builder = MessageBuilder(settings, campaign="c", department="d", run_id=1, signer=signer)
    data = build(builder).data
    assert dkim.verify(data, dnsfunc=dns)
    assert verifies(data, 1, dns)


def test_bad_key_files_name_the_setting(
    settings: Settings, workspace_dir: Path, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    settings.dkim = Dkim(selector="mail", domain=DOMAIN, key_file="missing.pem")
    with pytest.raises(SettingsError, match=r"dkim\.key_file: cannot read .*missing\.pem"):
        Signer.from_settings(settings, workspace_dir)
    (workspace_dir / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    settings.dkim.key_file = "junk.pem"
    with pytest.raises(SettingsError, match=r"dkim\.key_file: .* not an unencrypted PEM private key"):
        Signer.from_settings(settings, workspace_dir)
    _write_pem(workspace_dir / "ed.pem", ed_key)
    settings.dkim.key_file = "ed.pem"
    with pytest.raises(SettingsError, match=r"dkim\.key_file: not an RSA key"):
        Signer.from_settings(settings, workspace_dir)


def test_ed25519_alone_signs_once_and_verifies_with_dkimpy(
    settings: Settings,
    workspace_dir: Path,
    ed_key: ed25519.Ed25519PrivateKey,
    build: Callable[..., Outgoing],
    dns: Dns,
) -> None:
    _write_pem(workspace_dir / "ed.pem", ed_key)
    settings.dkim = Dkim(domain=DOMAIN, ed25519_selector="ed", ed25519_key_file="ed.pem")
    builder = MessageBuilder(
        settings, campaign="c", department="d", run_id=1, signer=Signer.from_settings(settings, workspace_dir)
    )
    data = build(builder).data
    assert data.count(b"DKIM-Signature:") == 1
    assert tags(data, 0)[b"a"] == b"ed25519-sha256"
    assert tags(data, 0)[b"s"] == b"ed"
    assert dkim.verify(data, dnsfunc=dns)


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('domain = "x.example"', "needs key_file (RSA), ed25519_key_file, or both"),
        (
            'domain = "x.example"\ned25519_key_file = "ed.pem"',
            "ed25519_selector and ed25519_key_file go together",
        ),
        ('domain = "x.example"\nselector = "mail"', "selector and key_file go together"),
    ],
)
def test_a_dkim_table_without_a_whole_key_is_refused_in_one_line(
    workspace_dir: Path, table: str, error: str
) -> None:
    configure(workspace_dir, {"dkim": table})
    with pytest.raises(
        SettingsError, match=re.escape(f"comms.toml:{_dkim_line(workspace_dir)}: dkim: {error}")
    ):
        load_settings(workspace_dir, {"COMMS_SECRET": "x" * 32})


def _dkim_line(root: Path) -> int:
    lines = (root / "comms.toml").read_text(encoding="utf-8").splitlines()
    return lines.index("[dkim]") + 1
