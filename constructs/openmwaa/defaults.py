"""Every default of the environment, as data: one home, read by the constructs and the docs.

Plain values for the defaults that are the same in every environment, and pure functions for
those the environment class decides. Nothing here builds a resource, and nothing here imports the
props types (they read their defaults from here). `environment_props.resolve` applies them to
the props a user gave; `tests/unit/test_props.py` checks README's defaults table
against these values, so the table cannot drift from the code.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs

from .environment_class import EnvironmentClass, EnvironmentClassSpec
from .runtime import contracts, metric_names
from .versions import DEFAULT_AIRFLOW_VERSION, DEFAULT_PYTHON_VERSION

# Airflow and sizing.
AIRFLOW_VERSION = DEFAULT_AIRFLOW_VERSION
"""The newest Airflow version this library proves end to end."""
PYTHON_VERSION = DEFAULT_PYTHON_VERSION
"""The Python of the stock image every component runs."""
ENVIRONMENT_CLASS = EnvironmentClass.MW1_SMALL
MIN_WORKERS = 1


def max_workers(spec: EnvironmentClassSpec) -> int:
    """Most Celery workers: 10, or 1 on mw1.micro (its single task runs one worker)."""
    return spec.default_max_workers


def schedulers(spec: EnvironmentClassSpec) -> int:
    """Scheduler tasks: 2 (MWAA's default), or 1 on mw1.micro."""
    return spec.default_schedulers


def min_webservers(spec: EnvironmentClassSpec) -> int:
    """Fewest web server tasks: 2 (MWAA's default), or 1 on mw1.micro."""
    return spec.default_min_webservers


def max_webservers(spec: EnvironmentClassSpec, min_webservers: int) -> int:
    """Most web server tasks: the class's default, never fewer than `min_webservers`."""
    return max(spec.default_max_webservers, min_webservers)


# Web access.
WEBSERVER_ACCESS_MODE = "PRIVATE_ONLY"
"""A `WebserverAccessMode`: an internal load balancer."""

# Network.
NAT_GATEWAYS = 1
"""NAT gateways of a new VPC: one (about $33 a month plus data); 2 for zone-level resilience."""
PRIVATE_NETWORK = False
"""The VPC routes out through NAT; `private_network=True` (or `nat_gateways=0`) removes every
route out and reaches AWS through VPC endpoints."""
VPC_ENDPOINTS_NEW_VPC = "create"
"""In a private network with a new VPC: the environment creates its endpoints."""
VPC_ENDPOINTS_OWN_VPC = "verify"
"""In a private network in your VPC: a deploy-time check fails the deploy naming each
endpoint missing."""
VPC_ENDPOINT_MODES = ("create", "verify", "unchecked")
"""The `vpc_endpoints` values."""
FLOW_LOG_RETENTION = logs.RetentionDays.ONE_YEAR
"""How long the new VPC's flow logs are kept (a year: the usual audit horizon); the
`flow_log_retention` prop."""

# Data kept on delete.
REMOVAL_POLICY = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
"""CloudFormation `RetainExceptOnCreate`: kept on stack delete and replacement, deleted by a
failed first create's rollback, so a retry does not hit "already exists"."""
DELETION_PROTECTION = True

# The source bucket and its access logs.
SOURCE_NONCURRENT_VERSION_RETENTION = Duration.days(90)
"""How long an overwritten or deleted object's old versions stay in the source bucket."""
INCOMPLETE_UPLOAD_EXPIRY = Duration.days(7)
ACCESS_LOG_EXPIRY = Duration.days(365)
"""How long S3 and load-balancer access logs are kept."""
ACCESS_LOG_NONCURRENT_EXPIRY = Duration.days(30)

# Logs.
LOG_LEVEL = "INFO"
"""A `LogLevel`, for every log type."""
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
"""How long Airflow's log groups (and the Lambdas') are kept."""

# Compute.
CPU_ARCHITECTURE = "ARM64"
"""Every Airflow task on Graviton (arm64) Fargate: 20 % cheaper per vCPU-hour and GB-hour than
x86_64, and the stock image is multi-architecture."""
CONTAINER_INSIGHTS = False
"""No Container Insights on the cluster we create (about $41 a month on mw1.small); the
alarms do not need it."""

# Workers and sync.
WORKER_FARGATE_SPOT = False
WORKER_ON_DEMAND_BASE = 0
"""With Spot workers: how many of them always run on demand (none)."""
ENABLE_EXECUTE_COMMAND = False
SCALE_IN_COOLDOWN = Duration.minutes(5)
"""How long demand must stay lower before workers are removed."""
RECONCILE_INTERVAL = Duration.minutes(10)
"""How often the DAG sync compares the bucket with the file system."""
WORKER_POOL_MIN_WORKERS = 0
WORKER_POOL_MAX_WORKERS = 5

# Airflow's metrics in CloudWatch.
METRICS_NAMESPACE = contracts.MWAA_METRIC_NAMESPACE
"""MWAA's namespace, so an MWAA alarm or dashboard moves over by changing the value of its
Environment dimension."""
METRICS_ALLOW_LIST = metric_names.DEFAULT_ALLOW_LIST
"""The environment-level metrics (no per-DAG or per-task ones, whose count grows with your
DAGs); docs/metrics.md lists them and their monthly cost."""

# Pause and resume.
SCHEDULE_TIME_ZONE = "UTC"
"""The time zone of `pause_schedule` and `resume_schedule` (an IANA name)."""
DATABASE_AUTO_PAUSE = Duration.minutes(5)
"""How long the metadata database must have no connection before Aurora pauses it (0 ACU),
when its engine version can: Aurora's shortest, so a paused environment's database stops
billing compute five minutes after its last service stopped."""
