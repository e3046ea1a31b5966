"""The runtime as a zip application in OPENMWAA_RUNTIME (openmwaa.runtime_bundle)."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import zipfile
from pathlib import Path

from openmwaa import runtime_bundle
from openmwaa.runtime_bundle import build_bundle, runtime_bundle_b64, runtime_sources, strip_source

MAX_BUNDLE_CHARS = 28_500
"""Budget for OPENMWAA_RUNTIME: an ECS task definition holds at most 64 KiB in all, and
mw1.micro's all-in-one task definition, the largest, carries it once beside six Airflow
containers (`test_the_largest_task_definition_fits_ecs_limit` measures it: with a bundle of
28,488 characters, after the sign-in and the FAB users of issue 12, it is 54,551 characters,
2.7 KiB under the limit after the resolution margin). The next runtime feature must make room
(or move a module out of the bundle) rather than raise this."""
ECS_TASK_DEFINITION_LIMIT = 64 * 1024
RESOLUTION_MARGIN = 8 * 1024
"""The template holds `Ref`s and `Fn::Join`s where ECS receives ARNs and URLs: a few dozen
values, each at most about 150 characters longer once resolved."""


def _zip() -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(runtime_bundle.decode_bundle(runtime_bundle_b64())))


def test_bundle_holds_the_runtime_package_and_a_main() -> None:
    names = _zip().namelist()

    assert names == sorted(names)
    assert "__main__.py" in names
    for module in ("__init__", "__main__", "bootstrap", "config", "contracts", "supervisor"):
        assert f"{runtime_bundle.BUNDLE_PACKAGE}/{module}.py" in names


def test_bundle_takes_every_runtime_module() -> None:
    sources = runtime_sources()
    package = Path(runtime_bundle.__file__).parent / "runtime"

    assert set(sources) == {p.name for p in package.glob("*.py")}


def test_bundle_is_deterministic() -> None:
    sources = runtime_sources()

    assert build_bundle(sources) == build_bundle(dict(reversed(list(sources.items()))))
    for info in _zip().infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)


def test_bundle_stays_small() -> None:
    assert len(runtime_bundle_b64()) < MAX_BUNDLE_CHARS


def test_bundle_runs_and_reports_a_configuration_error(tmp_path: Path) -> None:
    pyz = tmp_path / "runtime.pyz"
    pyz.write_bytes(runtime_bundle.decode_bundle(runtime_bundle_b64()))

    result = subprocess.run(
        [sys.executable, str(pyz)],
        env={"PATH": "/usr/bin:/bin", "OPENMWAA_COMPONENT": "nonsense"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 78
    assert "OPENMWAA_COMPONENT must be one of" in result.stdout


def test_stripped_modules_compile_without_docstrings() -> None:
    assert {"bootstrap.py", "contracts.py", "config.py"} <= set(runtime_sources())
    for name, source in runtime_sources().items():
        tree = ast.parse(strip_source(source), filename=name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                assert ast.get_docstring(node) is None, f"{name}: docstring left"


def test_strip_source_keeps_code_and_multiline_strings() -> None:
    source = b'''"""Module docstring."""
# a comment

X = """line one
# not a comment

line three"""


def f():
    """Only a docstring."""


class C:
    """Doc."""

    y = 1  # trailing comment stays
'''

    stripped = strip_source(source).decode()

    namespace: dict[str, object] = {}
    exec(compile(stripped, "<stripped>", "exec"), namespace)
    assert namespace["X"] == "line one\n# not a comment\n\nline three"
    assert "Module docstring" not in stripped
    assert "Only a docstring" not in stripped
    assert "    pass" in stripped
    assert "# a comment" not in stripped
    assert "y = 1  # trailing comment stays" in stripped


def test_the_largest_task_definition_fits_ecs_limit() -> None:
    import json

    from tests.conftest import template_of

    template = template_of(environment_class="mw1.micro")
    sizes = {
        logical_id: len(json.dumps(task["Properties"], separators=(",", ":")))
        for logical_id, task in template.find_resources("AWS::ECS::TaskDefinition").items()
    }
    largest = max(sizes, key=sizes.__getitem__)
    assert sizes[largest] + RESOLUTION_MARGIN < ECS_TASK_DEFINITION_LIMIT, (largest, sizes)
