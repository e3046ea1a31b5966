"""The built wheel, installed in a fresh venv outside the repository, synthesizes a consumer app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

CONSUMER_APP = textwrap.dedent(
    """
    import json, sys
    import aws_cdk as cdk
    import openmwaa
    from openmwaa import AirflowEnvironment, EnvironmentClass
    from openmwaa.assets import lambda_code_dir

    app = cdk.App(outdir=sys.argv[1])
    stack = cdk.Stack(app, "Consumer")
    AirflowEnvironment(stack, "Airflow", environment_class=EnvironmentClass.MW1_MEDIUM)
    app.synth()
    print(json.dumps({"package": openmwaa.__file__, "lambdas": str(lambda_code_dir())}))
    """
)


@pytest.mark.slow
def test_wheel_installs_and_synthesizes_outside_the_repository(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    [wheel] = dist.glob("openmwaa-*.whl")
    venv = tmp_path / "consumer-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = venv / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", str(wheel)], check=True, capture_output=True)

    app_dir = tmp_path / "consumer"
    app_dir.mkdir()
    (app_dir / "consumer_app.py").write_text(CONSUMER_APP)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(venv / "bin" / "python"), "consumer_app.py", str(app_dir / "cdk.out")],
        cwd=app_dir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["package"].startswith(str(venv)), report
    assert report["lambdas"].startswith(str(venv)), report
    for name in ("dag_sync", "autoscaler"):
        assert (Path(report["lambdas"]) / name / "handler.py").is_file()
    # The contracts reach the Lambdas as a file with the runtime's content (a link in git).
    shipped = Path(report["lambdas"]) / "openmwaa_contracts.py"
    assert shipped.is_file() and not shipped.is_symlink()
    runtime_contracts = Path(report["package"]).parent / "runtime" / "contracts.py"
    assert shipped.read_bytes() == runtime_contracts.read_bytes()
    template = json.loads((app_dir / "cdk.out" / "Consumer.template.json").read_text())
    assert any(r["Type"] == "AWS::RDS::DBCluster" for r in template["Resources"].values())
    for function in (
        r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    ):
        code = function["Properties"]["Code"]
        if "S3Key" in code:
            asset = app_dir / "cdk.out" / f"asset.{code['S3Key'].removesuffix('.zip')}"
            assert asset.is_dir(), f"missing Lambda asset {asset.name}"
    # The console script is installed and starts without the CDK (no jsii, no Node.js).
    help_text = subprocess.run(
        [str(venv / "bin" / "openmwaa"), "--help"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for command in ("from-mwaa", "dag-check", "import-metadata"):
        assert command in help_text
    loaded = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sys, openmwaa.cli.main; print('aws_cdk' in sys.modules)",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert loaded == "False"
