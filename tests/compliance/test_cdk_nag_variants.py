"""cdk-nag over the variants whose resources differ: micro, public HTTPS, own VPC."""

from __future__ import annotations

import aws_cdk as cdk

from openmwaa import AirflowEnvironment, EnvironmentClass, WorkerPool
from tests.compliance.nag import nag_findings
from tests.stacks import public_https_stack


def test_cdk_nag_public_https_variant_has_no_unacknowledged_finding() -> None:
    assert nag_findings(public_https_stack) == []


def test_cdk_nag_micro_variant_has_no_unacknowledged_finding() -> None:
    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Micro")
        AirflowEnvironment(stack, "Airflow", environment_class=EnvironmentClass.MW1_MICRO)

    assert nag_findings(build) == []


def test_cdk_nag_worker_pools_variant_has_no_unacknowledged_finding() -> None:
    """A pool adds a queue, a task definition, a service and an autoscaler (function, table):
    each must carry the acknowledgements of its counterpart, on Spot and on demand."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Pools")
        AirflowEnvironment(
            stack,
            "Airflow",
            worker_pools=[WorkerPool("long-running"), WorkerPool("spot", fargate_spot=True)],
        )

    assert nag_findings(build) == []
