"""Writes agentflan_eval/data_lock.tsv, the pinned official source of every data file the tasks read.

Input: a MANIFEST.tsv whose rows give each file's local path, source repository, commit, path in that
repository, sha256 and size (the layout of the project's offline data copy). GitHub-hosted files download from
``raw.githubusercontent.com`` at the pinned commit. Rows marked DERIVED are left out: the project rebuilds them
in code from the official files. Files hosted elsewhere (Hub datasets, Google Drive) are kept from the existing
lock as they are. Usage: python scripts/make_data_lock.py PATH/TO/MANIFEST.tsv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "agentflan_eval" / "data_lock.tsv"
FIELDS = ["path", "url", "sha256", "bytes"]
RAW = "https://raw.githubusercontent.com"


def main(manifest: str) -> None:
    rows: dict[str, dict[str, str]] = {}
    if LOCK.exists():
        with open(LOCK, newline="") as fh:
            rows = {r["path"]: r for r in csv.DictReader(fh, delimiter="\t") if not r["url"].startswith(RAW)}
    with open(manifest, newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            if not r["source_commit"]:  # DERIVED: rebuilt in code
                continue
            url = f"{RAW}/{r['source_repo']}/{r['source_commit']}/{r['source_path']}"
            rows[r["local_path"]] = {
                "path": r["local_path"],
                "url": url,
                "sha256": r["sha256"],
                "bytes": r["bytes"],
            }
    with open(LOCK, "w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(rows.values(), key=lambda r: r["path"]))
    print(f"{LOCK}: {len(rows)} files")


if __name__ == "__main__":
    main(sys.argv[1])
