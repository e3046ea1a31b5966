"""The contracts module is the only home of the names the construct, Lambdas and runtime share."""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

from openmwaa.runtime import contracts
from openmwaa.runtime_bundle import BUNDLE_PACKAGE, decode_bundle, runtime_bundle_b64
from tests.conftest import REPO_ROOT
from tests.stacks import environment_stack
from tools.cdk_app import project_app

BUNDLED = {
    path.name for path in (REPO_ROOT / "lambdas").iterdir() if (path / "handler.py").is_file()
}
"""The bundled Lambdas (each folder of `lambdas/` with a handler)."""
CONTRACTS = REPO_ROOT / "constructs" / "openmwaa" / "runtime" / "contracts.py"
LAMBDA_LINK = REPO_ROOT / "lambdas" / "openmwaa_contracts.py"

NOT_COPIES = {
    (
        "constructs/openmwaa/monitoring.py",
        "RequirementsBuildFailed",
    ): "the alarm's construct id: a logical id, which must not follow the metric's name",
    ("constructs/openmwaa/runtime/config.py", "dag-processor"): "Airflow's CLI subcommand",
    ("constructs/openmwaa/runtime/config.py", "api-server"): "Airflow's CLI subcommand",
    ("constructs/openmwaa/__init__.py", "WorkerPool"): "the exported class's name in __all__",
    ("constructs/openmwaa/cli/from_mwaa.py", "Environment"): "the GetEnvironment response's member",
    ("constructs/openmwaa/pricing/template.py", "Environment"): "CloudFormation's property name",
    ("lambdas/dag_sync/efs_writer.py", "plugins"): "the private folder of plugins.zip versions",
    ("lambdas/dag_sync/keys.py", "plugins"): "an enum member's value",
}
"""Literals equal to a contract value that mean something else, with what they are."""

SHARED_VALUES: frozenset[object] = frozenset(
    value
    for name, value in vars(contracts).items()
    if name.isupper() and isinstance(value, str | int) and not isinstance(value, bool)
) - {
    contracts.SCHEDULER,
    contracts.TRIGGERER,
    contracts.WORKER,
    contracts.FUNCTION_DIMENSION,
    contracts.DAG_DIMENSION,
    contracts.TASK_DIMENSION,
}
"""Every contract value distinctive enough to spot as a copy. The three component names that
are also plain words (and MWAA's log-type names), and the metric dimensions named by plain
words (a Lambda's construct id "Function", Airflow's class DAG, a log group's "Task"), are
left out."""


def _python_sources() -> list[Path]:
    roots = [REPO_ROOT / "constructs" / "openmwaa", REPO_ROOT / "lambdas"]
    return sorted(
        path
        for root in roots
        for path in root.rglob("*.py")
        if "__pycache__" not in path.parts and ".mypy_cache" not in path.parts
        if path.resolve() != CONTRACTS.resolve()
    )


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for statement in body:
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                    found.add(id(statement.value))
    return found


def test_the_lambda_asset_reads_the_same_file_as_the_runtime() -> None:
    assert LAMBDA_LINK.is_symlink()
    assert LAMBDA_LINK.resolve() == CONTRACTS.resolve()


def test_the_contracts_module_imports_nothing() -> None:
    tree = ast.parse(CONTRACTS.read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [ast.unparse(n) for n in imports] == ["from __future__ import annotations"]


def test_no_module_copies_a_contract_value() -> None:
    assert {"OpenMWAA", "requirements.txt", 8080, "dag-processor"} <= SHARED_VALUES
    copies = []
    for path in _python_sources():
        tree = ast.parse(path.read_text())
        docstrings = _docstring_nodes(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and id(node) not in docstrings
                and not isinstance(node.value, bool)
                and isinstance(node.value, str | int)
                and node.value in SHARED_VALUES
                and (str(path.relative_to(REPO_ROOT)), node.value) not in NOT_COPIES
            ):
                copies.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {node.value!r}")
    assert copies == [], "import these from the contracts module instead:\n" + "\n".join(copies)


def test_the_runtime_zip_carries_the_contracts() -> None:
    bundle = zipfile.ZipFile(io.BytesIO(decode_bundle(runtime_bundle_b64())))
    assert f"{BUNDLE_PACKAGE}/contracts.py" in bundle.namelist()


def test_the_lambda_asset_carries_the_contracts_as_a_file(tmp_path: Path) -> None:
    app = project_app(outdir=str(tmp_path))
    stack = environment_stack(app)[0]
    assembly = app.synth()
    template = assembly.get_stack_artifact(stack.artifact_id).template
    handlers = set()
    for resource in template["Resources"].values():
        handler = resource["Properties"].get("Handler", "")
        if resource["Type"] == "AWS::Lambda::Function" and handler.split(".")[0] in BUNDLED:
            handlers.add(handler)
            copied = tmp_path / resource["Metadata"]["aws:asset:path"] / "openmwaa_contracts.py"
            assert copied.is_file() and not copied.is_symlink()
            assert copied.read_bytes() == CONTRACTS.read_bytes()
    assert {"dag_sync.handler.handler", "autoscaler.handler.handler"} <= handlers
