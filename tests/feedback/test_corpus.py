"""Every fixture of the bounce corpus (tests/feedback/bounces/manifest.json) is read as its manifest says:
kind, the exact failed recipients (all of them, never our own address) and the status.
`python -m tests.feedback.score_bounces` prints the same comparison as figures by format family."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.feedback.score_bounces import CORPUS, kind_right, manifest, reading

ENTRIES = manifest()
OURS = {"news@kestrelforge.example", "bounces@kestrelforge.example"}


@pytest.mark.parametrize("entry", ENTRIES, ids=[str(e["file"]) for e in ENTRIES])
def test_fixture_is_read_as_its_manifest_says(entry: dict[str, object]) -> None:
    got = reading((CORPUS / str(entry["file"])).read_bytes())
    assert kind_right(str(entry["kind"]), got.kind), got
    assert got.recipients == tuple(sorted(str(r) for r in entry["recipients"])), got  # type: ignore[attr-defined]
    if entry["status"] is not None:
        assert got.status == entry["status"], got
    assert not OURS & set(got.recipients)


def test_every_fixture_file_is_in_the_manifest_with_its_source() -> None:
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.eml")}
    assert files == {str(e["file"]) for e in ENTRIES}
    assert all(str(e["source"]).strip() for e in ENTRIES)
    assert Path(CORPUS / "manifest.json").is_file()
