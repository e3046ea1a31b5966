"""The runtime as a zip application in OPENMWAA_RUNTIME, from an ECS environment file
(openmwaa.runtime_bundle and the init container of task_definitions.py)."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openmwaa import runtime_bundle
from openmwaa.runtime_bundle import (
    ENVIRONMENT_FILE_LINE_LIMIT,
    RUNTIME_ENV_VAR,
    build_bundle,
    environment_file,
    environment_file_content,
    environment_file_sha256,
    runtime_bundle_b64,
    runtime_sources,
    strip_source,
)

MAX_BUNDLE_CHARS = 63 * 1024
"""Budget for OPENMWAA_RUNTIME's base64, now that it comes from an environment file and no
longer counts against the task definition's 64 KiB. The binding limit is the env-file line:
ECS's agent and Docker read env files with Go's bufio.Scanner, which fails a line of 64 KiB or
more (`ENVIRONMENT_FILE_LINE_LIMIT`); 63 KiB leaves room for the variable's name. Linux's
limit of 128 KiB per environment string (MAX_ARG_STRLEN) is further away. The bundle was
30,736 characters when it moved out of the task definition (issue 13)."""
ECS_TASK_DEFINITION_LIMIT = 64 * 1024
RESOLUTION_MARGIN = 8 * 1024
"""The template holds `Ref`s and `Fn::Join`s where ECS receives ARNs and URLs: a few dozen
values, each at most about 150 characters longer once resolved."""
TASK_DEFINITION_HEADROOM = 16 * 1024
"""What mw1.micro's task definition, the largest (every component in one task), keeps free
under ECS's limit after the resolution margin: about 26 KiB when the bundle left it."""


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
    assert len(RUNTIME_ENV_VAR) + 1 + MAX_BUNDLE_CHARS <= ENVIRONMENT_FILE_LINE_LIMIT


def test_bundle_value_has_no_equals_sign_and_decodes() -> None:
    """The ECS agent keeps a value only up to its next `=`: base64 without padding."""
    value = runtime_bundle_b64()

    assert "=" not in value
    assert zipfile.is_zipfile(io.BytesIO(runtime_bundle.decode_bundle(value)))


def test_environment_file_holds_one_line_with_the_bundle() -> None:
    content = environment_file_content()

    assert content == f"{RUNTIME_ENV_VAR}={runtime_bundle_b64()}\n"
    assert environment_file().name.endswith(".env")
    assert environment_file().read_text(encoding="ascii") == content
    assert environment_file_sha256() == hashlib.sha256(content.encode()).hexdigest()


def test_environment_file_is_rewritten_when_removed() -> None:
    environment_file().unlink()

    assert environment_file().read_text(encoding="ascii") == environment_file_content()


def test_fails_when_the_environment_file_line_is_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_bundle, "runtime_bundle_b64", lambda: "A" * 70_000)
    environment_file_content.cache_clear()
    try:
        with pytest.raises(ValueError, match="at most 65535"):
            environment_file_content()
    finally:
        environment_file_content.cache_clear()


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


@dataclass(frozen=True)
class Synthesized:
    template: dict[str, Any]
    assembly: Path


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """mw1.micro's cloud assembly: the largest task definition, every component in one task."""
    from tests.stacks import environment_stack
    from tools.cdk_app import project_app

    app = project_app(outdir=str(tmp_path_factory.mktemp("assembly")))
    environment_stack(app, environment_class="mw1.micro")
    assembly = app.synth()
    [stack] = assembly.stacks
    return Synthesized(stack.template, Path(assembly.directory))


def _task_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::ECS::TaskDefinition"
    }


def test_the_largest_task_definition_fits_ecs_limit_with_headroom(micro: Synthesized) -> None:
    sizes = {
        logical_id: len(json.dumps(props, separators=(",", ":")))
        for logical_id, props in _task_definitions(micro.template).items()
    }
    largest = max(sizes, key=sizes.__getitem__)

    limit = ECS_TASK_DEFINITION_LIMIT - TASK_DEFINITION_HEADROOM
    assert sizes[largest] + RESOLUTION_MARGIN < limit, (largest, sizes)


def _statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_init_container_reads_the_bundle_from_its_environment_file(micro: Synthesized) -> None:
    expected_key = hashlib.sha256(environment_file_sha256().encode()).hexdigest() + ".env"
    for logical_id, props in _task_definitions(micro.template).items():
        for container in props["ContainerDefinitions"]:
            environment = {e["Name"] for e in container.get("Environment", [])}
            assert RUNTIME_ENV_VAR not in environment, (logical_id, container["Name"])
        [runtime] = [c for c in props["ContainerDefinitions"] if c["Name"] == "openmwaa-runtime"]
        [env_file] = runtime["EnvironmentFiles"]

        assert env_file["Type"] == "s3"
        assert env_file["Value"].endswith("/" + expected_key), env_file


def test_execution_role_reads_exactly_the_environment_file(micro: Synthesized) -> None:
    for props in _task_definitions(micro.template).values():
        [runtime] = [c for c in props["ContainerDefinitions"] if c["Name"] == "openmwaa-runtime"]
        [env_file] = runtime["EnvironmentFiles"]
        object_arn = env_file["Value"]
        bucket_arn = object_arn.split("/", 1)[0]
        role = props["ExecutionRoleArn"]["Fn::GetAtt"][0]

        s3 = [
            s
            for s in _statements(micro.template, role)
            if any(str(a).startswith("s3:") for a in _as_list(s["Action"]))
        ]

        assert sorted((json.dumps(s["Action"]), json.dumps(s["Resource"])) for s in s3) == sorted(
            [
                (json.dumps("s3:GetObject"), json.dumps(object_arn)),
                (json.dumps("s3:GetBucketLocation"), json.dumps(bucket_arn)),
            ]
        )
        assert all(s["Effect"] == "Allow" and "Condition" not in s for s in s3)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_cloud_assembly_holds_the_environment_file(micro: Synthesized) -> None:
    """What `cdk deploy` publishes to the asset bucket, under the key the template names."""
    [key] = {
        c["EnvironmentFiles"][0]["Value"].rsplit("/", 1)[1]
        for props in _task_definitions(micro.template).values()
        for c in props["ContainerDefinitions"]
        if c["Name"] == "openmwaa-runtime"
    }

    staged = micro.assembly / f"asset.{key}"
    assert staged.read_text(encoding="ascii") == environment_file_content()
