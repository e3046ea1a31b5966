"""The tests build what ships: `cdk synth` (the CLI, as `make synth` runs it) writes exactly
cdk.out.example, which the tests' own apps (tools/cdk_app.py) also produce."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.write_example import EXAMPLE_DIR, normalize

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_cdk_cli_synth_writes_exactly_the_example(tmp_path: Path) -> None:
    npx = shutil.which("npx", path=str(Path(sys.executable).parent))
    assert npx, "npx is missing from the venv: run `make install`"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_CLI_TELEMETRY": "false",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    subprocess.run(
        [npx, "--no-install", "cdk", "synth", "--quiet", "--output", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    written = sorted(tmp_path.glob("*.template.json"))
    assert [p.name for p in written] == sorted(p.name for p in EXAMPLE_DIR.glob("*.template.json"))
    for path in written:
        cli = normalize(json.dumps(json.loads(path.read_text()), indent=1) + "\n")
        assert cli == (EXAMPLE_DIR / path.name).read_text(), (
            f"{path.name} differs: run `make example`"
        )
