"""Celery configuration of the worker: Airflow's own, plus scale-in protection on task receipt.

The bootstrap starts ``airflow celery worker`` with ``[celery] celery_config_options`` set to
``<this package>.celery_signals.CELERY_CONFIG`` and the runtime's zip on ``PYTHONPATH``.
Airflow reads that attribute when it creates its Celery app in the worker process; reading it
builds a copy of Airflow's ``DEFAULT_CELERY_CONFIG`` and, when ``$ECS_AGENT_URI`` is set (on
ECS) and ``$OPENMWAA_TASK_PROTECTION`` is not ``off`` (it is on mw1.micro), connects
:func:`on_task_received` to Celery's ``task_received`` signal. The worker's consumer sends
that signal in the main process as soon as a message arrives, before the task goes to a pool
process: the handler (:class:`.task_protection.ReceiptProtector`) turns ECS
task scale-in protection on then and there, so a worker never runs a task unprotected.

Importing this module has no side effect and needs neither Airflow nor Celery (the bootstrap
never imports it); Airflow and Celery are imported when ``CELERY_CONFIG`` is first read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from . import config, contracts, task_protection

LOG = logging.getLogger("openmwaa.celery")

_protector: task_protection.ReceiptProtector | None = None
_config: dict[str, Any] | None = None


def on_task_received(**_kwargs: Any) -> None:
    """Celery ``task_received`` handler; never raises into the consumer."""
    try:
        if _protector is not None:
            _protector.on_receipt()
    except Exception:
        LOG.exception("task scale-in protection on receipt failed")


def load(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Airflow's default Celery configuration; connects the receipt handler (once)."""
    global _config, _protector
    if _config is None:
        try:
            from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
        except ImportError:  # Airflow 2 with an old Celery provider
            from airflow.config_templates.default_celery import DEFAULT_CELERY_CONFIG
        agent_uri = env.get("ECS_AGENT_URI")
        enabled = config.task_protection_enabled(env)
        if agent_uri and enabled:
            from celery.signals import task_received

            _protector = task_protection.ReceiptProtector(
                agent_uri, marker_path=task_protection.RECEIPT_MARKER
            )
            task_received.connect(on_task_received, weak=False)
        _config = dict(DEFAULT_CELERY_CONFIG)
        if not enabled:
            state = f"off ({contracts.TASK_PROTECTION_VARIABLE}=off)"
        else:
            state = "on" if agent_uri else "off (ECS_AGENT_URI is not set)"
        LOG.info("openmwaa Celery config loaded: scale-in protection on task receipt %s", state)
    return _config


def __getattr__(name: str) -> Any:
    if name == "CELERY_CONFIG":
        return load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
