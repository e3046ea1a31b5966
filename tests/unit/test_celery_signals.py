"""The worker's Celery configuration module: Airflow's config plus protection on task receipt.

Airflow and Celery are not in this venv: small stand-ins for the two things the module uses
(``DEFAULT_CELERY_CONFIG`` and the ``task_received`` signal) are put in ``sys.modules``. The
end-to-end test (tests/e2e/test_autoscaler_e2e.py) does the same with the real Airflow 3.3.2
and Celery, and checks the real worker loads the module.
"""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openmwaa import runtime_bundle
from openmwaa.runtime import bootstrap, celery_signals
from openmwaa.runtime import task_protection as tp
from tests.ecs_agent_stub import FakeEcsAgent

DEFAULT_CONFIG = {"broker_url": "sqs://", "task_acks_late": True, "worker_concurrency": 5}


class FakeSignal:
    """celery.utils.dispatch.Signal, as far as the module uses it."""

    def __init__(self) -> None:
        self.receivers: list[Callable[..., Any]] = []

    def connect(self, receiver: Callable[..., Any], weak: bool = True) -> None:
        assert weak is False, "a weak reference to a module function could be collected"
        self.receivers.append(receiver)

    def send(self, sender: object, **named: object) -> None:
        for receiver in self.receivers:
            receiver(signal=self, sender=sender, **named)


def _module(monkeypatch: pytest.MonkeyPatch, name: str, **attributes: object) -> None:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


@pytest.fixture
def signal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeSignal:
    """Fake Airflow 3 and Celery modules; fresh module state; the marker in tmp_path."""
    task_received = FakeSignal()
    for name in ("airflow", "airflow.providers", "airflow.providers.celery"):
        _module(monkeypatch, name)
    _module(monkeypatch, "airflow.providers.celery.executors")
    _module(
        monkeypatch,
        "airflow.providers.celery.executors.default_celery",
        DEFAULT_CELERY_CONFIG=DEFAULT_CONFIG,
    )
    _module(monkeypatch, "celery")
    _module(monkeypatch, "celery.signals", task_received=task_received)
    monkeypatch.setattr(celery_signals, "_config", None)
    monkeypatch.setattr(celery_signals, "_protector", None)
    monkeypatch.setattr(tp, "RECEIPT_MARKER", str(tmp_path / "task-received"))
    return task_received


def test_celery_config_is_airflows_and_connects_the_receipt_handler(
    signal: FakeSignal, agent: FakeEcsAgent, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog
) -> None:
    monkeypatch.setenv("ECS_AGENT_URI", agent.uri)

    with caplog.at_level(logging.INFO, logger="openmwaa.celery"):
        config = celery_signals.CELERY_CONFIG
    assert celery_signals.CELERY_CONFIG is config  # built and connected once

    assert config == DEFAULT_CONFIG and config is not DEFAULT_CONFIG
    assert signal.receivers == [celery_signals.on_task_received]
    assert "scale-in protection on task receipt on" in caplog.text
    assert agent.bodies() == []

    signal.send(sender=None, request=object())

    assert agent.requests == [
        ("PUT", agent.protection_path, {"ProtectionEnabled": True, "ExpiresInMinutes": 60})
    ]
    assert (tmp_path / "task-received").exists()


def test_without_an_ecs_agent_nothing_is_connected(
    signal: FakeSignal, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog
) -> None:
    monkeypatch.delenv("ECS_AGENT_URI", raising=False)

    with caplog.at_level(logging.INFO, logger="openmwaa.celery"):
        config = celery_signals.CELERY_CONFIG

    assert config == DEFAULT_CONFIG
    assert signal.receivers == []
    assert "off (ECS_AGENT_URI is not set)" in caplog.text
    celery_signals.on_task_received(sender=None)
    assert not (tmp_path / "task-received").exists()


def test_task_protection_switched_off_connects_nothing(
    signal: FakeSignal, agent: FakeEcsAgent, tmp_path: Path, caplog
) -> None:
    # mw1.micro: ECS gives the agent URI, but the task may not change its protection
    env = {"ECS_AGENT_URI": agent.uri, "OPENMWAA_TASK_PROTECTION": "off"}

    with caplog.at_level(logging.INFO, logger="openmwaa.celery"):
        config = celery_signals.load(env)

    assert config == DEFAULT_CONFIG
    assert signal.receivers == []
    assert "off (OPENMWAA_TASK_PROTECTION=off)" in caplog.text
    celery_signals.on_task_received(sender=None)
    assert agent.requests == []
    assert not (tmp_path / "task-received").exists()


def test_airflow_2_without_the_providers_module_uses_the_core_one(
    signal: FakeSignal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "airflow.providers.celery.executors.default_celery")
    monkeypatch.setattr(sys, "path", [])  # nothing else to find it on
    _module(monkeypatch, "airflow.config_templates")
    _module(
        monkeypatch,
        "airflow.config_templates.default_celery",
        DEFAULT_CELERY_CONFIG={"broker_url": "sqs://", "airflow": 2},
    )

    assert celery_signals.load({}) == {"broker_url": "sqs://", "airflow": 2}


def test_the_handler_never_raises_into_the_celery_consumer(
    monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    class Broken:
        def on_receipt(self) -> bool:
            raise PermissionError("/tmp is read-only")

    monkeypatch.setattr(celery_signals, "_protector", Broken())
    with caplog.at_level(logging.ERROR, logger="openmwaa.celery"):
        celery_signals.on_task_received(sender=None, request=None)
    assert "task scale-in protection on receipt failed" in caplog.text


def test_other_attributes_do_not_exist() -> None:
    with pytest.raises(AttributeError, match="NOT_THERE"):
        _ = celery_signals.NOT_THERE


def test_module_imports_only_the_standard_library_at_import_time() -> None:
    # Airflow and Celery are imported inside load() only, in the worker process.
    source = Path(celery_signals.__file__).read_text()
    tree = ast.parse(source)
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            top_level.add(str(node.module).split(".")[0])
    assert top_level <= set(sys.stdlib_module_names) | {"__future__"}


# --- the bundle: the worker's Python finds the module on PYTHONPATH ------------------------

FAKE_PACKAGES = {
    "airflow/__init__.py": "",
    "airflow/providers/__init__.py": "",
    "airflow/providers/celery/__init__.py": "",
    "airflow/providers/celery/executors/__init__.py": "",
    "airflow/providers/celery/executors/default_celery.py": (
        "DEFAULT_CELERY_CONFIG = {'broker_url': 'sqs://'}\n"
    ),
    "celery/__init__.py": "",
    "celery/signals.py": (
        "class Signal:\n"
        "    receivers = []\n"
        "    def connect(self, receiver, weak=True):\n"
        "        self.receivers.append(receiver)\n"
        "task_received = Signal()\n"
    ),
}

PROBE = """
import importlib, json, os, sys
from openmwaa_runtime import bootstrap
env = bootstrap.worker_celery_env({}, bootstrap.runtime_import_root(), bootstrap.__package__)
module_path, _, attribute = env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"].rpartition(".")
config = getattr(importlib.import_module(module_path), attribute)  # as conf.getimport does
from celery.signals import task_received
print(json.dumps({"env": env, "config": config, "receivers": len(task_received.receivers)}))
"""


def test_the_bundle_on_pythonpath_provides_the_celery_config(tmp_path: Path) -> None:
    pyz = tmp_path / "runtime.pyz"
    pyz.write_bytes(runtime_bundle.decode_bundle(runtime_bundle.runtime_bundle_b64()))
    fakes = tmp_path / "site"
    for name, text in FAKE_PACKAGES.items():
        (fakes / name).parent.mkdir(parents=True, exist_ok=True)
        (fakes / name).write_text(text)

    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"PYTHONPATH": f"{fakes}:{pyz}", "ECS_AGENT_URI": "http://127.0.0.1:9/x"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["env"] == {
        "PYTHONPATH": str(pyz),
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "openmwaa_runtime.celery_signals.CELERY_CONFIG",
    }
    assert out["config"] == {"broker_url": "sqs://"}
    assert out["receivers"] == 1


def test_worker_celery_env_keeps_the_users_pythonpath_first() -> None:
    env = bootstrap.worker_celery_env({"PYTHONPATH": "/usr/local/airflow/lib"}, "/r.pyz", "p")

    assert env["PYTHONPATH"] == "/usr/local/airflow/lib:/r.pyz"
    assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == "p.celery_signals.CELERY_CONFIG"


def test_runtime_import_root_from_source_makes_the_module_importable() -> None:
    root = bootstrap.runtime_import_root()
    env = bootstrap.worker_celery_env({}, root, bootstrap.__package__)
    module_path = env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"].rpartition(".")[0]

    result = subprocess.run(
        [sys.executable, "-c", f"import {module_path}"],
        env={"PYTHONPATH": env["PYTHONPATH"]},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
