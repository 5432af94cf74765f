"""Refresh the vendored Can I email snapshot (pipeline/checks/data/) from the `caniemail` npm package.

    python scripts/refresh_caniemail.py [--version X.Y.Z]

Runs `npm pack caniemail`, keeps from its data/caniemail.json what the compatibility rules read
(each feature's slug, title, URL, notes and per-client support), and writes it with the date of
the data and the package's MIT licence beside it. Review the diff of `comms check --all` after.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "pipeline" / "checks" / "data"
_KEPT = ("slug", "title", "category", "url", "last_test_date", "stats", "notes_by_num")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default="latest", help="caniemail package version (default: latest)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        packed = subprocess.run(
            ["npm", "pack", f"caniemail@{args.version}", "--silent"],
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        with tarfile.open(Path(folder) / packed) as archive:
            data = json.load(archive.extractfile("package/data/caniemail.json"))  # type: ignore[arg-type]
            licence = archive.extractfile("package/LICENSE").read().decode()  # type: ignore[union-attr]
            package = json.load(archive.extractfile("package/package.json"))  # type: ignore[arg-type]
    snapshot = {
        "source": f"caniemail {package['version']} (npm), MIT licence: see caniemail-LICENSE",
        "last_update_date": data["last_update_date"],
        "nicenames": data["nicenames"],
        "data": [{key: feature.get(key) for key in _KEPT} for feature in data["data"]],
    }
    (DATA / "caniemail.json").write_text(
        json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")) + "\n"
    )
    (DATA / "caniemail-LICENSE").write_text(licence)
    print(
        f"caniemail {package['version']}: {len(snapshot['data'])} features, data of "
        f"{data['last_update_date']}"
    )


if __name__ == "__main__":
    main()
