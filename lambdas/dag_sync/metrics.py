"""CloudWatch Embedded Metric Format: one JSON log line per invocation, turned into metrics
by CloudWatch Logs. No PutMetricData call and no extra IAM permission."""

from __future__ import annotations

import json
from collections.abc import Mapping

import openmwaa_contracts as contracts

from dag_sync.model import Report


def report_values(report: Report) -> dict[str, int]:
    return {
        contracts.METRIC_DAG_SYNTAX_ERRORS: len(report.syntax_errors),
        contracts.METRIC_DUPLICATE_DAG_IDS: len(report.duplicate_dag_ids),
        contracts.METRIC_FILES_WRITTEN: len(report.written),
        contracts.METRIC_FILES_REMOVED: len(report.removed),
        contracts.METRIC_SYNC_FAILURES: len(report.failed),
    }


def emf_line(namespace: str, environment: str, values: Mapping[str, int], timestamp_ms: int) -> str:
    document: dict[str, object] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[contracts.ENVIRONMENT_DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                }
            ],
        },
        contracts.ENVIRONMENT_DIMENSION: environment,
    }
    document.update(values)
    return json.dumps(document, separators=(",", ":"))
