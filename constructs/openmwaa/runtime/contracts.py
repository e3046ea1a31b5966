"""The names the construct, the bundled Lambdas and the container runtime must agree on.

One home for each contract. Standard library only and free of imports, because it ships three
ways: as ``openmwaa.runtime.contracts`` to the construct, inside the runtime zip every Airflow
container runs (``runtime_bundle.py`` packs this folder), and in the Lambda asset as
``openmwaa_contracts`` (``lambdas/openmwaa_contracts.py`` is a link to this file, which the
asset copy and the wheel build resolve to its content). A value changed here changes all three.
"""

from __future__ import annotations

# Airflow components (the value of OPENMWAA_COMPONENT in each container).
SCHEDULER = "scheduler"
DAG_PROCESSOR = "dag-processor"
TRIGGERER = "triggerer"
API_SERVER = "api-server"
"""The UI and REST API server (Airflow 3 api-server, Airflow 2 webserver)."""
EXECUTION_API = "execution-api"
"""The Task Execution API server (Airflow 3 only)."""
WORKER = "worker"
COMPONENTS = (SCHEDULER, DAG_PROCESSOR, TRIGGERER, API_SERVER, EXECUTION_API, WORKER)
"""Every component, in start order."""

# The Airflow containers' environment: the construct writes these variables (plain, or as ECS
# secrets for DB_SECRET, FERNET_SEED and ADMIN_SECRET), the runtime reads them.
COMPONENT_VARIABLE = "OPENMWAA_COMPONENT"
ENVIRONMENT_NAME_VARIABLE = "OPENMWAA_ENVIRONMENT_NAME"
SYNC_ROOT_VARIABLE = "OPENMWAA_SYNC_ROOT"
AIRFLOW_VERSION_VARIABLE = "OPENMWAA_AIRFLOW_VERSION"
PYTHON_VERSION_VARIABLE = "OPENMWAA_PYTHON_VERSION"
CONSTRAINTS_URL_VARIABLE = "OPENMWAA_CONSTRAINTS_URL"
CPU_ARCHITECTURE_VARIABLE = "OPENMWAA_CPU_ARCHITECTURE"
"""The tasks' CPU architecture (`ARM64`, `X86_64`), a label and nothing more: an input of the
requirements build's key, so a build's native wheels are never used on the other architecture
(switching `cpu_architecture` builds again). No code path depends on its value."""
API_SERVER_PORT_VARIABLE = "OPENMWAA_API_SERVER_PORT"
DB_NAME_VARIABLE = "OPENMWAA_DB_NAME"
DB_SECRET_VARIABLE = "OPENMWAA_DB_SECRET"
FERNET_SEED_VARIABLE = "OPENMWAA_FERNET_SEED"
ADMIN_SECRET_VARIABLE = "OPENMWAA_ADMIN_SECRET"
SIGN_IN_VARIABLE = "OPENMWAA_SIGN_IN"
"""How people sign in to the UI, as JSON (``SignIn.settings``): plain, on the api-server (the
webserver on Airflow 2) only; the runtime writes Airflow's ``webserver_config.py`` from it."""
SIGN_IN_CLIENT_SECRET_VARIABLE = "OPENMWAA_SIGN_IN_CLIENT_SECRET"
"""The identity provider's OAuth client secret: an ECS secret from Secrets Manager, api-server
only, never a plain variable."""
MACHINE_KEY_VARIABLE = "OPENMWAA_MACHINE_KEY"
"""The key the machine users' passwords derive from (``runtime/machine_users.machine_password``
and its copy in the API access Lambda, kept equal by a test): an ECS secret on the api-server;
the Lambda reads it from Secrets Manager."""
AIRFLOW_URL_VARIABLE = "OPENMWAA_AIRFLOW_URL"
"""The environment's web URL (the load balancer's), as the API access Lambda calls it."""
MACHINE_KEY_SECRET_VARIABLE = "OPENMWAA_MACHINE_KEY_SECRET_ARN"
"""The machine key secret's ARN, which the API access Lambda reads."""
QUEUE_URL_VARIABLE = "OPENMWAA_CELERY_QUEUE_URL"
QUEUE_NAME_VARIABLE = "OPENMWAA_CELERY_QUEUE_NAME"
POOL_QUEUES_VARIABLE = "OPENMWAA_CELERY_POOL_QUEUES"
"""The worker pools' queues, ``name=url`` pairs separated by commas (every container)."""
WORKER_QUEUE_VARIABLE = "OPENMWAA_CELERY_WORKER_QUEUE"
"""The Celery queue a worker pool's workers consume (unset: the environment's queue)."""
TASK_PROTECTION_VARIABLE = "OPENMWAA_TASK_PROTECTION"
"""``off`` turns the worker's ECS task scale-in protection off (mw1.micro: one task, no
autoscaler, no ecs:UpdateTaskProtection permission); unset or ``on``: on when ECS gives the
agent's URI."""

# Ports.
API_SERVER_PORT = 8080
"""The port of the UI and REST API server; the load balancer's target."""
EXECUTION_API_PORT = 8081
"""The port of the Task Execution API server: distinct from the UI's, since mw1.micro runs
both in one task, which has one network namespace."""

# The source bucket's layout (S3 keys), mirrored one to one on the shared file system.
DAGS_PREFIX = "dags/"
PLUGINS_KEY = "plugins.zip"
REQUIREMENTS_KEY = "requirements.txt"
STARTUP_SCRIPT_KEY = "startup.sh"

PLUGINS_DIR = "plugins"
"""The extracted plugins.zip on the sync root (a link the DAG sync swaps per version)."""

# MWAA's file layout (its AIRFLOW_HOME), which DAGs written for MWAA name literally: each path
# under MWAA_HOME is a symbolic link into the sync root, made by the init container in a task
# volume mounted there (see task_definitions.py); the runtime links the image's own
# ``$AIRFLOW_HOME/dags`` and ``$AIRFLOW_HOME/plugins`` the same way.
MWAA_HOME = "/usr/local/airflow"
MWAA_HOME_LINKS = (
    ("dags", DAGS_PREFIX.rstrip("/")),
    ("plugins", PLUGINS_DIR),
    ("requirements/requirements.txt", REQUIREMENTS_KEY),
    ("startup/startup.sh", STARTUP_SCRIPT_KEY),
)
"""``(path under MWAA_HOME, path under the sync root)`` of each link."""
AIRFLOW_HOME_LINKS = MWAA_HOME_LINKS[:2]
"""The links the runtime makes in the image's ``$AIRFLOW_HOME`` (``/opt/airflow``)."""

# The one-shot requirements build (an ECS task the DAG sync Lambda starts) and its files on
# the sync root, which the Lambda reads and every container uses.
BUILD_REQUIREMENTS = "build-requirements"
"""OPENMWAA_COMPONENT of the build task (not an Airflow component: not in COMPONENTS)."""
REQUIREMENTS_BUILDS_DIR = ".openmwaa/requirements"
"""The builds' folder under the sync root: ``<key>/``, ``<key>.failed``, ``<key>.requested``."""
REQUIREMENTS_BUILD_MARKER = "openmwaa-build.json"
"""The complete marker inside a build's folder."""
REQUIREMENTS_KEY_VARIABLES = (
    AIRFLOW_VERSION_VARIABLE,
    PYTHON_VERSION_VARIABLE,
    CONSTRAINTS_URL_VARIABLE,
    CPU_ARCHITECTURE_VARIABLE,
)
"""The build key's inputs besides requirements.txt, read from the environment."""
PYPI_MIRROR_VARIABLE = "OPENMWAA_PYPI_MIRROR"
"""The environment's PyPI mirror on AWS CodeArtifact, as JSON (``{"domain", "domainOwner",
"repository", "region"}``), plain, on every Airflow container and the requirements build when
``pypi_mirror`` is on (absent: pip's own index). The runtime points pip at that repository
unless requirements.txt names an index or startup.sh exports ``PIP_INDEX_URL`` or
``PIP_CONFIG_FILE`` (``runtime/package_index.py``). Not an input of the build key: the mirror
serves PyPI's own files, so switching it changes where pip downloads, not what it installs."""

# Metrics the bundled Lambdas publish (namespace, dimensions, names).
METRIC_NAMESPACE = "OpenMWAA"
ENVIRONMENT_DIMENSION = "Environment"
WORKER_POOL_DIMENSION = "WorkerPool"
METRIC_QUEUED_TASKS = "QueuedTasks"
METRIC_RUNNING_TASKS = "RunningTasks"
METRIC_DESIRED_WORKERS = "DesiredWorkers"
METRIC_RUNNING_WORKERS = "RunningWorkers"
METRIC_DAG_SYNTAX_ERRORS = "DagSyntaxErrors"
METRIC_DUPLICATE_DAG_IDS = "DuplicateDagIds"
METRIC_FILES_WRITTEN = "FilesWritten"
METRIC_FILES_REMOVED = "FilesRemoved"
METRIC_SYNC_FAILURES = "SyncFailures"
METRIC_REQUIREMENTS_BUILD_FAILED = "RequirementsBuildFailed"
METRIC_TASKS_BELOW_DESIRED = "TasksBelowDesired"
SERVICE_DIMENSION = "Service"
"""TasksBelowDesired's second dimension: the component a service runs (`worker:<queue>` for
a pool's)."""

# Airflow's own metrics (StatsD in the container, a relay to CloudWatch; MWAA's names).
METRICS_VARIABLE = "OPENMWAA_METRICS"
"""Airflow's metrics for CloudWatch, as JSON, plain, on every Airflow container when metrics
are on (absent: StatsD stays off): ``{"namespace": str, "environment": str, "metrics": [MWAA
metric names allowed], "port": int, "relay": bool}``. The runtime turns Airflow's StatsD on
towards 127.0.0.1:<port>; the one container per task with ``"relay": true`` also starts the
metrics relay (``runtime/metrics_relay.py``), which listens there and publishes to CloudWatch
with PutMetricData every minute. Containers of one task share its network namespace, so one
relay serves them all (mw1.micro)."""
STATSD_PORT = 8125
"""The relay's UDP port on the task's loopback."""
MWAA_METRIC_NAMESPACE = "AmazonMWAA"
"""The default namespace of Airflow's metrics: MWAA's, so an MWAA alarm or dashboard moves
over by changing the Environment dimension's value."""
FUNCTION_DIMENSION = "Function"
DAG_DIMENSION = "DAG"
TASK_DIMENSION = "Task"

# Secrets Manager names of the Airflow secrets backend (MWAA's convention).
CONNECTIONS_PREFIX = "airflow/connections"
VARIABLES_PREFIX = "airflow/variables"
SECRETS_PREFIXES = (CONNECTIONS_PREFIX, VARIABLES_PREFIX)

# Airflow's roles (FAB's built-in roles, MWAA's role names) and the machine users: one FAB user
# per role, which the api-server creates and the API access Lambda signs in as on behalf of an
# IAM caller allowed that role. MACHINE_PASSWORD_CONTEXT is what the key signs per role.
AIRFLOW_ROLES = ("Admin", "Op", "User", "Viewer", "Public")
"""The roles people and machines may be given, as MWAA names them."""
MACHINE_USER_PREFIX = "openmwaa-iam-"
"""Machine users are ``<prefix><role in lower case>``, e.g. ``openmwaa-iam-op``."""


def machine_username(role: str) -> str:
    """The machine user of ``role`` (one of :data:`AIRFLOW_ROLES`)."""
    return MACHINE_USER_PREFIX + role.lower()


MACHINE_PASSWORD_CONTEXT = "openmwaa-machine-user/"
"""The HMAC message is this prefix and the role name."""

# What the template alone cannot say about an environment, for `openmwaa cost` and reviewers.
ENVIRONMENT_METADATA_KEY = "openmwaa:environment"
"""Metadata key on the broker queue's resource in the template: ``{"environmentName",
"environmentClass" (MWAA's name), "airflowVersion", "schedulers", "minWebservers",
"maxWebservers", "minWorkers", "maxWorkers", "tasksPerWorker"}``."""
