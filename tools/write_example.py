"""Write cdk.out.example/: the reviewed CloudFormation of the bundled app (`make example`).

Asset hashes change with every edit of the bundled Lambda code, so they are replaced by
`<asset-hash>`; everything else is the template exactly as `cdk synth` writes it (the app is
built with the CLI's context: see tools/cdk_app.py, and tests/test_cli_synth.py proves it).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from tools.cdk_app import project_app

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = REPO_ROOT / "cdk.out.example"
ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def normalize(text: str) -> str:
    """The template text with every asset hash replaced by a placeholder."""
    return ASSET_HASH.sub("<asset-hash>", text)


def synthesize_example() -> dict[str, str]:
    """File name -> normalized content, for every template of the bundled app."""
    sys.path.insert(0, str(REPO_ROOT))
    from app import build_app

    with tempfile.TemporaryDirectory(prefix="example-") as outdir:
        assembly = build_app(project_app(outdir=outdir)).synth()
        files = {}
        for stack in assembly.stacks:
            template: dict[str, Any] = stack.template
            files[f"{stack.stack_name}.template.json"] = normalize(
                json.dumps(template, indent=1) + "\n"
            )
        return files


def main() -> None:
    EXAMPLE_DIR.mkdir(exist_ok=True)
    for name, content in synthesize_example().items():
        (EXAMPLE_DIR / name).write_text(content)
        print(f"wrote {EXAMPLE_DIR.name}/{name}")


if __name__ == "__main__":
    main()
