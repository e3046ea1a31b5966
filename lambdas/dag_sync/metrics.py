"""CloudWatch Embedded Metric Format: one JSON log line per invocation, turned into metrics
by CloudWatch Logs. No PutMetricData call and no extra IAM permission."""

from __future__ import annotations

import json
from collections.abc import Mapping

from dag_sync.core import Report


def report_values(report: Report) -> dict[str, int]:
    return {
        "DagSyntaxErrors": len(report.syntax_errors),
        "DuplicateDagIds": len(report.duplicate_dag_ids),
        "FilesWritten": len(report.written),
        "FilesRemoved": len(report.removed),
        "SyncFailures": len(report.failed),
    }


def emf_line(namespace: str, environment: str, values: Mapping[str, int], timestamp_ms: int) -> str:
    document: dict[str, object] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["Environment"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                }
            ],
        },
        "Environment": environment,
    }
    document.update(values)
    return json.dumps(document, separators=(",", ":"))
