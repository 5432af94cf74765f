"""Client compatibility from the vendored Can I email data, MRML's @media rewrite, image widths."""

from __future__ import annotations

from pathlib import Path

from pipeline.checks.compatibility import caniemail, verdict
from tests.checks.conftest import edit, finding_at_edit, found, run, where

STYLES = "templates/partials/base-styles.mjml"
LAYOUT = "templates/layouts/announcement.mjml"
_SIGNOFF = (
    '        <mj-divider />\n        <mj-text padding="0 32px 2px" font-weight="bold">'
    "{{ copy.signoff_name }}</mj-text>\n"
)


def test_the_snapshot_is_dated_and_licensed() -> None:
    data = caniemail()
    assert data["last_update_date"].startswith("20") and len(data["features"]) > 250
    licence = Path(__file__).resolve().parents[2] / "pipeline/checks/data/caniemail-LICENSE"
    assert licence.read_text().startswith("MIT License")


def test_clients_of_one_family_are_one_line() -> None:
    line = verdict(caniemail()["features"]["css-display-flex"])
    assert line is not None and line.count("Outlook (") == 1  # Windows and Outlook.com, collapsed


def test_an_unsupported_css_feature_names_the_partial_line(root: Path) -> None:
    line = (
        edit(
            root,
            STYLES,
            "  .card p { margin: 0 0 10px; }\n",
            "  .card p { margin: 0 0 10px; }\n  .card { display: flex; }\n",
        )
        + 1
    )
    [finding] = [
        f for f in found(run(root, "q3-results"), "compatibility.unsupported") if "flex" in f.message
    ]
    assert where(finding) == (STYLES, line) and "Outlook (Windows" in finding.message


def test_media_query_that_mrml_made_apply_everywhere(root: Path) -> None:
    finding = finding_at_edit(
        root,
        LAYOUT,
        _SIGNOFF,
        "        <mj-carousel>\n"
        '          <mj-carousel-image src="https://kestrelforge.example/a.jpg" alt="Press 1" />\n'
        '          <mj-carousel-image src="https://kestrelforge.example/b.jpg" alt="Press 2" />\n'
        "        </mj-carousel>\n" + _SIGNOFF,
        "compatibility.media-rewritten",
        campaign="q3-results",
    )
    assert "screen, yahoo" in finding.message and finding.blocks


def test_an_image_wider_than_its_column(root: Path) -> None:
    finding = finding_at_edit(
        root,
        LAYOUT,
        _SIGNOFF,
        '        <mj-raw><img src="https://kestrelforge.example/chart.png" width="700" alt="Revenue '
        'by quarter" /></mj-raw>\n' + _SIGNOFF,
        "compatibility.image-wider",
        campaign="q3-results",
    )
    assert "700px wide in a 600px column" in finding.message
