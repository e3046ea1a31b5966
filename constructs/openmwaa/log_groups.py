"""One CloudWatch log group per Airflow log type, named as MWAA names them."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct

from .nag_acknowledgements import acknowledge
from .nag_reasons import LOG_GROUP_WITHOUT_CMK
from .props import LoggingConfiguration, ModuleLogging


@dataclass(frozen=True)
class LogType:
    """A log type: its construct id, the suffix of its group name, its configuration field."""

    construct_id: str
    suffix: str
    config_field: str


LOG_TYPES: tuple[LogType, ...] = (
    LogType("DagProcessing", "DAGProcessing", "dag_processing"),
    LogType("Scheduler", "Scheduler", "scheduler"),
    LogType("Triggerer", "Triggerer", "triggerer"),
    LogType("Task", "Task", "task"),
    LogType("WebServer", "WebServer", "webserver"),
    LogType("Worker", "Worker", "worker"),
)


def log_group_name(environment_name: str, suffix: str) -> str:
    """`airflow-<environment>-<Type>`, MWAA's naming, so existing queries keep working."""
    return f"airflow-{environment_name}-{suffix}"


class AirflowLogGroups(Construct):
    """Log groups `airflow-<environment>-{DAGProcessing,Scheduler,Triggerer,Task,WebServer,Worker}`.

    Encrypted with `kms_key` when given, kept `logging_configuration.retention` (default one
    month), and removed as `removal_policy` says (default RETAIN_ON_UPDATE_OR_DELETE:
    CloudFormation `RetainExceptOnCreate`, kept on stack delete or replacement but deleted
    by the rollback of a failed first create, so a retry does not find the fixed names
    taken). The names are valid for every environment name MWAA accepts. Task logs go to
    the Task group through Airflow's remote logging, so they show in the UI; the others
    receive the containers' output.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        logging_configuration: LoggingConfiguration,
        kms_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.configuration = logging_configuration
        self.groups: dict[str, logs.LogGroup] = {
            t.config_field: logs.LogGroup(
                self,
                t.construct_id,
                log_group_name=log_group_name(environment_name, t.suffix),
                retention=logging_configuration.retention,
                encryption_key=kms_key,
                removal_policy=removal_policy,
            )
            for t in LOG_TYPES
        }
        if kms_key is None:
            for group in self.groups.values():
                acknowledge(group, [LOG_GROUP_WITHOUT_CMK])

    def group(self, config_field: str) -> logs.LogGroup:
        """The log group of a log type, by its `LoggingConfiguration` field name."""
        return self.groups[config_field]

    def settings(self, config_field: str) -> ModuleLogging:
        """Whether a log type is enabled and at which level."""
        value: ModuleLogging = getattr(self.configuration, config_field)
        return value
