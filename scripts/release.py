"""Assemble a release (run by `make release`, after `make package` for both architectures).

Writes, into one folder named for Cargo.toml's version:
- bootstrap-arm64.zip and bootstrap-x86_64.zip, the function as `make package` built it;
- template-arm64.yaml and template-x86_64.yaml: template.yaml with its code already built, the
  function's CodeUri the zip beside it, and Architecture fixed to that zip's. `sam deploy
  --template-file` uploads the zip itself; `sam package --s3-bucket` turns it into a template
  that names the zip in S3 (for CloudFormation, StackSets, Terraform or the Serverless
  Application Repository);
- member-role.yaml and forwarding-rule.yaml, unchanged;
- SHA256SUMS, in sha256sum's format (`sha256sum -c SHA256SUMS` checks the folder).

usage: release.py <lambda-dir> <out-dir>
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURES = ("arm64", "x86_64")


def version() -> str:
    return re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)


def packaged(template: str, arch: str) -> str:
    """template.yaml for a zip already built for `arch`: no build metadata, the zip as its code."""
    replacements = [
        # sam build's instructions: the code is built already.
        (r"\n      BuildMethod: rust-cargolambda\n      BuildProperties:\n        Binary: exfil-responder", ""),
        (r"\n      CodeUri: \.\n", f"\n      CodeUri: bootstrap-{arch}.zip\n"),
        (r"(\n  Architecture:\n    Type: String\n    Default: )arm64\n    AllowedValues: \[arm64, x86_64\]",
         rf"\g<1>{arch}\n    AllowedValues: [{arch}]"),
    ]
    for pattern, replacement in replacements:
        template, count = re.subn(pattern, replacement, template)
        if count != 1:
            sys.exit(f"release: template.yaml no longer has what {pattern!r} replaces")
    return template


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    lambda_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    folder = out / f"exfil-responder-{version()}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    template = (ROOT / "template.yaml").read_text()
    for arch in ARCHITECTURES:
        built = lambda_dir / arch / "exfil-responder" / "bootstrap.zip"
        if not built.is_file():
            sys.exit(f"release: {built} is missing: make package ARCH={arch}")
        shutil.copyfile(built, folder / f"bootstrap-{arch}.zip")
        (folder / f"template-{arch}.yaml").write_text(packaged(template, arch))
    for name in ("member-role.yaml", "forwarding-rule.yaml"):
        shutil.copyfile(ROOT / name, folder / name)
    sums = {p: sha256(p) for p in sorted(folder.iterdir())}
    (folder / "SHA256SUMS").write_text("".join(f"{digest}  {p.name}\n" for p, digest in sums.items()))
    print(f"{folder}:")
    for p, digest in sums.items():
        print(f"  {p.name:24} {p.stat().st_size:>10,} bytes  sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
