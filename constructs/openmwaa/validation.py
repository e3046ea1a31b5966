"""Validation rules for `AirflowEnvironment` props, applied to the resolved props.

Each rule is a pure function that returns the problems it finds (an empty list when the
props are fine), so every rule can be tested without building a construct. The construct
collects all problems and raises one `ValueError` listing them, each naming the prop, the
value received and what is allowed. Unresolved CDK tokens are skipped: they are only known
at deploy time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from aws_cdk import Duration, RemovalPolicy, Token
from aws_cdk import aws_logs as logs

from .airflow_metrics import TASK_FAILURES, TASK_SUCCESSES
from .bring_your_own import check_bring_your_own
from .defaults import VPC_ENDPOINT_MODES
from .environment_class import EnvironmentClass, EnvironmentClassSpec, spec_for
from .environment_props import ResolvedProps
from .props import WebserverAccessMode, WorkerPool
from .runtime import PROTECTED_OPTIONS, is_protected_option, metric_names
from .sign_in import COGNITO, IDENTITY_CENTER, OIDC, check_sign_in, has_https
from .task_definitions import CPU_ARCHITECTURES
from .versions import SUPPORTED_AIRFLOW_VERSIONS

ENVIRONMENT_NAME_PATTERN = re.compile(r"^[A-Za-z][0-9A-Za-z_-]{0,79}$")
WORKER_POOL_QUEUE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
MAX_WORKER_POOLS = 10
"""Each pool adds a task definition (with the runtime, about 25 KB) and a dozen resources:
CloudFormation's 1 MB template limit would be reached at deploy, not at synth, near 18."""
CONFIG_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
METRICS_NAMESPACE_PATTERN = re.compile(r"^[0-9A-Za-z.\-_/#:]{1,255}$")
"""CloudWatch's namespace characters (its documented set), 1 to 255 of them."""

VALIDATION_ONLY_PROTECTED_OPTIONS: frozenset[str] = frozenset({"secrets.backend"})
"""Keys the construct owns on top of the runtime's: the secrets backend it wires in. (The
runtime's own list holds the StatsD keys, which point Airflow at the metrics relay.)"""

PROTECTED_CONFIGURATION_OPTIONS: frozenset[str] = (
    PROTECTED_OPTIONS | VALIDATION_ONLY_PROTECTED_OPTIONS
)
"""Configuration keys the environment owns; like MWAA's reserved options, users cannot
override them (nor their `_cmd`/`_secret` variants) because a different value would
disconnect Airflow from its own resources."""


def is_protected(option: str) -> bool:
    """True for a protected key or its `_cmd`/`_secret` variant."""
    return is_protected_option(option) or option in VALIDATION_ONLY_PROTECTED_OPTIONS


MAX_SCALE_IN_COOLDOWN = Duration.hours(6)
"""The autoscaler reads the cool-down's samples (12 a minute) back from its DynamoDB table in
one paged Query per decision, inside a 60 s, 128 MB function: 6 hours is 4,320 items, well
inside that; days would not be."""


Rule = Callable[[ResolvedProps], list[str]]


def _unresolved(value: object) -> bool:
    return isinstance(value, str) and Token.is_unresolved(value)


def _spec(props: ResolvedProps) -> EnvironmentClassSpec | None:
    try:
        return spec_for(props.environment_class)
    except ValueError:
        return None


def check_environment_name(s: ResolvedProps) -> list[str]:
    if _unresolved(s.environment_name) or ENVIRONMENT_NAME_PATTERN.match(s.environment_name):
        return []
    return [
        f"environment_name: got {s.environment_name!r}; allowed: 1-80 characters, a letter "
        "first, then letters, digits, '-' or '_' (as MWAA)"
    ]


def check_environment_class(s: ResolvedProps) -> list[str]:
    if _spec(s) is not None:
        return []
    allowed = ", ".join(c.value for c in EnvironmentClass)
    return [f"environment_class: got {s.environment_class!r}; allowed: {allowed}"]


def check_airflow_version(s: ResolvedProps) -> list[str]:
    if s.airflow_version in SUPPORTED_AIRFLOW_VERSIONS:
        return []
    allowed = ", ".join(SUPPORTED_AIRFLOW_VERSIONS)
    return [f"airflow_version: got {s.airflow_version!r}; allowed: {allowed}"]


def check_schedulers(s: ResolvedProps) -> list[str]:
    spec = _spec(s)
    top = spec.max_schedulers if spec else 5
    if 1 <= s.schedulers <= top:
        return []
    return [f"schedulers: got {s.schedulers}; allowed for {s.environment_class}: 1 to {top}"]


def check_workers(s: ResolvedProps) -> list[str]:
    spec = _spec(s)
    top = spec.max_workers if spec else 200
    problems = []
    if spec is not None and spec.all_in_one and (s.min_workers, s.max_workers) != (1, 1):
        problems.append(
            f"min_workers/max_workers: got {s.min_workers}/{s.max_workers}; "
            f"{s.environment_class} runs one worker inside its single task, so both must be 1"
        )
        return problems
    if not 0 <= s.min_workers <= top:
        problems.append(f"min_workers: got {s.min_workers}; allowed: 0 to {top}")
    if not 1 <= s.max_workers <= top:
        problems.append(f"max_workers: got {s.max_workers}; allowed: 1 to {top}")
    if s.max_workers < s.min_workers:
        problems.append(
            f"max_workers: got {s.max_workers}, less than min_workers {s.min_workers}; "
            "allowed: max_workers >= min_workers"
        )
    return problems


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_worker_pools(s: ResolvedProps) -> list[str]:
    pools = s.worker_pools
    if not isinstance(pools, (list, tuple)):
        return [f"worker_pools: got {type(pools).__name__}; allowed: a list of WorkerPool"]
    spec = _spec(s)
    top = spec.max_workers if spec else 200
    if spec is not None and spec.all_in_one and pools:
        return [
            f"worker_pools: {s.environment_class} runs one worker inside its single task; "
            "allowed: no worker pools (choose mw1.small or larger)"
        ]
    problems = []
    if len(pools) > MAX_WORKER_POOLS:
        problems.append(
            f"worker_pools: got {len(pools)} pools; allowed: at most {MAX_WORKER_POOLS} (each "
            "adds a task definition and a dozen resources to the 1 MB template)"
        )
    seen: set[str] = set()
    for index, pool in enumerate(pools):
        where = f"worker_pools[{index}]"
        if not isinstance(pool, WorkerPool):
            problems.append(f"{where}: got {type(pool).__name__}; allowed: a WorkerPool")
            continue
        if not isinstance(pool.queue, str) or not WORKER_POOL_QUEUE_PATTERN.match(pool.queue):
            problems.append(
                f"{where}.queue: got {pool.queue!r}; allowed: 1-40 lowercase letters, digits "
                "or '-', a letter first"
            )
        elif pool.queue == "default":
            problems.append(
                f"{where}.queue: got 'default'; allowed: any other name ('default' is the "
                "environment's own queue)"
            )
        elif pool.queue in seen:
            problems.append(f"{where}.queue: got {pool.queue!r} twice; allowed: unique names")
        seen.add(str(pool.queue))
        counts_valid = True
        for name, low in (("min_workers", 0), ("max_workers", 1)):
            value = getattr(pool, name)
            if not _is_int(value) or not low <= value <= top:
                problems.append(f"{where}.{name}: got {value!r}; allowed: {low} to {top}")
                counts_valid = False
        if counts_valid and pool.max_workers < pool.min_workers:
            problems.append(
                f"{where}.max_workers: got {pool.max_workers}, less than min_workers "
                f"{pool.min_workers}; allowed: max_workers >= min_workers"
            )
        if not isinstance(pool.fargate_spot, bool):
            problems.append(f"{where}.fargate_spot: got {pool.fargate_spot!r}; allowed: a bool")
    return problems


def check_webservers(s: ResolvedProps) -> list[str]:
    spec = _spec(s)
    top = spec.max_webservers if spec else 5
    problems = []
    if not 1 <= s.min_webservers <= top:
        problems.append(f"min_webservers: got {s.min_webservers}; allowed: 1 to {top}")
    if not 1 <= s.max_webservers <= top:
        problems.append(f"max_webservers: got {s.max_webservers}; allowed: 1 to {top}")
    if s.max_webservers < s.min_webservers:
        problems.append(
            f"max_webservers: got {s.max_webservers}, less than min_webservers "
            f"{s.min_webservers}; allowed: max_webservers >= min_webservers"
        )
    return problems


def check_access_mode(s: ResolvedProps) -> list[str]:
    allowed = [m.value for m in WebserverAccessMode]
    if s.webserver_access_mode not in allowed:
        return [
            f"webserver_access_mode: got {s.webserver_access_mode!r}; allowed: "
            + ", ".join(allowed)
        ]
    public = s.webserver_access_mode == WebserverAccessMode.PUBLIC_ONLY.value
    has_tls = s.certificate is not None or (s.domain_name is not None and s.hosted_zone is not None)
    problems = []
    if public and not has_tls:
        problems.append(
            "webserver_access_mode: got PUBLIC_ONLY without TLS; a public load balancer must "
            "serve HTTPS: give domain_name with hosted_zone, or certificate"
        )
    if public and not s.allowed_cidrs:
        problems.append(
            "allowed_cidrs: got none with PUBLIC_ONLY, which would build a load balancer "
            "nobody can reach; allowed: the networks to let in, e.g. ['203.0.113.0/24'], or "
            "['0.0.0.0/0'] for the whole internet"
        )
    return problems


def check_custom_domain(s: ResolvedProps) -> list[str]:
    problems = []
    if s.hosted_zone is not None and s.domain_name is None:
        problems.append("hosted_zone: given without domain_name; give both or neither")
    if s.certificate is not None and s.domain_name is None:
        problems.append("certificate: given without domain_name; the certificate needs a name")
    if s.domain_name is not None and not (s.hosted_zone is not None or s.certificate is not None):
        problems.append(
            f"domain_name: got {s.domain_name!r} without hosted_zone or certificate; "
            "give hosted_zone (we issue the certificate and alias record) or certificate"
        )
    return problems


def check_configuration_options(s: ResolvedProps) -> list[str]:
    problems = []
    for key, value in s.airflow_configuration_options.items():
        if not CONFIG_KEY_PATTERN.match(key):
            problems.append(
                f"airflow_configuration_options: key {key!r} is malformed; allowed: "
                "'section.key' in lower case, e.g. 'core.parallelism'"
            )
        elif is_protected(key):
            problems.append(
                f"airflow_configuration_options: key {key!r} is owned by the environment; "
                f"allowed: any key except {', '.join(sorted(PROTECTED_CONFIGURATION_OPTIONS))}"
            )
        if not isinstance(value, str):
            problems.append(
                f"airflow_configuration_options: value of {key!r} is {type(value).__name__}; "
                "allowed: str (as MWAA, every value is a string)"
            )
    return problems


def check_object_versions(s: ResolvedProps) -> list[str]:
    problems = []
    for prop in (
        "requirements_s3_object_version",
        "plugins_s3_object_version",
        "startup_script_s3_object_version",
    ):
        value = getattr(s, prop)
        if value is None or _unresolved(value):
            continue
        if not value or len(value) > 1024 or any(c.isspace() for c in value):
            problems.append(
                f"{prop}: got {value!r}; allowed: an S3 object version id "
                "(1-1024 characters, no spaces), or None to follow the latest"
            )
    return problems


def check_network(s: ResolvedProps) -> list[str]:
    problems = []
    if s.vpc is not None and s.nat_gateways is not None:
        problems.append(
            "nat_gateways: given with vpc; nat_gateways applies only to the VPC we create, "
            "so give one or the other"
        )
    if s.vpc_subnets is not None and not s.vpc is not None:
        problems.append("vpc_subnets: given without vpc; it selects subnets of your own vpc")
    if s.nat_gateways is not None and not 0 <= s.nat_gateways <= 2:
        problems.append(
            f"nat_gateways: got {s.nat_gateways}; allowed: 1 or 2 (one per availability zone), "
            "or 0 for a private network (no route out; AWS reached through VPC endpoints)"
        )
    if s.nat_gateways == 0 and s.private_network_given is False:
        problems.append(
            "nat_gateways: got 0 with private_network=False; without NAT the VPC has no route "
            "out, which is a private network: give private_network=True, or 1 or 2 NAT gateways"
        )
    if s.private_network and s.nat_gateways is not None and s.nat_gateways > 0:
        problems.append(
            f"nat_gateways: got {s.nat_gateways} with private_network=True; a private network "
            "has no NAT gateway: give 0 or leave nat_gateways out"
        )
    return problems


INTERNET_SIGN_IN = {
    OIDC: "SignIn.oidc()'s provider",
    COGNITO: "SignIn.cognito()'s managed login",
    IDENTITY_CENTER: "SignIn.iam_identity_center()'s SAML metadata",
}
"""Sign-in methods whose identity provider the api-server reaches on the internet."""


def check_private_network(s: ResolvedProps) -> list[str]:
    problems = []
    if not s.private_network:
        if s.vpc_endpoints is not None:
            problems.append(
                f"vpc_endpoints: got {s.vpc_endpoints!r} without private_network; endpoints "
                "are managed only in a private network: give private_network=True, or leave "
                "vpc_endpoints out"
            )
        return problems
    if s.vpc_endpoints not in VPC_ENDPOINT_MODES:
        problems.append(
            f"vpc_endpoints: got {s.vpc_endpoints!r}; allowed: "
            + ", ".join(repr(mode) for mode in VPC_ENDPOINT_MODES)
        )
    if s.webserver_access_mode == WebserverAccessMode.PUBLIC_ONLY.value:
        problems.append(
            "webserver_access_mode: got PUBLIC_ONLY with private_network=True; a public load "
            "balancer needs an internet gateway, which a private network has not: use "
            "PRIVATE_ONLY"
        )
    method = getattr(s.sign_in, "method", None)
    if s.vpc is None and method in INTERNET_SIGN_IN:
        default = " (the default with HTTPS)" if s.sign_in_defaulted else ""
        problems.append(
            f"sign_in: {INTERNET_SIGN_IN[method]}{default} is on the internet, which the new "
            "VPC of private_network=True cannot reach; use sign_in=SignIn.password(), or your "
            "own vpc with a route to your identity provider"
        )
    return problems


def check_allowed_cidrs(s: ResolvedProps) -> list[str]:
    problems = []
    for cidr in s.allowed_cidrs or ():
        if _unresolved(cidr):
            continue
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            problems.append(
                f"allowed_cidrs: got {cidr!r}; allowed: IPv4 or IPv6 networks such as '10.0.0.0/16'"
            )
    return problems


def check_tags(s: ResolvedProps) -> list[str]:
    problems = []
    for key, value in s.tags.items():
        if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            problems.append(
                f"tags: key {key!r} is not allowed; allowed: 1-128 characters, not starting "
                "with 'aws:'"
            )
        if len(value) > 256:
            problems.append(f"tags: value of {key!r} has {len(value)} characters; allowed: 256")
    return problems


def _milliseconds(duration: Duration) -> float:
    return float(duration.to_milliseconds(integral=False))


def check_durations(s: ResolvedProps) -> list[str]:
    problems = []
    interval = s.reconcile_interval
    if not interval.is_unresolved():
        ms = _milliseconds(interval)
        if ms < 60_000 or ms % 60_000:
            problems.append(
                f"reconcile_interval: got {interval.to_human_string()}; allowed: whole "
                "minutes, at least 1 minute (an EventBridge rate schedule)"
            )
    cooldown = s.scale_in_cooldown
    if not cooldown.is_unresolved():
        ms = _milliseconds(cooldown)
        if ms < 0 or ms % 1000 or ms > _milliseconds(MAX_SCALE_IN_COOLDOWN):
            problems.append(
                f"scale_in_cooldown: got {cooldown.to_human_string()}; allowed: whole seconds, "
                "0 seconds to 6 hours (the autoscaler reads the cool-down's samples back from "
                "its table at every decision)"
            )
    return problems


def check_image(s: ResolvedProps) -> list[str]:
    if s.image is not None and s.docker_hub_credentials is not None:
        return [
            "docker_hub_credentials: given with image; they apply to the default image only, "
            "so pass credentials to your ContainerImage instead"
        ]
    return []


def check_cost_levers(s: ResolvedProps) -> list[str]:
    """`cpu_architecture`, `container_insights`, `flow_log_retention` and
    `worker_on_demand_base`."""
    problems = []
    if s.cpu_architecture not in CPU_ARCHITECTURES:
        problems.append(
            f"cpu_architecture: got {s.cpu_architecture!r}; allowed: "
            + ", ".join(repr(a) for a in CPU_ARCHITECTURES)
            + " (or ecs.CpuArchitecture.ARM64 / X86_64)"
        )
    if not isinstance(s.container_insights, bool):
        problems.append(f"container_insights: got {s.container_insights!r}; allowed: True, False")
    elif s.container_insights and s.existing_cluster is not None:
        problems.append(
            "container_insights: given with existing_cluster; it applies only to the cluster "
            "we create, so turn Container Insights on in your cluster's own settings"
        )
    retention = s.flow_log_retention
    if s.vpc is not None and retention is not None:
        problems.append(
            "flow_log_retention: given with vpc; it applies only to the flow logs of the VPC "
            "we create, so give one or the other"
        )
    elif retention is not None and (
        not isinstance(retention, logs.RetentionDays) or retention is logs.RetentionDays.INFINITE
    ):
        problems.append(
            f"flow_log_retention: got {retention!r}; allowed: a logs.RetentionDays other than "
            "INFINITE (the HIPAA and NIST 800-53 packs require a retention, and storage grows "
            "without end)"
        )
    base = s.worker_on_demand_base
    spec = _spec(s)
    if not _is_int(base) or base < 0:
        problems.append(f"worker_on_demand_base: got {base!r}; allowed: a whole number, 0 or more")
    elif base > 0 and spec is not None and spec.all_in_one:
        problems.append(
            f"worker_on_demand_base: got {base}; {s.environment_class} runs its one worker "
            "inside its single task, on demand; allowed: 0"
        )
    elif base > 0 and not s.worker_fargate_spot:
        problems.append(
            f"worker_on_demand_base: got {base} without worker_fargate_spot; it keeps the first "
            "workers on demand when the others run on Spot, so give worker_fargate_spot=True "
            "or leave it 0"
        )
    elif base > s.max_workers:
        problems.append(
            f"worker_on_demand_base: got {base}, more than max_workers {s.max_workers}; "
            f"allowed: 0 to {s.max_workers} (at max_workers every worker is on demand)"
        )
    return problems


DATA_REMOVAL_POLICIES = (
    RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    RemovalPolicy.RETAIN,
    RemovalPolicy.DESTROY,
)


def check_data_props(s: ResolvedProps) -> list[str]:
    """`removal_policy` (SNAPSHOT is refused: buckets, EFS, secrets and log groups cannot be
    snapshotted) and `deletion_protection`."""
    problems = []
    if s.removal_policy not in DATA_REMOVAL_POLICIES:
        allowed = ", ".join(p.name for p in DATA_REMOVAL_POLICIES)
        problems.append(f"removal_policy: got {s.removal_policy!r}; allowed: {allowed}")
    if not isinstance(s.deletion_protection, bool):
        problems.append(f"deletion_protection: got {s.deletion_protection!r}; allowed: True, False")
    return problems


def check_sign_in_prop(s: ResolvedProps) -> list[str]:
    """`sign_in`: a `SignIn`; Cognito only with HTTPS; Identity Center only on Airflow 3.
    `api_access`: a bool."""
    https = has_https(
        certificate=s.certificate, domain_name=s.domain_name, hosted_zone=s.hosted_zone
    )
    problems = check_sign_in(s.sign_in, https=https, airflow_version=s.airflow_version)
    if not isinstance(s.api_access, bool):
        problems.append(f"api_access: got {s.api_access!r}; allowed: True, False")
    return problems


def check_metrics(s: ResolvedProps) -> list[str]:
    """`metrics_namespace`, `metrics_allow_list` and `task_failure_rate_alarm`."""
    problems = []
    namespace = s.metrics_namespace
    if not _unresolved(namespace) and (
        not isinstance(namespace, str)
        or not METRICS_NAMESPACE_PATTERN.match(namespace)
        or namespace.startswith("AWS/")
    ):
        problems.append(
            f"metrics_namespace: got {namespace!r}; allowed: 1-255 characters of letters, "
            "digits and . - _ / # :, not starting with 'AWS/' (AWS's own namespaces)"
        )
    allowed = s.metrics_allow_list
    if not isinstance(allowed, tuple):
        problems.append(
            f"metrics_allow_list: got {type(allowed).__name__}; allowed: a list of metric "
            "names (MWAA's, see docs/metrics.md), or [] to turn Airflow's metrics off"
        )
        allowed = ()
    unknown = metric_names.unknown(allowed)
    if unknown:
        problems.append(
            f"metrics_allow_list: unknown metric names {', '.join(map(repr, unknown))}; "
            "allowed: MWAA's metric names of the mapping in docs/metrics.md"
        )
    rate = s.task_failure_rate_alarm
    if rate is None:
        return problems
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        problems.append(
            f"task_failure_rate_alarm: got {rate!r}; allowed: a fraction above 0, at most 1 "
            "(0.1: more than 10 % of finished tasks failed), or None for no alarm"
        )
    missing = [name for name in (TASK_FAILURES, TASK_SUCCESSES) if name not in allowed]
    if missing:
        problems.append(
            f"task_failure_rate_alarm: needs {' and '.join(missing)} in metrics_allow_list; "
            "allowed: add them, or leave task_failure_rate_alarm unset"
        )
    return problems


CRON_FIELDS = (
    ("minutes", r"[0-9,*/-]+"),
    ("hours", r"[0-9,*/-]+"),
    ("day-of-month", r"[0-9,*?/LW-]+"),
    ("month", r"[0-9A-Za-z,*/-]+"),
    ("day-of-week", r"[0-9A-Za-z,*?/L#-]+"),
    ("year", r"[0-9,*/-]+"),
)
"""EventBridge Scheduler's cron fields, in order, with the characters each accepts."""
TIME_ZONE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$")


def cron_problems(prop: str, expression: str) -> list[str]:
    """What is wrong with `expression` as an EventBridge Scheduler cron expression."""
    allowed = "allowed: cron(minutes hours day-of-month month day-of-week year), e.g. "
    example = '"cron(0 19 ? * MON-FRI *)"'
    match = re.fullmatch(r"cron\((.*)\)", expression.strip())
    fields = match.group(1).split() if match else []
    if len(fields) != len(CRON_FIELDS):
        return [f"{prop}: got {expression!r}; {allowed}{example}"]
    problems = [
        f"{prop}: {name} field {value!r} of {expression!r} has characters a cron field cannot"
        for (name, pattern), value in zip(CRON_FIELDS, fields, strict=True)
        if not re.fullmatch(pattern, value)
    ]
    if (fields[2] == "?") == (fields[4] == "?"):
        problems.append(
            f"{prop}: got {expression!r}; exactly one of day-of-month and day-of-week must be "
            f"'?', e.g. {example}"
        )
    return problems


def check_pause_schedules(s: ResolvedProps) -> list[str]:
    """`pause_schedule` and `resume_schedule`: both or neither, each a cron expression, not
    the same; `schedule_time_zone`: an IANA time zone name."""
    schedules = {"pause_schedule": s.pause_schedule, "resume_schedule": s.resume_schedule}
    given = {name: value for name, value in schedules.items() if value is not None}
    problems: list[str] = []
    if len(given) == 1:
        (name, _), missing = next(iter(given.items())), set(schedules) - set(given)
        problems.append(f"{name}: given without {missing.pop()}; give both or neither")
    for name, value in given.items():
        if not isinstance(value, str):
            problems.append(f"{name}: got {value!r}; allowed: a cron(...) expression string")
        elif not _unresolved(value):
            problems.extend(cron_problems(name, value))
    if len(given) == 2 and s.pause_schedule == s.resume_schedule:
        problems.append(
            f"resume_schedule: got {s.resume_schedule!r}, the same as pause_schedule; "
            "allowed: another time"
        )
    problems.extend(_time_zone_problems(s.schedule_time_zone))
    return problems


def _time_zone_problems(zone: object) -> list[str]:
    """An IANA name (`UTC`, `Europe/Paris`...); checked against the time zone database when
    this Python has one."""
    if _unresolved(zone):
        return []
    if not isinstance(zone, str) or not TIME_ZONE_PATTERN.match(zone):
        return [
            f"schedule_time_zone: got {zone!r}; allowed: an IANA time zone name such as "
            '"UTC" or "Europe/Paris"'
        ]
    import zoneinfo

    known = zoneinfo.available_timezones()
    if known and zone not in known:
        return [
            f"schedule_time_zone: got {zone!r}, which is not in the IANA time zone database; "
            'allowed: a name such as "UTC", "America/New_York" or "Europe/Paris"'
        ]
    return []


RULES: tuple[Rule, ...] = (
    check_environment_name,
    check_environment_class,
    check_airflow_version,
    check_schedulers,
    check_workers,
    check_worker_pools,
    check_webservers,
    check_access_mode,
    check_custom_domain,
    check_configuration_options,
    check_object_versions,
    check_network,
    check_private_network,
    check_allowed_cidrs,
    check_tags,
    check_image,
    check_cost_levers,
    check_durations,
    check_data_props,
    check_bring_your_own,
    check_sign_in_prop,
    check_metrics,
    check_pause_schedules,
)


def validate(props: ResolvedProps) -> list[str]:
    """Every problem with `props`, in rule order; empty when they are valid."""
    return [problem for rule in RULES for problem in rule(props)]


def raise_if_invalid(props: ResolvedProps) -> None:
    """Raise one ValueError listing every problem, or return when there is none."""
    problems = validate(props)
    if problems:
        raise ValueError(
            "Invalid AirflowEnvironment props:\n" + "\n".join(f"- {p}" for p in problems)
        )
