"""Hand images from buildah's storage to the cluster's containerd (needs a running cluster)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .buildah import archive_for, image_id


def import_into_containerd(
    names: Sequence[str], containerd_socket: Path, record: Path | None = None
) -> None:
    """Import images into the k8s.io namespace, where the kubelet's CRI looks.

    With `record` (a JSON file of name -> buildah image id), images containerd already
    holds at the same id are skipped.
    """
    ctr = ["ctr", "--address", str(containerd_socket), "-n", "k8s.io"]
    imported: dict[str, str] = {}
    if record is not None and record.is_file():
        imported = json.loads(record.read_text())
    listed = subprocess.run([*ctr, "images", "ls", "-q"], capture_output=True, text=True)
    present = set(listed.stdout.split()) if listed.returncode == 0 else set()
    for name in names:
        ident = image_id(name) or ""
        if imported.get(name) == ident and name in present:
            continue
        archive = archive_for(name)
        subprocess.run([*ctr, "images", "import", str(archive)], check=True, capture_output=True)
        imported[name] = ident
        if record is not None:
            record.write_text(json.dumps(imported, indent=2) + "\n")
