"""An Amazon MWAA environment, as GetEnvironment describes it, turned into openmwaa.

Pure: no AWS calls. `map_environment` takes the `Environment` of a GetEnvironment response
(plus the few facts the adapter looks up: the VPC of MWAA's subnets, the key behind a KMS
alias, the versions a bucket copy produced) and returns a `MappedEnvironment`: the props of an
`AirflowEnvironment`, and one `ReportLine` per MWAA setting saying whether it maps, maps
differently (and how), or has no equivalent (and what to do). `render_app`, `render_report`
and `render_summary` write those as a CDK app, a Markdown report and the command's output.

Every field of botocore's `Environment` shape is named in `HANDLED_FIELDS` (or sits under one
of `WHOLE_FIELDS`); a unit test walks the installed botocore model and fails on a field this
module does not know. Airflow configuration values never reach the report or the summary, and
values whose key or content looks secret never reach the app either.
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..environment_class import EnvironmentClass, spec_for
from ..runtime.contracts import (
    CONNECTIONS_PREFIX,
    DAGS_PREFIX,
    STARTUP_SCRIPT_KEY,
    VARIABLES_PREFIX,
)
from ..versions import DEFAULT_AIRFLOW_VERSION, DEFAULT_PYTHON_VERSION, SUPPORTED_AIRFLOW_VERSIONS
from .bucket_copy import NAMED_FILES, CopyResult, bucket_name_from_arn, relative_key
from .metadata_transfer import SENSITIVE_KEY_PARTS

if TYPE_CHECKING:
    from ..props import LoggingConfiguration

# This module loads without the AWS CDK (the `openmwaa` console script starts without jsii):
# the rules it shares with the construct (validation, log groups, the props' enums) live in
# modules that import aws_cdk, so it imports them where it maps, not here.


class Disposition(StrEnum):
    """How an MWAA setting comes across."""

    MAPS = "maps"
    """Same meaning, same value."""
    MAPS_DIFFERENTLY = "maps differently"
    """Carried over, but not one to one: the note says how."""
    NO_EQUIVALENT = "no equivalent"
    """Nothing in openmwaa takes it: the note says why and what to do instead."""


@dataclass(frozen=True)
class ReportLine:
    """One MWAA setting in the report. `note` never holds an Airflow configuration value."""

    setting: str
    """The GetEnvironment field (`MinWorkers`), or a path below one
    (`AirflowConfigurationOptions.core.default_timezone`, `LoggingConfiguration.TaskLogs`)."""
    disposition: Disposition
    openmwaa: str
    """What takes it in openmwaa (a prop, a resource), or `-`."""
    note: str = ""


# The fields of botocore's MWAA `Environment` shape this module knows, as dotted paths.
LOG_TYPES: dict[str, str] = {
    "DagProcessingLogs": "dag_processing",
    "SchedulerLogs": "scheduler",
    "WebserverLogs": "webserver",
    "WorkerLogs": "worker",
    "TaskLogs": "task",
}
"""MWAA's log types -> `LoggingConfiguration` fields (the triggerer takes the scheduler's)."""
MODULE_LOGGING_FIELDS = ("Enabled", "LogLevel", "CloudWatchLogGroupArn")

TOP_LEVEL_FIELDS: tuple[str, ...] = (
    "Name",
    "Status",
    "Arn",
    "CreatedAt",
    "WebserverUrl",
    "ExecutionRoleArn",
    "ServiceRoleArn",
    "KmsKey",
    "AirflowVersion",
    "SourceBucketArn",
    "DagS3Path",
    "PluginsS3Path",
    "PluginsS3ObjectVersion",
    "RequirementsS3Path",
    "RequirementsS3ObjectVersion",
    "StartupScriptS3Path",
    "StartupScriptS3ObjectVersion",
    "AirflowConfigurationOptions",
    "EnvironmentClass",
    "MaxWorkers",
    "NetworkConfiguration",
    "LoggingConfiguration",
    "LastUpdate",
    "WeeklyMaintenanceWindowStart",
    "Tags",
    "WebserverAccessMode",
    "MinWorkers",
    "Schedulers",
    "WebserverVpcEndpointService",
    "DatabaseVpcEndpointService",
    "CeleryExecutorQueue",
    "EndpointManagement",
    "MinWebservers",
    "MaxWebservers",
    "IdentityCenterConfiguration",
    "Teams",
)
"""Every top-level field of GetEnvironment's `Environment`, in botocore's order."""

WHOLE_FIELDS: frozenset[str] = frozenset({"LastUpdate", "IdentityCenterConfiguration", "Teams"})
"""Fields reported as a whole: what is inside them is not a setting openmwaa could take
(the last update's status, Identity Center's login, multi-team DAG locations)."""

HANDLED_FIELDS: frozenset[str] = frozenset(
    {
        *TOP_LEVEL_FIELDS,
        "NetworkConfiguration.SubnetIds",
        "NetworkConfiguration.SecurityGroupIds",
        *(f"LoggingConfiguration.{log_type}" for log_type in LOG_TYPES),
        *(
            f"LoggingConfiguration.{log_type}.{name}"
            for log_type in LOG_TYPES
            for name in MODULE_LOGGING_FIELDS
        ),
    }
)
"""Every field path the mapping reads or reports."""


def is_handled(path: str) -> bool:
    """True when the mapping knows the field at `path` (`LoggingConfiguration.TaskLogs.Enabled`)."""
    if path in HANDLED_FIELDS:
        return True
    parts = path.split(".")
    return any(".".join(parts[:i]) in WHOLE_FIELDS for i in range(1, len(parts)))


NOT_SECRET_IN_OPTION_NAMES: tuple[str, ...] = ("auth",)
"""Words of `import-metadata`'s secret-looking variable keys that Airflow's own option names
use for settings that hold no secret (`core.auth_manager`, `api.auth_backends`,
`webserver.auth_rate_limited`)."""
SECRET_KEY_WORDS: tuple[str, ...] = tuple(
    word for word in SENSITIVE_KEY_PARTS if word not in NOT_SECRET_IN_OPTION_NAMES
)
"""An option whose name (the part after the section) contains one of these is treated as
holding a secret: the words `openmwaa import-metadata` masks in variable keys, but `auth`."""
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)


def is_secret_option(key: str, value: str) -> bool:
    """True when an Airflow option looks like a secret: its name after the section
    (`smtp_password` of `smtp.smtp_password`; the section is not looked at, so `secrets.*`
    options are not secret by their section) contains one of `SECRET_KEY_WORDS`, or its value
    is a URL with a password (`scheme://user:pass@host`)."""
    name = key.lower().split(".", 1)[-1]
    return any(word in name for word in SECRET_KEY_WORDS) or bool(_URL_WITH_PASSWORD.search(value))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(m.group()) if (m := re.match(r"\d+", p)) else 0 for p in version.split("."))


def map_airflow_version(version: str) -> str:
    """The openmwaa Airflow version for MWAA's `version`.

    A supported version is kept. Otherwise the same major line: the default version when it is
    of that line (it is the one the end-to-end test proves), else the line's newest supported
    release (2.10.3 -> 2.11.2, 3.0.6 -> the default). A major line openmwaa does not run maps
    to the next one it does (1.10.12 -> 2.11.2), or the default past the newest.
    """
    if version in SUPPORTED_AIRFLOW_VERSIONS:
        return version
    major = _version_key(version)[0]

    def line(m: int) -> list[str]:
        return [v for v in SUPPORTED_AIRFLOW_VERSIONS if _version_key(v)[0] == m]

    if line(major):
        if _version_key(DEFAULT_AIRFLOW_VERSION)[0] == major:
            return DEFAULT_AIRFLOW_VERSION
        return max(line(major), key=_version_key)
    higher = sorted(
        {_version_key(v)[0] for v in SUPPORTED_AIRFLOW_VERSIONS if _version_key(v)[0] > major}
    )
    if higher:
        return max(line(higher[0]), key=_version_key)
    return DEFAULT_AIRFLOW_VERSION


_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_WINDOW_START = re.compile(r"^(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):([0-5]\d)$")
DATABASE_MAINTENANCE_MINUTES = 30
"""Aurora's shortest maintenance window; MWAA's window is a start time only."""


def database_maintenance_window(start: str) -> str | None:
    """MWAA's `WeeklyMaintenanceWindowStart` (`TUE:03:30`, UTC) as an Aurora
    `preferred_maintenance_window` of 30 minutes (`tue:03:30-tue:04:00`); None if malformed."""
    match = _WINDOW_START.match(start.strip().upper())
    if match is None:
        return None
    day = _DAYS.index(match.group(1))
    begin = day * 24 * 60 + int(match.group(2)) * 60 + int(match.group(3))
    end = (begin + DATABASE_MAINTENANCE_MINUTES) % (7 * 24 * 60)

    def fmt(minute: int) -> str:
        d, rest = divmod(minute, 24 * 60)
        return f"{_DAYS[d].lower()}:{rest // 60:02d}:{rest % 60:02d}"

    return f"{fmt(begin)}-{fmt(end)}"


@dataclass(frozen=True)
class SubnetFacts:
    """One of MWAA's subnets, as EC2 describes it."""

    subnet_id: str
    availability_zone: str
    route_table_id: str | None = None
    """Its route table (explicitly associated, or the VPC's main one); None if unknown."""


@dataclass(frozen=True)
class NetworkFacts:
    """The VPC around MWAA's subnets (looked up by the adapter: GetEnvironment names only the
    subnets and security groups)."""

    vpc_id: str
    vpc_cidr_block: str
    subnets: tuple[SubnetFacts, ...]


@dataclass(frozen=True)
class Lookups:
    """Facts the adapter looked up for the mapping. `network` None: build a new VPC."""

    network: NetworkFacts | None = None
    kms_key_arn: str | None = None
    """The key ARN behind `KmsKey` when MWAA names the key by alias."""


@dataclass(frozen=True)
class ArnParts:
    """The partition, region and account of an ARN (`parse_arn`): where the generated stack
    deploys, and how a bare KMS key id becomes a key ARN."""

    partition: str
    region: str
    account: str


def parse_arn(arn: str | None) -> ArnParts | None:
    """Partition, region and account of an ARN; None for anything else."""
    if not arn:
        return None
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None
    return ArnParts(partition=parts[1], region=parts[3], account=parts[4])


_KEY_ID = re.compile(r"^(key/)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_kms_alias(kms_key: str) -> bool:
    """True when MWAA names its key by alias (`alias/x` or an alias ARN)."""
    return kms_key.startswith("alias/") or ":alias/" in kms_key


def kms_key_arn(kms_key: str, environment_arn: ArnParts | None) -> str | None:
    """The key ARN for MWAA's `KmsKey` when it can be known without a lookup: a key ARN as
    is, a key id with the environment's partition, region and account. None for an alias."""
    if kms_key.startswith("arn:") and ":key/" in kms_key:
        return kms_key
    if _KEY_ID.match(kms_key) and environment_arn is not None:
        key_id = kms_key.removeprefix("key/")
        a = environment_arn
        return f"arn:{a.partition}:kms:{a.region}:{a.account}:key/{key_id}"
    return None


def log_group_name_from_arn(arn: str) -> str:
    """`arn:aws:logs:r:a:log-group:airflow-x-Task:*` -> `airflow-x-Task`."""
    _, _, rest = arn.partition(":log-group:")
    return rest.split(":", 1)[0]


@dataclass(frozen=True)
class LogSetting:
    """A `ModuleLogging` of the generated app, by `LoggingConfiguration` field."""

    field: str
    enabled: bool
    level: str
    """A `LogLevel` value (`INFO`)."""


@dataclass(frozen=True)
class MappedEnvironment:
    """An MWAA environment as openmwaa props, with the report of how each setting mapped.

    The props are plain data (the VPC and the key as the facts to import them by), so the
    mapping stays testable without a construct; `plain_props()` gives the ones that are plain
    `AirflowEnvironment` keyword arguments, `render_app` the whole app.
    """

    source_name: str
    source_arn: str | None
    source_version: str | None
    """MWAA's Airflow version."""
    environment: ArnParts | None
    environment_name: str
    airflow_version: str
    environment_class: EnvironmentClass
    min_workers: int | None
    max_workers: int | None
    schedulers: int | None
    min_webservers: int | None
    max_webservers: int | None
    webserver_access_mode: str
    """A `WebserverAccessMode` value."""
    configuration_options: tuple[tuple[str, str], ...]
    secret_options: tuple[str, ...]
    """Keys left out of the app because they look secret."""
    refused_options: tuple[tuple[str, str], ...]
    """(key, why) of the keys left out because openmwaa refuses or sets them."""
    kms_key_arn: str | None
    logging: tuple[LogSetting, ...]
    tags: tuple[tuple[str, str], ...]
    network: NetworkFacts | None
    database_maintenance_window: str | None
    object_versions: tuple[tuple[str, str], ...]
    """(prop, version id in the new bucket): set only after a bucket copy."""
    execution_role_arn: str | None
    copy: CopyResult | None
    report: tuple[ReportLine, ...]
    warnings: tuple[str, ...] = field(default=())
    """What stops or breaks the first deploy unless the user acts (shown first)."""
    command_options: tuple[str, ...] = field(default=())
    """The `from-mwaa` options of this run that shape app.py (`--region`, `--name`,
    `--new-vpc`), as arguments: the command the report prints next repeats them, so it writes
    the same app (without `--name`, it would rename the environment, which a deploy replaces)."""

    @property
    def stack_id(self) -> str:
        """The generated stack's id: `openmwaa-<name>` (stack names take no `_`)."""
        return "openmwaa-" + re.sub(r"[^A-Za-z0-9-]", "-", self.environment_name)

    def counts(self, disposition: Disposition) -> int:
        """How many report lines have `disposition`."""
        return sum(1 for line in self.report if line.disposition is disposition)

    def logging_configuration(self) -> LoggingConfiguration:
        """The `LoggingConfiguration` the app passes (openmwaa's default retention)."""
        from ..props import LoggingConfiguration, LogLevel, ModuleLogging

        modules: dict[str, Any] = {
            s.field: ModuleLogging(enabled=s.enabled, level=LogLevel(s.level)) for s in self.logging
        }
        return LoggingConfiguration(**modules)

    def plain_props(self) -> dict[str, Any]:
        """The `AirflowEnvironment` keyword arguments that are plain values (all but `vpc` and
        `kms_key`), as the generated app passes them."""
        props: dict[str, Any] = {
            "environment_name": self.environment_name,
            "airflow_version": self.airflow_version,
            "environment_class": self.environment_class,
            "webserver_access_mode": self.webserver_access_mode,
            "logging_configuration": self.logging_configuration(),
        }
        for name in (
            "min_workers",
            "max_workers",
            "schedulers",
            "min_webservers",
            "max_webservers",
        ):
            value = getattr(self, name)
            if value is not None:
                props[name] = value
        if self.configuration_options:
            props["airflow_configuration_options"] = dict(self.configuration_options)
        props.update(dict(self.object_versions))
        if self.tags:
            props["tags"] = dict(self.tags)
        if self.database_maintenance_window:
            props["database_props"] = {
                "preferred_maintenance_window": self.database_maintenance_window
            }
        return props


NOT_SET = "not set in MWAA"

# The comments app.py carries for the Airflow options it leaves out.
SECRET_COMMENT = "left out: it looks secret; export it from startup.sh (migration-report.md)"
RESERVED_COMMENT = "left out: the environment owns this option"
BACKEND_KWARGS_COMMENT = "left out: openmwaa sets these kwargs itself"
MALFORMED_COMMENT = "left out: not a `section.key` openmwaa accepts (see the report)"


@dataclass
class _Report:
    """The report lines and warnings `map_environment` collects, field by field."""

    env: Mapping[str, Any]
    lines: list[ReportLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, setting: str, disposition: Disposition, openmwaa: str, note: str = "") -> None:
        self.lines.append(ReportLine(setting, disposition, openmwaa, note))

    def count(self, setting: str, prop: str, low: int, high: int, note: str = "") -> int | None:
        """A count kept when within openmwaa's range for the class, clamped (and said) if not."""
        value = self.env.get(setting)
        if value is None:
            self.add(setting, Disposition.MAPS, f"`{prop}`", f"{NOT_SET}: openmwaa's default")
            return None
        count = int(value)
        disposition = Disposition.MAPS_DIFFERENTLY if note else Disposition.MAPS
        if low <= count <= high:
            self.add(setting, disposition, f"`{prop}`", f"{count}. {note}".strip(" ."))
            return count
        clamped = min(max(count, low), high)
        how = f"MWAA had {count}; openmwaa allows {low} to {high} for this class: {clamped}"
        self.add(setting, Disposition.MAPS_DIFFERENTLY, f"`{prop}`", f"{how}. {note}".strip(" ."))
        return clamped


def _map_identity(r: _Report, name: str, arn_parts: ArnParts | None) -> None:
    source_name = str(r.env.get("Name", ""))
    if name == source_name:
        r.add("Name", Disposition.MAPS, "`environment_name`", "same name")
    else:
        r.add("Name", Disposition.MAPS_DIFFERENTLY, "`environment_name`", f"renamed {name!r}")
    if arn_parts is None:
        r.add("Arn", Disposition.NO_EQUIVALENT, "-", f"{NOT_SET}: an environment-agnostic stack")
    else:
        r.add(
            "Arn",
            Disposition.MAPS_DIFFERENTLY,
            "the stack's `env`",
            f"the app deploys to MWAA's account {arn_parts.account} and region {arn_parts.region}",
        )


def _map_version(r: _Report) -> str:
    mwaa_version = r.env.get("AirflowVersion")
    if mwaa_version is None:
        r.add(
            "AirflowVersion",
            Disposition.MAPS_DIFFERENTLY,
            "`airflow_version`",
            f"{NOT_SET}: {DEFAULT_AIRFLOW_VERSION}",
        )
        return DEFAULT_AIRFLOW_VERSION
    given = str(mwaa_version)
    version = map_airflow_version(given)
    image = f"the stock apache/airflow image, Python {DEFAULT_PYTHON_VERSION}"
    if version == given:
        r.add("AirflowVersion", Disposition.MAPS, "`airflow_version`", f"{version}, on {image}")
        return version
    direction = "an upgrade" if _version_key(version) > _version_key(given) else "a downgrade"
    r.add(
        "AirflowVersion",
        Disposition.MAPS_DIFFERENTLY,
        "`airflow_version`",
        f"MWAA ran {given}, which openmwaa does not run: {version}, the nearest supported "
        f"release ({direction}; supported: {', '.join(SUPPORTED_AIRFLOW_VERSIONS)}), on "
        f"{image}. Check your DAGs and requirements.txt against {version}",
    )
    return version


@dataclass(frozen=True)
class _Sizing:
    environment_class: EnvironmentClass
    min_workers: int | None
    max_workers: int | None
    schedulers: int | None
    min_webservers: int | None
    max_webservers: int | None


def _map_sizing(r: _Report, airflow_version: str) -> _Sizing:
    raw_class = r.env.get("EnvironmentClass")
    try:
        environment_class = EnvironmentClass(str(raw_class))
        r.add(
            "EnvironmentClass",
            Disposition.MAPS,
            "`environment_class`",
            f"{environment_class.value}, MWAA's sizes (docs/environment-classes.md)",
        )
    except ValueError:
        environment_class = EnvironmentClass.MW1_SMALL
        why = NOT_SET if raw_class is None else f"{raw_class!r} is not a class openmwaa knows"
        r.add(
            "EnvironmentClass",
            Disposition.MAPS_DIFFERENTLY,
            "`environment_class`",
            f"{why}: {environment_class.value}; choose another in app.py",
        )
    spec = spec_for(environment_class)
    if spec.all_in_one:
        low, high = 1, 1
    else:
        low, high = 0, spec.max_workers
    min_workers = r.count("MinWorkers", "min_workers", low, high)
    max_workers = r.count("MaxWorkers", "max_workers", max(low, 1), high)
    if min_workers is not None and max_workers is not None:
        max_workers = max(max_workers, min_workers)
    schedulers = r.count("Schedulers", "schedulers", 1, spec.max_schedulers)
    web_note = (
        "On Airflow 3 it sizes both the api-server (UI and REST API) and the execution-api "
        "(Task Execution API), each scaled on its own"
        if _version_key(airflow_version)[0] >= 3
        else ""
    )
    min_web = r.count("MinWebservers", "min_webservers", 1, spec.max_webservers, web_note)
    max_web = r.count("MaxWebservers", "max_webservers", 1, spec.max_webservers, web_note)
    if min_web is not None and max_web is not None:
        max_web = max(max_web, min_web)
    return _Sizing(environment_class, min_workers, max_workers, schedulers, min_web, max_web)


def _map_web_access(r: _Report) -> None:
    from ..props import WebserverAccessMode

    mode = r.env.get("WebserverAccessMode")
    if mode in (None, WebserverAccessMode.PRIVATE_ONLY.value):
        r.add(
            "WebserverAccessMode",
            Disposition.MAPS,
            "`webserver_access_mode`",
            ("PRIVATE_ONLY" if mode else f"{NOT_SET}: PRIVATE_ONLY")
            + ": an internal load balancer, reached from the VPC",
        )
    else:
        r.add(
            "WebserverAccessMode",
            Disposition.MAPS_DIFFERENTLY,
            "`webserver_access_mode`",
            f"MWAA had {mode}; the app starts PRIVATE_ONLY (an internal load balancer), since a "
            "public one needs public subnets, HTTPS and the networks to let in: set "
            "`webserver_access_mode=WebserverAccessMode.PUBLIC_ONLY` with `domain_name` and "
            "`hosted_zone` (or `certificate`) and `allowed_cidrs` (docs/security.md)",
        )
    url = r.env.get("WebserverUrl")
    r.add(
        "WebserverUrl",
        Disposition.MAPS_DIFFERENTLY,
        "`airflow.url` (output AirflowUrl)",
        "a new address: the load balancer's, or `domain_name`"
        + (f"; update what used {url}" if url else ""),
    )
    r.add(
        "IdentityCenterConfiguration",
        Disposition.MAPS_DIFFERENTLY,
        "`sign_in`, `grant_airflow_role`",
        ("" if r.env.get("IdentityCenterConfiguration") else f"{NOT_SET}. ")
        + "People sign in through your identity provider, roles from its groups: "
        "`SignIn.iam_identity_center(...)`, `SignIn.oidc(...)` or `SignIn.cognito()`; "
        "principals that used CreateWebLoginToken, CreateCliToken or InvokeRestApi get "
        "`env.grant_airflow_role(principal, role)` (docs/sign-in.md). The `admin` user "
        "(output AdminSecretArn) stays as break-glass",
    )


def _option_variable(key: str) -> str:
    """`smtp.smtp_password` -> `AIRFLOW__SMTP__SMTP_PASSWORD`."""
    return "AIRFLOW__" + "__".join(part.upper() for part in key.split(".", 1))


SECRETS_BACKEND_OPTION = "secrets.backend"
SECRETS_BACKEND_KWARGS_OPTION = "secrets.backend_kwargs"
_SECRETS_BACKEND_TARGET = "the environment's secrets backend"


def _secrets_backend_line(value: str) -> tuple[Disposition, str, str]:
    """MWAA's `secrets.backend`, which openmwaa owns (validation refuses it): the same
    Secrets Manager backend maps; another one has no equivalent. Its value is not shown."""
    from ..container_environment import SECRETS_BACKEND

    ours = (
        "openmwaa always sets Secrets Manager's backend (connections under "
        f"`{CONNECTIONS_PREFIX}/`, variables under `{VARIABLES_PREFIX}/`, which its execution "
        "role reads) and refuses this option, so app.py leaves it out"
    )
    if value.strip() == SECRETS_BACKEND:
        return Disposition.MAPS, _SECRETS_BACKEND_TARGET, f"the same backend: {ours}"
    return (
        Disposition.NO_EQUIVALENT,
        _SECRETS_BACKEND_TARGET,
        f"MWAA used another backend; {ours}. Move what MWAA's backend holds into Secrets "
        f"Manager: a connection as `{CONNECTIONS_PREFIX}/<conn_id>`, a variable as "
        f"`{VARIABLES_PREFIX}/<key>`",
    )


def _backend_kwargs_line(value: str, mwaa_backend: object) -> tuple[Disposition, str, str]:
    """MWAA's `secrets.backend_kwargs`: left out of app.py, since a value there would replace
    the prefixes openmwaa sets (validation does not refuse it; options win over the
    environment's own variables). The note compares MWAA's two prefixes with openmwaa's,
    naming no value of MWAA's."""
    from ..container_environment import SECRETS_BACKEND, SECRETS_BACKEND_KWARGS

    ours = (
        "left out of app.py: openmwaa sets the backend's kwargs itself ("
        + ", ".join(f"`{name}` `{prefix}`" for name, prefix in SECRETS_BACKEND_KWARGS.items())
        + "; its execution role reads only those), and this option would replace them"
    )
    if mwaa_backend is None or str(mwaa_backend).strip() != SECRETS_BACKEND:
        why = (
            "MWAA set no `secrets.backend`, so it did not use these kwargs"
            if mwaa_backend is None
            else "these kwargs were for MWAA's other backend (see `secrets.backend`)"
        )
        return Disposition.NO_EQUIVALENT, _SECRETS_BACKEND_TARGET, f"{ours}. {why}"
    try:
        kwargs = json.loads(value)
    except ValueError:
        kwargs = None
    if not isinstance(kwargs, dict):
        return (
            Disposition.NO_EQUIVALENT,
            _SECRETS_BACKEND_TARGET,
            f"{ours}. MWAA's value is not a JSON object",
        )
    same: list[str] = []
    notes: list[str] = []
    for name, prefix in SECRETS_BACKEND_KWARGS.items():
        # A prefix MWAA does not set is the provider's default, which is openmwaa's.
        theirs = kwargs.get(name, prefix)
        if theirs == prefix:
            same.append(f"`{name}`")
        elif theirs is None:
            notes.append(
                f"MWAA's `{name}` is null, so MWAA did not look there, while openmwaa looks "
                f"under `{prefix}/`"
            )
        else:
            notes.append(
                f"MWAA's `{name}` differs from openmwaa's `{prefix}`: copy each secret under "
                f"MWAA's prefix to `{prefix}/<same id>` (the new execution role reads nothing "
                "else), or the environment will not find them"
            )
    others = sorted(str(key) for key in kwargs if key not in SECRETS_BACKEND_KWARGS)
    if others:
        notes.append(
            f"MWAA also set {', '.join(f'`{key}`' for key in others)}, which openmwaa's "
            "backend does not take: check that your secrets' names follow the two prefixes"
        )
    if same:
        verb = "are" if len(same) > 1 else "is"
        notes.insert(0, f"{' and '.join(same)} {verb} as openmwaa's")
    disposition = Disposition.MAPS_DIFFERENTLY if len(same) < 2 or others else Disposition.MAPS
    return disposition, _SECRETS_BACKEND_TARGET, f"{ours}. {'; '.join(notes)}"


@dataclass(frozen=True)
class _Options:
    kept: tuple[tuple[str, str], ...]
    secret: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]


def _map_configuration_options(r: _Report) -> _Options:
    """The options kept, the secret-looking keys and the refused keys left out (with why).
    Values never reach the report."""
    from ..validation import CONFIG_KEY_PATTERN, is_protected

    raw: Mapping[str, Any] = r.env.get("AirflowConfigurationOptions") or {}
    kept: list[tuple[str, str]] = []
    secrets: list[str] = []
    refused: list[tuple[str, str]] = []
    if not raw:
        r.add(
            "AirflowConfigurationOptions",
            Disposition.MAPS,
            "`airflow_configuration_options`",
            NOT_SET,
        )
    for key in sorted(raw):
        value = str(raw[key])
        setting = f"AirflowConfigurationOptions.{key}"
        if not CONFIG_KEY_PATTERN.match(key):
            refused.append((key, MALFORMED_COMMENT))
            r.add(
                setting,
                Disposition.NO_EQUIVALENT,
                "-",
                "left out: openmwaa takes `section.key` in lower case; export "
                f"`{_option_variable(key)}` from startup.sh instead",
            )
        elif key == SECRETS_BACKEND_OPTION:
            refused.append((key, RESERVED_COMMENT))
            r.add(setting, *_secrets_backend_line(value))
        elif key == SECRETS_BACKEND_KWARGS_OPTION:
            refused.append((key, BACKEND_KWARGS_COMMENT))
            r.add(setting, *_backend_kwargs_line(value, raw.get(SECRETS_BACKEND_OPTION)))
        elif is_protected(key):
            refused.append((key, RESERVED_COMMENT))
            r.add(
                setting,
                Disposition.NO_EQUIVALENT,
                "-",
                "left out: the environment owns this option (it ties Airflow to its own "
                "database, queue, secrets, logs or files) and refuses it",
            )
        elif is_secret_option(key, value):
            secrets.append(key)
            r.add(
                setting,
                Disposition.MAPS_DIFFERENTLY,
                STARTUP_SCRIPT_KEY,
                "left out of app.py: it looks secret, and options reach the containers as "
                "plain variables in the template. Store it in Secrets Manager under "
                f"`{VARIABLES_PREFIX}/`, which the execution role reads, and export "
                f"`{_option_variable(key)}` from startup.sh (docs/migration.md)",
            )
        else:
            kept.append((key, value))
            r.add(setting, Disposition.MAPS, "`airflow_configuration_options`", "same key")
    return _Options(tuple(kept), tuple(secrets), tuple(refused))


def _map_kms_key(r: _Report, lookups: Lookups, arn_parts: ArnParts | None) -> str | None:
    kms_key = r.env.get("KmsKey")
    if not kms_key:
        r.add("KmsKey", Disposition.MAPS, "`kms_key`", f"{NOT_SET}: AWS owned and managed keys")
        return None
    key_arn = lookups.kms_key_arn or kms_key_arn(str(kms_key), arn_parts)
    if key_arn is None:
        r.add(
            "KmsKey",
            Disposition.NO_EQUIVALENT,
            "`kms_key`",
            f"{kms_key} was not resolved to a key ARN: pass `kms_key=kms.Key.from_key_arn(...)`",
        )
    else:
        r.add(
            "KmsKey",
            Disposition.MAPS_DIFFERENTLY,
            "`kms_key` (`kms.Key.from_key_arn`)",
            f"imported by ARN ({key_arn}); openmwaa grants its roles use of the key but cannot "
            "edit an imported key's policy: `cdk synth` prints the statements to add to it",
        )
    return key_arn


def _map_network(r: _Report, network: NetworkFacts | None) -> None:
    config: Mapping[str, Any] = r.env.get("NetworkConfiguration") or {}
    subnet_ids = [str(s) for s in config.get("SubnetIds") or []]
    groups = [str(g) for g in config.get("SecurityGroupIds") or []]
    if network is not None:
        r.add(
            "NetworkConfiguration.SubnetIds",
            Disposition.MAPS_DIFFERENTLY,
            "`vpc` (`ec2.Vpc.from_vpc_attributes`)",
            f"MWAA's VPC {network.vpc_id}, imported by attributes with MWAA's subnets "
            f"({', '.join(s.subnet_id for s in network.subnets)}) as its private subnets, which "
            "hold every component, the database and EFS. They need a route to AWS APIs, Docker "
            "Hub and PyPI (a NAT gateway or VPC endpoints)",
        )
    else:
        r.add(
            "NetworkConfiguration.SubnetIds",
            Disposition.MAPS_DIFFERENTLY,
            "`vpc` not given: a new VPC",
            (f"MWAA used {', '.join(subnet_ids)}. " if subnet_ids else f"{NOT_SET}. ")
            + "openmwaa creates a VPC (2 AZs, NAT); connect it to what your DAGs reach",
        )
    r.add(
        "NetworkConfiguration.SecurityGroupIds",
        Disposition.NO_EQUIVALENT,
        "`airflow.security_group`",
        (f"MWAA used {', '.join(groups)}. " if groups else "")
        + "openmwaa creates its own group (with MWAA's self-referencing rule): wherever MWAA's "
        "groups were let in (databases, caches, APIs), let the new one in, e.g. "
        "`my_db.connections.allow_default_port_from(airflow)`",
    )
    endpoint_management = r.env.get("EndpointManagement")
    r.add(
        "EndpointManagement",
        Disposition.NO_EQUIVALENT,
        "-",
        (f"MWAA had {endpoint_management}. " if endpoint_management else f"{NOT_SET}. ")
        + "openmwaa has no service-managed VPC endpoints: its load balancer and database are "
        "in your VPC",
    )
    for setting, what in (
        ("WebserverVpcEndpointService", "web server"),
        ("DatabaseVpcEndpointService", "metadata database"),
    ):
        r.add(
            setting,
            Disposition.NO_EQUIVALENT,
            "-",
            f"MWAA's endpoint service for its {what}; openmwaa's is in your VPC, reached directly",
        )


def _map_logging(r: _Report, environment_name: str) -> tuple[LogSetting, ...]:
    from ..log_groups import LOG_TYPES as OPENMWAA_LOG_TYPES
    from ..log_groups import log_group_name
    from ..props import LogLevel

    config: Mapping[str, Any] = r.env.get("LoggingConfiguration") or {}
    settings: dict[str, LogSetting] = {}
    mwaa_groups: set[str] = set()
    for log_type, log_field in LOG_TYPES.items():
        module: Mapping[str, Any] = config.get(log_type) or {}
        setting = f"LoggingConfiguration.{log_type}"
        target = f"`logging_configuration.{log_field}`"
        if not module:
            settings[log_field] = LogSetting(log_field, False, LogLevel.INFO.value)
            r.add(setting, Disposition.MAPS, target, f"{NOT_SET}: disabled")
            continue
        enabled = bool(module.get("Enabled", False))
        raw_level = str(module.get("LogLevel") or LogLevel.INFO.value)
        if module.get("CloudWatchLogGroupArn"):
            mwaa_groups.add(log_group_name_from_arn(str(module["CloudWatchLogGroupArn"])))
        if raw_level in {level.value for level in LogLevel}:
            level = raw_level
            disposition, note = Disposition.MAPS, f"{'enabled' if enabled else 'disabled'}, {level}"
        else:
            level = LogLevel.INFO.value
            disposition, note = Disposition.MAPS_DIFFERENTLY, f"level {raw_level!r} unknown: INFO"
        if log_type == "SchedulerLogs":
            note += "; the triggerer (its own service in openmwaa) gets the same"
        settings[log_field] = LogSetting(log_field, enabled, level)
        r.add(setting, disposition, target, note)
    scheduler = settings["scheduler"]
    settings["triggerer"] = LogSetting("triggerer", scheduler.enabled, scheduler.level)
    r.add(
        "LoggingConfiguration.*.CloudWatchLogGroupArn",
        Disposition.MAPS_DIFFERENTLY,
        "`airflow.log_groups`",
        f"new groups named as MWAA names them, `airflow-{environment_name}-<Type>` (and a "
        "Triggerer group), kept one month (`LoggingConfiguration(retention=...)`)",
    )
    ours = {log_group_name(environment_name, t.suffix) for t in OPENMWAA_LOG_TYPES}
    clashes = sorted(mwaa_groups & ours)
    if clashes:
        r.warnings.append(
            f"MWAA's log groups {', '.join(clashes)} have the names openmwaa creates for "
            f"{environment_name!r}, and the deploy fails while they exist: delete them once "
            "MWAA is gone (export what you keep), or generate with --name NEW_NAME to run "
            "both side by side."
        )
    return tuple(settings[t.config_field] for t in OPENMWAA_LOG_TYPES)


def _map_bucket(r: _Report, copy: CopyResult | None) -> list[tuple[str, str]]:
    """The bucket, its paths and versions; returns the (prop, version) pins of a copy."""
    bucket_arn = r.env.get("SourceBucketArn")
    bucket = bucket_name_from_arn(str(bucket_arn)) if bucket_arn else None
    how = f"copied into s3://{copy.target_bucket} (--copy-bucket)" if copy else "--copy-bucket"
    r.add(
        "SourceBucketArn",
        Disposition.MAPS_DIFFERENTLY,
        "`airflow.bucket` (output SourceBucketName)",
        (f"MWAA's s3://{bucket}" if bucket else NOT_SET)
        + f": openmwaa creates its own versioned bucket; {how}",
    )
    dag_path = r.env.get("DagS3Path")
    r.add(
        "DagS3Path",
        Disposition.MAPS_DIFFERENTLY,
        f"`{DAGS_PREFIX}` in `airflow.bucket`",
        (f"MWAA's `{relative_key(str(dag_path), bucket)}`" if dag_path else NOT_SET)
        + f": openmwaa's DAG folder is always `{DAGS_PREFIX}`, applied within seconds of an "
        "upload" + (f" ({copy.dag_objects} objects copied)" if copy else ""),
    )
    pins: list[tuple[str, str]] = []
    for named in NAMED_FILES:
        path = r.env.get(named.path_field)
        file_name = named.target_key
        if not path:
            r.add(named.path_field, Disposition.MAPS, f"`{named.target_key}`", NOT_SET)
        else:
            startup = (
                "; it runs on the stock apache/airflow image (Debian, user airflow), not "
                "MWAA's Amazon Linux: replace yum and MWAA-specific paths"
                if named.target_key == STARTUP_SCRIPT_KEY
                else ""
            )
            r.add(
                named.path_field,
                Disposition.MAPS_DIFFERENTLY,
                f"`{named.target_key}` in `airflow.bucket`",
                f"MWAA's `{relative_key(str(path), bucket)}`: openmwaa reads `{file_name}` at "
                f"the bucket's root{startup}",
            )
        pinned = r.env.get(named.version_field)
        new_version = copy.pins.get(named.pin_prop) if copy else None
        if new_version:
            pins.append((named.pin_prop, new_version))
            r.add(
                named.version_field,
                Disposition.MAPS,
                f"`{named.pin_prop}`",
                f"pinned to {new_version}, the new bucket's copy"
                + (f" of MWAA's version {pinned}" if pinned else " of the latest version"),
            )
        elif pinned:
            r.add(
                named.version_field,
                Disposition.MAPS_DIFFERENTLY,
                f"`{named.pin_prop}`",
                f"version {pinned} is in MWAA's bucket only, so not pinned: the environment "
                "follows the latest upload. --copy-bucket copies that version and pins the copy",
            )
        else:
            r.add(named.version_field, Disposition.MAPS, f"`{named.pin_prop}`", NOT_SET)
    return pins


def _map_roles_and_queue(r: _Report) -> None:
    role = r.env.get("ExecutionRoleArn")
    r.add(
        "ExecutionRoleArn",
        Disposition.MAPS_DIFFERENTLY,
        "`airflow.execution_role` (output ExecutionRoleArn)",
        (f"MWAA ran as {role}. " if role else "")
        + "openmwaa creates its own role with MWAA's base permissions for the new "
        "environment; grant it what your DAGs use beyond them (data buckets, Glue, EMR, ...) "
        "with `airflow.execution_role.add_to_policy`",
    )
    r.add(
        "ServiceRoleArn",
        Disposition.NO_EQUIVALENT,
        "-",
        "MWAA's service-linked role: CloudFormation, ECS and Application Auto Scaling manage "
        "openmwaa's resources with their own",
    )
    queue = r.env.get("CeleryExecutorQueue")
    r.add(
        "CeleryExecutorQueue",
        Disposition.MAPS_DIFFERENTLY,
        "`airflow.queue`",
        (f"MWAA's {queue}: " if queue else "") + "openmwaa creates its own SQS queue",
    )


def _map_maintenance(r: _Report) -> str | None:
    start = r.env.get("WeeklyMaintenanceWindowStart")
    window = database_maintenance_window(str(start)) if start else None
    if window:
        r.add(
            "WeeklyMaintenanceWindowStart",
            Disposition.MAPS_DIFFERENTLY,
            '`database_props["preferred_maintenance_window"]`',
            f"MWAA patched the environment from {start} UTC; openmwaa changes Airflow only "
            f"when you deploy, so the window is the Aurora database's: {window} UTC",
        )
    else:
        r.add(
            "WeeklyMaintenanceWindowStart",
            Disposition.NO_EQUIVALENT,
            "-",
            (f"{start!r} is not DAY:HH:MM" if start else NOT_SET)
            + ": Aurora chooses the database's window",
        )
    return window


def _map_tags(r: _Report) -> list[tuple[str, str]]:
    tags: list[tuple[str, str]] = []
    dropped: list[str] = []
    for key, value in sorted((r.env.get("Tags") or {}).items()):
        if str(key).lower().startswith("aws:"):
            dropped.append(str(key))
        else:
            tags.append((str(key), str(value)))
    if dropped:
        r.add(
            "Tags",
            Disposition.MAPS_DIFFERENTLY,
            "`tags`",
            f"{len(tags)} on every resource; {', '.join(dropped)} left out (`aws:` tags are "
            "AWS's own)",
        )
    else:
        r.add(
            "Tags",
            Disposition.MAPS,
            "`tags`",
            f"{len(tags)} on every resource" if tags else NOT_SET,
        )
    return tags


def _map_state(r: _Report) -> None:
    status = r.env.get("Status")
    r.add(
        "Status",
        Disposition.NO_EQUIVALENT,
        "-",
        (f"{status}: " if status else "") + "the MWAA environment's state, not a setting",
    )
    if status and status != "AVAILABLE":
        r.warnings.append(
            f"MWAA reports the environment as {status}: its settings may be mid-change; "
            "generate again once it is AVAILABLE."
        )
    for setting in ("CreatedAt", "LastUpdate"):
        r.add(setting, Disposition.NO_EQUIVALENT, "-", "MWAA's history, not a setting")
    teams: Mapping[str, Any] = r.env.get("Teams") or {}
    if teams:
        where = "; ".join(
            f"{team}: s3://{bucket_name_from_arn(str(config.get('SourceBucketArn', '')))}/"
            f"{config.get('DagS3Path', '')}"
            for team, config in sorted(teams.items())
        )
        r.add(
            "Teams",
            Disposition.NO_EQUIVALENT,
            "-",
            f"openmwaa runs one team; the teams' DAGs are not copied ({where}): put them under "
            "`dags/`, or deploy one environment per team",
        )
    else:
        r.add("Teams", Disposition.NO_EQUIVALENT, "-", f"{NOT_SET}: openmwaa runs one team")
    for unknown in sorted(set(r.env) - set(TOP_LEVEL_FIELDS)):
        r.add(
            unknown,
            Disposition.NO_EQUIVALENT,
            "-",
            "a setting this version of openmwaa does not know: check it by hand",
        )


def command_options(
    *, region: str | None, environment_name: str | None, new_vpc: bool
) -> tuple[str, ...]:
    """The `from-mwaa` arguments that shape app.py: `--region`, `--name`, `--new-vpc`."""
    options: list[str] = []
    if region:
        options += ["--region", region]
    if environment_name is not None:
        options += ["--name", environment_name]
    if new_vpc:
        options.append("--new-vpc")
    return tuple(options)


def map_environment(
    environment: Mapping[str, Any],
    lookups: Lookups | None = None,
    *,
    copy: CopyResult | None = None,
    environment_name: str | None = None,
    region: str | None = None,
    new_vpc: bool = False,
) -> MappedEnvironment:
    """Map GetEnvironment's `Environment` (as boto3 returns it) to openmwaa.

    `lookups` are the facts the adapter found (MWAA's VPC, the key behind an alias; without a
    network, the app builds a new VPC). `copy` is the result of copying MWAA's bucket: its
    versions become the `*_s3_object_version` pins. `environment_name` renames the
    environment (default: MWAA's name). `region` (default: the ARN's) and `new_vpc` are the
    run's other options, kept for the next command the report prints. Every field gets at
    least one report line, in the order a reader checks them.
    """
    from ..props import WebserverAccessMode

    lookups = lookups or Lookups()
    r = _Report(environment)
    source_name = str(environment.get("Name", ""))
    arn = environment.get("Arn")
    arn_parts = parse_arn(str(arn) if arn else None)
    name = environment_name or source_name

    _map_identity(r, name, arn_parts)
    version = _map_version(r)
    sizing = _map_sizing(r, version)
    _map_web_access(r)
    options = _map_configuration_options(r)
    key_arn = _map_kms_key(r, lookups, arn_parts)
    _map_network(r, lookups.network)
    logging = _map_logging(r, name)
    pins = _map_bucket(r, copy)
    _map_roles_and_queue(r)
    window = _map_maintenance(r)
    tags = _map_tags(r)
    _map_state(r)

    role = environment.get("ExecutionRoleArn")
    return MappedEnvironment(
        source_name=source_name,
        source_arn=str(arn) if arn else None,
        source_version=str(environment["AirflowVersion"])
        if environment.get("AirflowVersion")
        else None,
        environment=arn_parts,
        environment_name=name,
        airflow_version=version,
        environment_class=sizing.environment_class,
        min_workers=sizing.min_workers,
        max_workers=sizing.max_workers,
        schedulers=sizing.schedulers,
        min_webservers=sizing.min_webservers,
        max_webservers=sizing.max_webservers,
        webserver_access_mode=WebserverAccessMode.PRIVATE_ONLY.value,
        configuration_options=options.kept,
        secret_options=options.secret,
        refused_options=options.refused,
        kms_key_arn=key_arn,
        logging=logging,
        tags=tuple(tags),
        network=lookups.network,
        database_maintenance_window=window,
        object_versions=tuple(pins),
        execution_role_arn=str(role) if role else None,
        copy=copy,
        report=tuple(r.lines),
        warnings=tuple(r.warnings),
        command_options=command_options(
            region=region or (arn_parts.region if arn_parts else None),
            environment_name=environment_name,
            new_vpc=new_vpc,
        ),
    )


# Rendering: the CDK app, the report and the command's summary.

CDK_CONTEXT: dict[str, bool] = {
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:enablePartitionLiterals": True,
    "@aws-cdk/aws-ec2:restrictDefaultSecurityGroup": True,
}
"""The feature flags of openmwaa's own cdk.json (a test keeps them equal), written into the
generated cdk.json so the app synthesizes the template openmwaa tests."""

APP_LINE_LENGTH = 88
"""ruff's default line length: the app is written as `ruff format` leaves it."""


def python_string(value: str) -> str:
    """`value` as a Python string literal, quoted as `ruff format` quotes it: double quotes,
    unless the text holds more double quotes than single ones."""
    quote = "'" if value.count('"') > value.count("'") else '"'
    escapes = {"\\": "\\\\", quote: "\\" + quote, "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for char in value:
        if char in escapes:
            out.append(escapes[char])
        elif not char.isprintable():
            code = ord(char)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
        else:
            out.append(char)
    return quote + "".join(out) + quote


def _comment_lines(text: str, indent: int) -> list[str]:
    """`text` as `#` comment lines that fit the app's line length."""
    clean = "".join(c if c.isprintable() else " " for c in text)
    width = max(APP_LINE_LENGTH - indent - 2, 40)
    wrapped = textwrap.wrap(clean, width, break_on_hyphens=False, break_long_words=False)
    return [" " * indent + "# " + line for line in wrapped]


@dataclass(frozen=True)
class _Arg:
    """An argument of an expanded call, or an entry of an expanded dict or list."""

    value: _Expr
    name: str | None = None
    """A keyword (`name=value`), or a dict entry's key literal (`"key": value`)."""
    comments: tuple[str, ...] = ()
    """Comment paragraphs written above the argument."""


@dataclass(frozen=True)
class _Expanded:
    """A call, dict or list written one argument per line with a trailing comma (the
    "magic trailing comma" that keeps `ruff format` from joining it)."""

    opening: str
    """`func(`, `{` or `[`."""
    closing: str
    args: tuple[_Arg, ...]
    dict_entries: bool = False
    trailing_comments: tuple[str, ...] = ()


_Expr = str | _Expanded


def _call(func: str, *args: _Arg) -> _Expanded:
    return _Expanded(f"{func}(", ")", args)


def _render(expr: _Expr, indent: int) -> list[str]:
    """Lines of `expr`: the first without indentation, the rest indented for `indent`."""
    if isinstance(expr, str):
        return [expr]
    inner = indent + 4
    lines = [expr.opening]
    for arg in expr.args:
        for comment in arg.comments:
            lines.extend(_comment_lines(comment, inner))
        body = _render(arg.value, inner)
        if arg.name is None:
            head = ""
        elif expr.dict_entries:
            head = f"{arg.name}: "
        else:
            head = f"{arg.name}="
        lines.append(" " * inner + head + body[0])
        lines.extend(body[1:])
        lines[-1] += ","
    for comment in expr.trailing_comments:
        lines.extend(_comment_lines(comment, inner))
    lines.append(" " * indent + expr.closing)
    return lines


def _list(values: Iterable[str]) -> _Expanded:
    return _Expanded("[", "]", tuple(_Arg(python_string(v)) for v in values))


def _vpc_expr(network: NetworkFacts) -> _Expanded:
    subnets = network.subnets
    args = [
        _Arg("self"),
        _Arg('"MwaaVpc"'),
        _Arg(python_string(network.vpc_id), "vpc_id"),
        _Arg(python_string(network.vpc_cidr_block), "vpc_cidr_block"),
        _Arg(_list(s.availability_zone for s in subnets), "availability_zones"),
        _Arg(_list(s.subnet_id for s in subnets), "private_subnet_ids"),
    ]
    route_tables = [s.route_table_id for s in subnets if s.route_table_id]
    if len(route_tables) == len(subnets):
        args.append(_Arg(_list(route_tables), "private_subnet_route_table_ids"))
    return _call("ec2.Vpc.from_vpc_attributes", *args)


def _options_expr(m: MappedEnvironment) -> _Expanded | None:
    if not (m.configuration_options or m.refused_options or m.secret_options):
        return None
    comments = [f"{key}: {why}" for key, why in m.refused_options]
    comments += [f"{key}: {SECRET_COMMENT}" for key in m.secret_options]
    return _Expanded(
        "{",
        "}",
        tuple(_Arg(python_string(v), python_string(k)) for k, v in m.configuration_options),
        dict_entries=True,
        trailing_comments=tuple(comments),
    )


def _environment_args(m: MappedEnvironment) -> list[_Arg]:
    report = {line.setting: line for line in m.report}
    args = [
        _Arg("self"),
        _Arg('"Airflow"'),
        _Arg(python_string(m.environment_name), "environment_name"),
    ]
    version_line = report.get("AirflowVersion")
    version_comments = (
        (f"MWAA ran Airflow {m.source_version}; openmwaa does not run it: see the report.",)
        if version_line is not None
        and version_line.disposition is not Disposition.MAPS
        and m.source_version
        else ()
    )
    args.append(_Arg(python_string(m.airflow_version), "airflow_version", version_comments))
    args.append(_Arg(f"EnvironmentClass.{m.environment_class.name}", "environment_class"))
    for prop in ("min_workers", "max_workers", "schedulers", "min_webservers", "max_webservers"):
        value = getattr(m, prop)
        if value is None:
            continue
        comments: tuple[str, ...] = ()
        if prop == "min_webservers" and _version_key(m.airflow_version)[0] >= 3:
            comments = ("Airflow 3: both sizes apply to the api-server and to the execution-api.",)
        args.append(_Arg(str(value), prop, comments))
    access = report.get("WebserverAccessMode")
    access_comments = (
        ("MWAA was reachable from the internet; making this public needs HTTPS: see the report.",)
        if access is not None and access.disposition is Disposition.MAPS_DIFFERENTLY
        else ()
    )
    args.append(
        _Arg(
            f"WebserverAccessMode.{m.webserver_access_mode}",
            "webserver_access_mode",
            access_comments,
        )
    )
    options = _options_expr(m)
    if options is not None:
        args.append(_Arg(options, "airflow_configuration_options"))
    if m.kms_key_arn is not None:
        args.append(_Arg("kms_key", "kms_key"))
    for index, (prop, version) in enumerate(m.object_versions):
        comments = ("The versions --copy-bucket wrote into the new bucket.",) if index == 0 else ()
        args.append(_Arg(python_string(version), prop, comments))
    logging = _call(
        "LoggingConfiguration",
        *(
            _Arg(
                f"ModuleLogging(enabled={s.enabled}, level=LogLevel.{s.level})",
                s.field,
                ("MWAA logs the triggerer with the scheduler.",) if s.field == "triggerer" else (),
            )
            for s in m.logging
        ),
    )
    pins_comment = (
        (
            "No *_s3_object_version pins: MWAA's pinned versions are in its own bucket. "
            "Run from-mwaa with --copy-bucket to copy them and pin the copies here.",
        )
        if not m.object_versions
        and any(
            report[n.version_field].disposition is Disposition.MAPS_DIFFERENTLY for n in NAMED_FILES
        )
        else ()
    )
    args.append(_Arg(logging, "logging_configuration", pins_comment))
    if m.tags:
        tags = _Expanded(
            "{",
            "}",
            tuple(_Arg(python_string(v), python_string(k)) for k, v in m.tags),
            dict_entries=True,
        )
        tag_line = report.get("Tags")
        tag_comments = (
            ("MWAA's aws: tags are left out: AWS sets them.",)
            if tag_line is not None and tag_line.disposition is Disposition.MAPS_DIFFERENTLY
            else ()
        )
        args.append(_Arg(tags, "tags", tag_comments))
    if m.network is not None:
        args.append(_Arg("vpc", "vpc"))
    if m.database_maintenance_window is not None:
        window = _Expanded(
            "{",
            "}",
            (
                _Arg(
                    python_string(m.database_maintenance_window),
                    '"preferred_maintenance_window"',
                ),
            ),
            dict_entries=True,
        )
        args.append(
            _Arg(
                window,
                "database_props",
                ("MWAA's weekly maintenance window, as the database's (UTC).",),
            )
        )
    return args


def render_app(m: MappedEnvironment) -> str:
    """The CDK app (`app.py`) that builds `m`, formatted as `ruff format` leaves it."""
    uses = {"AirflowEnvironment", "EnvironmentClass", "LoggingConfiguration", "LogLevel"}
    uses |= {"ModuleLogging", "WebserverAccessMode"}
    lines = [
        f'"""openmwaa app for the Amazon MWAA environment {_plain(m.source_name)}, written by',
        "`openmwaa from-mwaa`.",
        "",
        f"Source: {_plain(m.source_arn or m.source_name)}",
        "migration-report.md, next to this file, says how each MWAA setting came across.",
        "Deploy with `npx cdk deploy` in this folder, with openmwaa installed (`pip install",
        "openmwaa`).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        "import aws_cdk as cdk",
    ]
    if m.network is not None:
        lines.append("from aws_cdk import aws_ec2 as ec2")
    if m.kms_key_arn is not None:
        lines.append("from aws_cdk import aws_kms as kms")
    lines += ["from constructs import Construct", "from openmwaa import ("]
    lines += [f"    {name}," for name in sorted(uses, key=str.lower)]
    lines += [")", "", f"STACK_ID = {python_string(m.stack_id)}"]
    if m.environment is not None:
        environment = _call(
            "cdk.Environment",
            _Arg(python_string(m.environment.account), "account"),
            _Arg(python_string(m.environment.region), "region"),
        )
        rendered = _render(environment, 0)
        lines += ["ENVIRONMENT = " + rendered[0], *rendered[1:]]
    else:
        lines.append("ENVIRONMENT = None")
    body: list[str] = []
    if m.network is not None:
        body += _comment_lines(
            "MWAA's VPC and subnets: every component, the database and EFS go in these subnets.",
            8,
        )
        body += _assignment("vpc", _vpc_expr(m.network))
    if m.kms_key_arn is not None:
        body += _comment_lines(
            "MWAA's key. An imported key's policy is yours: `cdk synth` prints the statements "
            "it needs.",
            8,
        )
        body += _assignment(
            "kms_key",
            _call(
                "kms.Key.from_key_arn",
                _Arg("self"),
                _Arg('"MwaaKmsKey"'),
                _Arg(python_string(m.kms_key_arn)),
            ),
        )
    body += _assignment("airflow", _call("AirflowEnvironment", *_environment_args(m)))
    body.append("        self.airflow = airflow")
    outputs = [
        ("SourceBucketName", "airflow.bucket.bucket_name"),
        ("AirflowUrl", "airflow.url"),
        ("ExecutionRoleArn", "airflow.execution_role.role_arn"),
        ("AdminSecretArn", "airflow.admin_secret.secret_arn"),
    ]
    for output_id, value in outputs:
        body.append(f'        cdk.CfnOutput(self, "{output_id}", value={value})')
    role_note = (f"MWAA ran as {m.execution_role_arn}. " if m.execution_role_arn else "") + (
        "Grant airflow.execution_role what your DAGs use beyond MWAA's base permissions "
        "(airflow.execution_role.add_to_policy(...)), and let the environment in wherever "
        "MWAA's security groups were allowed "
        "(my_db.connections.allow_default_port_from(airflow))."
    )
    body += _comment_lines(role_note, 8)
    lines += [
        "",
        "",
        "class MigratedAirflowStack(cdk.Stack):",
        f'    """The openmwaa environment that replaces MWAA\'s {_plain(m.source_name)}."""',
        "",
        "    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:",
        "        super().__init__(scope, construct_id, **kwargs)",
        *body,
        "",
        "",
        "def build_app(app: cdk.App | None = None) -> cdk.App:",
        '    """Build the app (`cdk synth` runs this file; tests pass their own `cdk.App`)."""',
        "    app = app or cdk.App()",
        "    MigratedAirflowStack(app, STACK_ID, env=ENVIRONMENT)",
        "    return app",
        "",
        "",
        'if __name__ == "__main__":',
        "    build_app().synth()",
        "",
    ]
    return "\n".join(lines)


def _plain(text: str) -> str:
    """`text` safe inside a docstring: letters, digits and `:/._-` only."""
    return re.sub(r"[^A-Za-z0-9:/._-]", "_", text)


def _assignment(target: str, expr: _Expr) -> list[str]:
    rendered = _render(expr, 8)
    return [f"        {target} = {rendered[0]}", *rendered[1:]]


def render_cdk_json() -> str:
    """The generated folder's cdk.json: runs app.py with openmwaa's feature flags."""
    return json.dumps({"app": "python app.py", "context": CDK_CONTEXT}, indent=2) + "\n"


REPORT_FILE = "migration-report.md"
APP_FILE = "app.py"
CDK_JSON_FILE = "cdk.json"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _copy_summary(copy: CopyResult) -> str:
    targets = {target for _, target in copy.copied}
    files = [n.target_key for n in NAMED_FILES if n.target_key in targets]
    parts = [f"{copy.dag_objects} DAG folder objects", *files]
    return (
        f"Copied {', '.join(parts)} from s3://{copy.source_bucket} into "
        f"s3://{copy.target_bucket}; app.py pins the copies' versions."
    )


def render_report(m: MappedEnvironment, *, output_dir: str = ".") -> str:
    """`migration-report.md`: every MWAA setting, how it came across, and what to do next.

    Holds no Airflow configuration value (MWAA may keep secrets in them)."""
    counts = {d: m.counts(d) for d in Disposition}
    lines = [
        f"# Moving {m.source_name} from Amazon MWAA to openmwaa",
        "",
        f"Written by `openmwaa from-mwaa` from {m.source_arn or m.source_name}. `app.py` next to "
        "this file is the CDK app; below, every setting of MWAA's GetEnvironment and how it "
        "came across. Airflow configuration values are not written here: MWAA may hold "
        "secrets in them.",
        "",
        f"{counts[Disposition.MAPS]} settings map, {counts[Disposition.MAPS_DIFFERENTLY]} map "
        f"differently, {counts[Disposition.NO_EQUIVALENT]} have no equivalent.",
    ]
    if m.copy is not None:
        lines += ["", _copy_summary(m.copy)]
    if m.warnings:
        lines += ["", "## Before you deploy", ""]
        lines += [f"- {warning}" for warning in m.warnings]
    lines += [
        "",
        "## Settings",
        "",
        "| MWAA setting | result | openmwaa | notes |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{_cell(line.setting)}` | {line.disposition} | {_cell(line.openmwaa)} | "
        f"{_cell(line.note)} |"
        for line in m.report
    ]
    copy_step = (
        "The bucket is copied and pinned: deploy again whenever you change the pins."
        if m.copy is not None
        else (
            "Copy MWAA's files into the new bucket and pin them, with this run's options: "
            f"`{copy_command(m, output_dir)}`, then `npx cdk deploy` again."
        )
    )
    lines += [
        "",
        "## Next steps",
        "",
        f"1. Deploy: `cd {shlex.quote(output_dir)} && npx cdk deploy` (once per account and "
        "region first: `npx cdk bootstrap`).",
        f"2. {copy_step}",
        "3. Grant the new execution role what your DAGs use beyond MWAA's base permissions, "
        "and let its security group in where MWAA's were allowed.",
        f"4. {metadata_step(m)}",
        "5. Pause the DAGs in MWAA, unpause them in openmwaa, watch the first runs, delete MWAA.",
        "",
    ]
    return "\n".join(lines)


TARGET_BUCKET_PLACEHOLDER = "<SourceBucketName output>"


def copy_command(m: MappedEnvironment, output_dir: str) -> str:
    """The `from-mwaa --copy-bucket` command to run after the first deploy: this run's
    options again (`command_options`), so it writes the same app, plus the copy. The target
    bucket is a placeholder, last."""
    head = shlex.join(
        [
            "openmwaa",
            "from-mwaa",
            m.source_name,
            *m.command_options,
            "--output-dir",
            output_dir,
            "--force",
            "--copy-bucket",
            "--target-bucket",
        ]
    )
    return f"{head} {TARGET_BUCKET_PLACEHOLDER}"


MIGRATION_DOC_SECTION = 'docs/migration.md, "Connections, variables and pools"'


def metadata_step(m: MappedEnvironment) -> str:
    """The report's step for connections, variables and pools, for the target's Airflow."""
    shared = (
        f"Connections and variables in Secrets Manager under `{CONNECTIONS_PREFIX}/` and "
        f"`{VARIABLES_PREFIX}/` carry over (the new execution role reads them). Those in "
        "MWAA's metadata database, and pools, do not: MWAA's CLI does not run Airflow's "
        f"`export` commands, so export them with the one-off DAG of {MIGRATION_DOC_SECTION}."
    )
    if _version_key(m.airflow_version)[0] >= 3:
        return (
            f"{shared} Then load the files into openmwaa with `openmwaa import-metadata` "
            "(the same section)."
        )
    return (
        f"{shared} `openmwaa import-metadata` does not apply to Airflow {m.airflow_version}: it "
        "needs Airflow 3's REST API (v2). Copy the files into the scheduler container and, in "
        "an ECS Exec shell there (`enable_execute_command=True` in app.py), run `python "
        "/opt/openmwaa/runtime.pyz airflow connections import FILE` (and `variables import`, "
        "`pools import`), or keep connections and variables in Secrets Manager instead."
    )


def render_summary(m: MappedEnvironment, *, output_dir: str) -> str:
    """What the command prints: counts, the settings that do not map one to one, warnings,
    the next command. Holds no Airflow configuration value."""
    counts = {d: m.counts(d) for d in Disposition}
    lines = [
        f"Wrote {output_dir}/ ({APP_FILE}, {CDK_JSON_FILE}, {REPORT_FILE}) from MWAA "
        f"environment {m.source_name}.",
        f"Settings: {counts[Disposition.MAPS]} map, {counts[Disposition.MAPS_DIFFERENTLY]} map "
        f"differently, {counts[Disposition.NO_EQUIVALENT]} have no equivalent "
        f"(each explained in {REPORT_FILE}).",
    ]
    if m.copy is not None:
        lines.append(_copy_summary(m.copy))
    for disposition in (Disposition.MAPS_DIFFERENTLY, Disposition.NO_EQUIVALENT):
        lines += ["", f"{disposition.capitalize()}:"]
        lines += [
            f"  {line.setting} -> {line.openmwaa}" if line.openmwaa != "-" else f"  {line.setting}"
            for line in m.report
            if line.disposition is disposition
        ]
    if m.warnings:
        lines += ["", "Before you deploy:"]
        lines += [f"  - {warning}" for warning in m.warnings]
    lines += ["", f"Next: cd {output_dir} && npx cdk deploy", ""]
    return "\n".join(lines)
