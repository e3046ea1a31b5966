"""Create a template's resources locally (moto, PostgreSQL) and turn its Airflow containers
into processes' command lines and environments.

:func:`provision` stands in for CloudFormation: it creates on moto the queue, secrets, log
groups and buckets the template declares, makes the database secret point at the local
PostgreSQL (as Aurora's secret attachment does), and returns a :class:`~cfn.Resolver` that
knows nothing else. Before that it stands in for ``cdk deploy``'s asset publishing: it uploads
each environment file the containers name to its bucket (:func:`publish_environment_files`).
:func:`launch_spec` stands in for ECS: it resolves a container's command, environment files,
environment and secrets, then applies the local substitutions listed in
:data:`LOCAL_SUBSTITUTIONS`, and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import socket
import string
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from openmwaa.runtime import contracts

from .cfn import (
    ContainerSpec,
    Resolver,
    TaskSpec,
    UnresolvableError,
    parse_secret_reference,
    resources_of_type,
    task_specs,
)
from .localenv import LocalPostgres
from .principals import Credentials

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
IMAGE_ENTRY_POINT = "/usr/bin/dumb-init"
LOAD_BALANCER_DNS_NAME = "openmwaa-load-balancer.e2e.invalid"
"""The load balancer's DNSName locally; substitution 5 replaces it in the containers."""

LOCAL_SUBSTITUTIONS = """\
What the test changes in each container, and why (everything else is the template's):

1. Entry point: /usr/bin/dumb-init (the stock image's init) -> the dumb-init installed in the
   Airflow venv from PyPI: the same program.
2. Image environment (the image's ENV, not the template): PATH starts with the Airflow venv's
   bin (the image's /home/airflow/.local/bin), AIRFLOW_HOME and HOME are per-container
   temporary directories (the image's /opt/airflow, /home/airflow), DUMB_INIT_SETSID=1 and
   LANG=C.UTF-8 as in the image.
3. File systems: each volume's container path, in the command and the environment, becomes
   a local directory: the EFS volume (the DAG sync root) one shared directory, other task
   volumes (the runtime's) a directory per task. OPENMWAA_SYNC_ROOT must be where the EFS
   volume is mounted. Containers other tasks depend on (the runtime's init container) run to
   completion first, as ECS's DependsOn says. Paths that DAG code names literally
   (LITERAL_MOUNTS: MWAA's AIRFLOW_HOME, /usr/local/airflow) are not rewritten: each process
   runs in a mount namespace of its own where the volume's local directory is bind-mounted
   at that very path (read-only if the mount point says so), as ECS mounts it; a process it
   starts (a task, a bash command) sees the same.
4. AWS: AWS_ENDPOINT_URL points every AWS client at the moto server. The credentials are an
   access key of a moto IAM user that holds exactly the task role's policies from the
   template (on ECS they come from the task role), and moto enforces IAM with AWS's resource
   ARNs and condition keys (tests/e2e/iam.py): a call the role does not allow fails as it
   would on AWS.
5. Network: the execution-api's Cloud Map name (or localhost) in
   AIRFLOW__CORE__EXECUTION_API_SERVER_URL becomes 127.0.0.1, and the port of each server
   (OPENMWAA_API_SERVER_PORT of the api-server and of the execution-api) a free local port; the load
   balancer's DNS name (in the environment's URL, [api] base_url) becomes 127.0.0.1 and that
   port, since the test calls the api-server directly where users go through the ALB; the
   worker's and triggerer's log-serving ports become free ports (on ECS each task has its
   own network namespace; here all share one).
6. ECS secrets: ValueFrom is read from moto's Secrets Manager with the task execution
   role's credentials (as the ECS agent reads them) and ECS's rules (whole secret, or one JSON
   key with ARN:key::). Environment files likewise: each is read from moto's S3 as the
   execution role (GetBucketLocation, then GetObject, as the ECS agent does), parsed as
   Docker's env-file (VAR=VALUE lines, leading blanks and `#` comments skipped, no quoting;
   a line of 64 KiB or more, a name without a value and a value holding `=`, which the ECS
   agent would cut there, fail the test) and put under the container's Environment, which
   wins on a name both set (ECS's rule). No change: this is what ECS does.
7. Metrics: when a container's environment has OPENMWAA_METRICS (JSON), its "port" becomes a
   free local UDP port, the same for every container of one task and different for each task:
   on ECS each task has its own loopback, where the relay of the task listens on the
   template's port; here every task shares the machine's one.
"""

ENVIRONMENT_FILE_LINE_LIMIT = 64 * 1024 - 1
"""The longest env-file line (without its newline) that Go's bufio.Scanner, which the ECS agent
and Docker read env files with, accepts."""
TEMPLATE_VARIABLE = "OPENMWAA_E2E_TEMPLATE"
"""A synthesized template to run (see conftest.py): its file assets are beside it (cdk.out)."""


def generate_secret_string(spec: Mapping[str, Any], rng: random.Random) -> str:
    """A value for ``GenerateSecretString``, honouring its character rules."""
    punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    chars = ""
    if not spec.get("ExcludeLowercase"):
        chars += string.ascii_lowercase
    if not spec.get("ExcludeUppercase"):
        chars += string.ascii_uppercase
    if not spec.get("ExcludeNumbers"):
        chars += string.digits
    if not spec.get("ExcludePunctuation"):
        chars += punctuation
    if spec.get("IncludeSpace"):
        chars += " "
    excluded = set(spec.get("ExcludeCharacters", ""))
    chars = "".join(c for c in chars if c not in excluded)
    length = int(spec.get("PasswordLength", 32))
    value = "".join(rng.choice(chars) for _ in range(length))
    key = spec.get("GenerateStringKey")
    if key:
        data = json.loads(spec.get("SecretStringTemplate", "{}"))
        data[key] = value
        return json.dumps(data)
    return value


@dataclass
class Provisioned:
    """What :func:`provision` created."""

    resolver: Resolver
    secret_values: dict[str, str]  # secret ARN -> secret string
    queue_urls: dict[str, str]  # logical ID -> URL
    log_groups: dict[str, str]  # logical ID -> name
    database_secret_arn: str
    environment_files: dict[str, str] = field(default_factory=dict)  # S3 ARN -> content
    read_environment_file: Callable[[str, str], str] | None = None
    """(execution role's logical ID, S3 object ARN) -> the object's text, read as that role:
    set once the roles' IAM users exist (``running.boot``)."""


def provision(
    template: Mapping[str, Any],
    session: Any,
    postgres: LocalPostgres,
    database_prefix: str = "",
    asset_dir: Path | None = None,
) -> Provisioned:
    """Publish the template's environment files and create its queues, secrets, log groups
    and buckets on moto (``session`` is a boto3 session whose clients reach moto).

    ``database_prefix`` lets several environments share one PostgreSQL server: the database
    login and database get it in front of their names (the secret carries the database name,
    as Aurora's does when it knows it). ``asset_dir`` is the cloud assembly the template was
    synthesized into, if any (see :func:`environment_file_source`)."""
    rng = random.Random(20251124)
    resolver = Resolver(
        pseudo={
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "OpenMwaa",
        },
        types={k: v.get("Type", "") for k, v in template.get("Resources", {}).items()},
    )
    sqs = session.client("sqs")
    logs = session.client("logs")
    s3 = session.client("s3")
    secretsmanager = session.client("secretsmanager")
    published = publish_environment_files(template, s3, resolver, asset_dir)

    queue_urls: dict[str, str] = {}
    for logical_id, resource in resources_of_type(template, "AWS::SQS::Queue").items():
        props = resource.get("Properties", {})
        name = props.get("QueueName") or f"openmwaa-{logical_id}"[:80]
        attributes = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        queue_urls[logical_id] = url
        resolver.refs[logical_id] = url
        resolver.attributes[(logical_id, "QueueUrl")] = url
        resolver.attributes[(logical_id, "QueueName")] = name
        resolver.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"

    log_groups: dict[str, str] = {}
    for logical_id, resource in resources_of_type(template, "AWS::Logs::LogGroup").items():
        props = resource.get("Properties", {})
        name = resolver.resolve(props["LogGroupName"]) if "LogGroupName" in props else logical_id
        logs.create_log_group(logGroupName=name)
        log_groups[logical_id] = name
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
        )

    for logical_id, resource in resources_of_type(template, "AWS::S3::Bucket").items():
        props = resource.get("Properties", {})
        name = props.get("BucketName") or f"openmwaa-{logical_id.lower()}"[:63]
        s3.create_bucket(Bucket=name)
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        resolver.attributes[(logical_id, "DomainName")] = f"{name}.s3.amazonaws.com"

    dynamodb = session.client("dynamodb")
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        props = resource.get("Properties", {})
        name = props.get("TableName") or f"openmwaa-{logical_id}"[:255]
        dynamodb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        )
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        )

    clusters: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources_of_type(template, "AWS::RDS::DBCluster").items():
        props = resource.get("Properties", {})
        identifier = props.get("DBClusterIdentifier") or logical_id.lower()
        clusters[logical_id] = props
        resolver.refs[logical_id] = identifier
        resolver.attributes[(logical_id, "Endpoint.Address")] = "127.0.0.1"
        resolver.attributes[(logical_id, "Endpoint.Port")] = str(postgres.port)

    # Aurora's secret attachment: the secret of a DB cluster gets its connection details.
    attachments = resources_of_type(template, "AWS::SecretsManager::SecretTargetAttachment")
    database_secrets: dict[str, str] = {}  # secret logical ID -> cluster logical ID
    for resource in attachments.values():
        props = resource["Properties"]
        if props.get("TargetType") == "AWS::RDS::DBCluster":
            database_secrets[props["SecretId"]["Ref"]] = props["TargetId"]["Ref"]

    secret_values: dict[str, str] = {}
    database_secret_arn = ""
    for logical_id, resource in resources_of_type(template, "AWS::SecretsManager::Secret").items():
        props = resource.get("Properties", {})
        if "GenerateSecretString" in props:
            value = generate_secret_string(props["GenerateSecretString"], rng)
        elif "SecretString" in props:
            value = resolver.resolve(props["SecretString"])
        else:
            raise UnresolvableError(
                f"secret {logical_id} has neither GenerateSecretString nor SecretString"
            )
        if logical_id in database_secrets:
            cluster_id = database_secrets[logical_id]
            data = json.loads(value)
            dbname = database_prefix + clusters[cluster_id].get("DatabaseName", "postgres")
            data["username"] = database_prefix + data["username"]
            postgres.create_login(data["username"], data["password"], dbname)
            if database_prefix:
                data["dbname"] = dbname
            data.update(
                {
                    "engine": "postgres",
                    "host": "127.0.0.1",
                    "port": postgres.port,
                    "dbClusterIdentifier": resolver.refs[cluster_id],
                }
            )
            value = json.dumps(data)
        name = props.get("Name") or f"openmwaa/{logical_id}"
        arn = secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
        secret_values[arn] = value
        resolver.refs[logical_id] = arn
        if logical_id in database_secrets:
            database_secret_arn = arn

    for logical_id, resource in attachments.items():
        resolver.refs[logical_id] = resolver.resolve(resource["Properties"]["SecretId"])

    ecs = session.client("ecs")
    for logical_id, resource in resources_of_type(template, "AWS::ECS::Cluster").items():
        name = resource.get("Properties", {}).get("ClusterName") or f"openmwaa-{logical_id}"
        arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = arn
    for logical_id, resource in resources_of_type(template, "AWS::ECS::Service").items():
        # The service itself (its tasks are the test's processes), so the Lambdas that
        # describe, scale and roll services find the template's service on moto.
        props = resource.get("Properties", {})
        cluster = resolver.resolve(props["Cluster"])
        family = f"openmwaa-{logical_id}"
        ecs.register_task_definition(
            family=family,
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "airflow", "image": "airflow", "essential": True}],
        )
        service = ecs.create_service(
            cluster=cluster,
            serviceName=props.get("ServiceName") or logical_id,
            taskDefinition=family,
            desiredCount=int(props.get("DesiredCount", 1)),
        )["service"]
        resolver.refs[logical_id] = service["serviceArn"]
        resolver.attributes[(logical_id, "Name")] = service["serviceName"]
    for logical_id in resources_of_type(template, "AWS::ECS::TaskDefinition"):
        # Only named by the DAG sync's RunTask permission (the test's processes are the tasks).
        resolver.refs[logical_id] = (
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/openmwaa-{logical_id}:1"
        )
    for logical_id in resources_of_type(template, "AWS::IAM::Role"):
        resolver.attributes[(logical_id, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
    for logical_id in resources_of_type(template, "AWS::EFS::FileSystem"):
        file_system = f"fs-{zlib.crc32(logical_id.encode()):017x}"
        resolver.refs[logical_id] = file_system
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{file_system}"
        )
    for logical_id in resources_of_type(template, "AWS::EFS::AccessPoint"):
        access_point = f"fsap-{zlib.crc32(logical_id.encode()):017x}"
        resolver.refs[logical_id] = access_point
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:access-point/{access_point}"
        )
    for logical_id, resource in resources_of_type(template, "AWS::ECR::Repository").items():
        name = resource.get("Properties", {}).get("RepositoryName") or logical_id.lower()
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"
        )

    for logical_id in resources_of_type(template, "AWS::ApiGateway::RestApi"):
        # Named by grant_airflow_role's execute-api ARNs and the stage's invoke URL; the
        # test's local gateway (api_gateway.py) serves the REST API under this ID.
        api_id = f"{zlib.crc32(logical_id.encode()):010x}"
        resolver.refs[logical_id] = api_id
        resolver.attributes[(logical_id, "RootResourceId")] = f"root-{api_id}"
    for logical_id in resources_of_type(template, "AWS::ApiGateway::Resource"):
        resolver.refs[logical_id] = f"res-{zlib.crc32(logical_id.encode()):08x}"
    for logical_id in resources_of_type(template, "AWS::ApiGateway::Deployment"):
        resolver.refs[logical_id] = f"dep-{zlib.crc32(logical_id.encode()):08x}"
    for logical_id, resource in resources_of_type(template, "AWS::ApiGateway::Stage").items():
        resolver.refs[logical_id] = resource.get("Properties", {}).get("StageName", logical_id)

    for logical_id in resources_of_type(template, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
        resolver.attributes[(logical_id, "DNSName")] = LOAD_BALANCER_DNS_NAME

    for logical_id in resources_of_type(template, "AWS::ServiceDiscovery::PrivateDnsNamespace"):
        resolver.attributes[(logical_id, "Id")] = f"ns-{logical_id}"
        resolver.refs[logical_id] = f"ns-{logical_id}"
    for logical_id in resources_of_type(template, "AWS::ServiceDiscovery::Service"):
        arn = f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:service/srv-{logical_id}"
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "Id")] = f"srv-{logical_id}"

    return Provisioned(
        resolver=resolver,
        secret_values=secret_values,
        queue_urls=queue_urls,
        log_groups=log_groups,
        database_secret_arn=database_secret_arn,
        environment_files=published,
    )


def template_asset_dir() -> Path | None:
    """The folder of :data:`TEMPLATE_VARIABLE`'s template (a cdk.out), if it is set."""
    path = os.environ.get(TEMPLATE_VARIABLE)
    return Path(path).resolve().parent if path else None


def parse_s3_object_arn(arn: str) -> tuple[str, str]:
    """(bucket, key) of ``arn:<partition>:s3:::<bucket>/<key>``."""
    prefix, _, path = arn.partition(":::")
    bucket, _, key = path.partition("/")
    if not prefix.startswith("arn:") or not prefix.endswith(":s3") or not bucket or not key:
        raise UnresolvableError(f"not an S3 object ARN: {arn!r}")
    return bucket, key


def cdk_custom_asset_hash(asset_hash: str) -> str:
    """The hash CDK names a file asset by when given ``asset_hash`` (AssetHashType.CUSTOM):
    the SHA-256 of that string (aws-cdk-lib's AssetStaging.calculateHash)."""
    return hashlib.sha256(asset_hash.encode()).hexdigest()


def environment_file_source(key: str, asset_dir: Path | None) -> str:
    """The content ``cdk deploy`` would publish under ``key``: ``asset.<key>`` of the cloud
    assembly (``asset_dir``) if it holds it, else this checkout's runtime bundle environment
    file, which must be the one the key names (the template was synthesized from another
    checkout otherwise)."""
    name = key.rsplit("/", 1)[-1]
    if asset_dir is not None and (asset_dir / f"asset.{name}").is_file():
        return (asset_dir / f"asset.{name}").read_text(encoding="utf-8")
    from openmwaa import runtime_bundle

    content_sha256 = runtime_bundle.environment_file_sha256()
    checkout = f"{cdk_custom_asset_hash(content_sha256)}.env"
    if name != checkout:
        where = f"in {asset_dir}" if asset_dir is not None else "(no cloud assembly given)"
        raise AssertionError(
            f"environment file {name}: no asset.{name} {where}, and this checkout's runtime "
            f"bundle environment file (sha256 {content_sha256}) is published as {checkout}: "
            f"the template comes from another checkout; give its cdk.out with {TEMPLATE_VARIABLE}"
        )
    content: str = runtime_bundle.environment_file_content()
    return content


def publish_environment_files(
    template: Mapping[str, Any], s3: Any, resolver: Resolver, asset_dir: Path | None
) -> dict[str, str]:
    """Upload each environment file the template's containers name to its bucket on moto
    (creating the bucket: CDK's bootstrap bucket in a deployment), as ``cdk deploy``
    publishes file assets before CloudFormation runs. Returns S3 ARN -> content."""
    published: dict[str, str] = {}
    for task in task_specs(template):
        for container in task.containers:
            for value in container.environment_files:
                arn = resolver.resolve(value)
                if arn in published:
                    continue
                bucket, key = parse_s3_object_arn(arn)
                content = environment_file_source(key, asset_dir)
                with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                    s3.create_bucket(Bucket=bucket)
                s3.put_object(Bucket=bucket, Key=key, Body=content.encode("utf-8"))
                published[arn] = content
    return published


def parse_env_file(text: str, label: str) -> dict[str, str]:
    """The variables of an env file, read as ECS reads one (Docker's env-file format): one
    ``VAR=VALUE`` a line, leading blanks and ``#`` comment lines skipped, no quoting. Fails on
    what would not reach the container intact: a line too long for the readers, a name without
    ``=`` (Docker would take the host's value), a value holding ``=`` (the ECS agent keeps
    only the text before it), a name set twice."""
    variables: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        where = f"{label}, line {number}"
        line = raw.removesuffix("\r")
        if len(line) > ENVIRONMENT_FILE_LINE_LIMIT:
            raise AssertionError(
                f"{where}: {len(line)} characters, the readers take at most "
                f"{ENVIRONMENT_FILE_LINE_LIMIT}"
            )
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not name or any(c.isspace() for c in name):
            raise AssertionError(f"{where}: not VAR=VALUE: {line[:60]!r}")
        if "=" in value:
            raise AssertionError(f"{where}: {name}'s value holds '=', where the ECS agent cuts it")
        if name in variables:
            raise AssertionError(f"{where}: {name} set twice")
        variables[name] = value
    return variables


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def secret_value(value_from: str, secret_values: Mapping[str, str]) -> str:
    """What ECS injects for a ``ValueFrom``: the secret, or one top-level JSON key of it."""
    reference = parse_secret_reference(value_from)
    if reference.secret_arn not in secret_values:
        raise UnresolvableError(f"ValueFrom names no secret of the template: {value_from!r}")
    if reference.version_id or reference.version_stage not in (None, "AWSCURRENT"):
        raise UnresolvableError(
            f"ValueFrom pins a version the test does not emulate: {value_from!r}"
        )
    text = secret_values[reference.secret_arn]
    if reference.json_key is None:
        return text
    data = json.loads(text)
    if reference.json_key not in data:
        raise UnresolvableError(f"ValueFrom names a missing JSON key: {value_from!r}")
    value = data[reference.json_key]
    return value if isinstance(value, str) else json.dumps(value)


def execution_api_port(template: Mapping[str, Any]) -> str:
    """The port the template's execution-api container listens on (OPENMWAA_API_SERVER_PORT)."""
    for task in task_specs(template):
        for container in task.containers:
            if container.component == "execution-api":
                return str(container.environment.get("OPENMWAA_API_SERVER_PORT", ""))
    raise AssertionError("the template sets an execution API URL but has no execution-api")


def cloud_map_names(template: Mapping[str, Any]) -> set[str]:
    """``<service>.<namespace>`` of every Cloud Map service in the template."""
    namespaces = {
        logical_id: resource["Properties"]["Name"]
        for logical_id, resource in resources_of_type(
            template, "AWS::ServiceDiscovery::PrivateDnsNamespace"
        ).items()
    }
    names = set()
    for resource in resources_of_type(template, "AWS::ServiceDiscovery::Service").values():
        props = resource["Properties"]
        namespace_ref = props.get("NamespaceId") or props.get("DnsConfig", {}).get("NamespaceId")
        target = None
        if isinstance(namespace_ref, dict):
            if "Fn::GetAtt" in namespace_ref:
                target = namespace_ref["Fn::GetAtt"][0]
            elif "Ref" in namespace_ref:
                target = namespace_ref["Ref"]
        if target in namespaces:
            names.add(f"{props['Name']}.{namespaces[target]}")
    return names


LITERAL_MOUNTS = frozenset({"/usr/local/airflow"})
"""Container paths that are bind-mounted at their own path, not remapped: MWAA's AIRFLOW_HOME,
which DAGs written for MWAA name literally (``/usr/local/airflow/dags/...``), where no
rewriting of the command or the environment can reach."""

MOUNT_NAMESPACE_SCRIPT = """\
while [ "$1" != -- ]; do
    mkdir -p -- "$2" && {mount} --bind -- "$1" "$2" || exit 125
    if [ "$3" = ro ]; then {mount} -o remount,bind,ro -- "$2" || exit 125; fi
    shift 3
done
shift
unset PWD
exec "$@"
"""
"""Run by ``sh`` in the new mount namespace: ``(local dir, container path, rw|ro)`` triples,
``--``, then the program. The mount point is made on the host if missing (an empty directory;
the bind is visible only in the namespace). ``unset PWD``: the shell's own variable, so the
program gets exactly the environment it was given."""


@dataclass(frozen=True)
class Bind:
    """A volume's local directory, bind-mounted at the container path."""

    local: Path
    container_path: str
    read_only: bool = False


def bind_argv(binds: Sequence[Bind], argv: Sequence[str]) -> list[str]:
    """``argv`` run in a mount namespace of its own (``unshare --mount``, private propagation:
    nothing mounted there reaches the host) where each of ``binds`` is bind-mounted. Exit 125
    if a bind fails. Needs root (CAP_SYS_ADMIN), as ECS's agent has. No binds: ``argv``."""
    if not binds:
        return list(argv)
    tools = {
        name: shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
        for name in ("unshare", "mount", "sh")
    }
    missing = [name for name, path in tools.items() if not path]
    if missing:
        raise AssertionError(f"binding {[b.container_path for b in binds]} needs {missing}")
    triples = [
        item
        for bind in binds
        for item in (str(bind.local), bind.container_path, "ro" if bind.read_only else "rw")
    ]
    script = MOUNT_NAMESPACE_SCRIPT.format(mount=shlex.quote(str(tools["mount"])))
    return [
        str(tools["unshare"]),
        "--mount",
        "--propagation",
        "private",
        "--",
        str(tools["sh"]),
        "-c",
        script,
        "openmwaa-e2e-mounts",
        *triples,
        "--",
        *argv,
    ]


@dataclass(frozen=True)
class LaunchSpec:
    """A container as a local process: argv, environment, and the template's environment.

    ``argv`` starts the container's own command (``command``: entry point and command, paths
    remapped) inside the mount namespace that binds ``binds`` (see :func:`bind_argv`)."""

    container: str
    component: str | None
    argv: list[str]
    env: dict[str, str]
    template_env: dict[str, str]
    cwd: Path
    command: list[str] = field(default_factory=list)
    binds: tuple[Bind, ...] = ()


@dataclass(frozen=True)
class LocalPaths:
    """The test's stand-ins for the task's file systems and ports."""

    airflow_venv: Path
    sync_root: Path
    work_dir: Path
    moto_endpoint: str
    api_port: int
    execution_api_port: int
    worker_log_port: int
    trigger_log_port: int
    metrics_ports: dict[str, int] = field(default_factory=dict)  # task's logical ID -> UDP port


def volume_dirs(task: TaskSpec, paths: LocalPaths) -> dict[str, Path]:
    """A local directory per volume of a task: the shared sync root for EFS volumes (every
    task mounts the same access point), a fresh directory per task for the others."""
    dirs = {}
    for name, is_efs in task.volumes.items():
        if is_efs:
            dirs[name] = paths.sync_root
        else:
            dirs[name] = paths.work_dir / task.logical_id / "volumes" / name
            dirs[name].mkdir(parents=True, exist_ok=True)
    return dirs


def _remap(value: str, mounts: Mapping[str, Path]) -> str:
    for container_path in sorted(mounts, key=len, reverse=True):
        pattern = re.escape(container_path) + r"(?=/|$|[\s;'\"])"
        local = str(mounts[container_path])
        value = re.sub(pattern, local.replace("\\", "\\\\"), value)
    return value


def environment_files(
    task: TaskSpec, spec: ContainerSpec, provisioned: Provisioned
) -> dict[str, str]:
    """The variables of the container's environment files, each read as the task's execution
    role (see :data:`LOCAL_SUBSTITUTIONS`, 6)."""
    label = f"{task.logical_id}/{spec.name}"
    variables: dict[str, str] = {}
    for value in spec.environment_files:
        arn = provisioned.resolver.resolve(value)
        if provisioned.read_environment_file is None or task.execution_role is None:
            raise AssertionError(f"{label}: no execution role to read environment file {arn} as")
        text = provisioned.read_environment_file(task.execution_role, arn)
        for name, content in parse_env_file(text, f"{label}: {arn}").items():
            if name in variables:
                raise AssertionError(f"{label}: {name} set in two environment files")
            variables[name] = content
    return variables


def launch_spec(
    task: TaskSpec,
    spec: ContainerSpec,
    provisioned: Provisioned,
    template: Mapping[str, Any],
    paths: LocalPaths,
    volumes: Mapping[str, Path],
    credentials: Credentials,
    read_secret: Callable[[str], str],
) -> LaunchSpec:
    """Resolve a container and apply :data:`LOCAL_SUBSTITUTIONS`.

    ``credentials`` are the task role's; ``read_secret(arn)`` reads a secret as the task
    execution role."""
    resolver = provisioned.resolver
    component = spec.component
    label = f"{task.logical_id}/{spec.name}"
    if spec.command is None:
        raise AssertionError(f"{label}: the container has no Command")
    mounts: dict[str, Path] = {}
    binds: list[Bind] = []
    for mount in spec.mount_points:
        if mount.source_volume not in volumes:
            raise AssertionError(f"{label}: mounts unknown volume {mount.source_volume!r}")
        local = volumes[mount.source_volume]
        if mount.container_path in LITERAL_MOUNTS:
            binds.append(Bind(local, mount.container_path, mount.read_only))
        else:
            mounts[mount.container_path] = local
    command = resolver.resolve_list(spec.command)
    entry_point = resolver.resolve_list(spec.entry_point) if spec.entry_point else []
    if entry_point and entry_point[0] == IMAGE_ENTRY_POINT:
        entry_point = [str(paths.airflow_venv / "bin" / "dumb-init"), *entry_point[1:]]
    elif entry_point:
        raise AssertionError(f"{label}: unexpected entry point {entry_point}")
    template_env = {
        **environment_files(task, spec, provisioned),
        **{name: resolver.resolve(value) for name, value in spec.environment.items()},
    }
    value_froms = {name: resolver.resolve(value) for name, value in spec.secrets.items()}
    fetched = {
        arn: read_secret(arn)
        for arn in {parse_secret_reference(v).secret_arn for v in value_froms.values()}
    }
    secrets = {name: secret_value(value, fetched) for name, value in value_froms.items()}

    home = paths.work_dir / task.logical_id / spec.name
    (home / "airflow").mkdir(parents=True, exist_ok=True)
    (home / "home").mkdir(parents=True, exist_ok=True)
    env = {
        # 2. the image's environment
        "PATH": f"{paths.airflow_venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "AIRFLOW_HOME": str(home / "airflow"),
        "HOME": str(home / "home"),
        "DUMB_INIT_SETSID": "1",
        "LANG": "C.UTF-8",
        **template_env,
        **secrets,
    }
    # 3. file systems: every volume's container path -> its local directory, except the
    # literal ones, bound at their own path in the process's mount namespace
    own_command = [_remap(arg, mounts) for arg in [*entry_point, *command]]
    for name in template_env:
        env[name] = _remap(env[name], mounts)
    if component is not None:
        sync_root = template_env.get("OPENMWAA_SYNC_ROOT", "")
        efs_paths = [
            m.container_path for m in spec.mount_points if task.volumes.get(m.source_volume)
        ]
        if sync_root not in efs_paths:
            raise AssertionError(
                f"{label}: OPENMWAA_SYNC_ROOT={sync_root!r} is not where an EFS volume is "
                f"mounted ({efs_paths})"
            )
    # 4. AWS
    env.update(
        {
            "AWS_ENDPOINT_URL": paths.moto_endpoint,
            **credentials.environment(),
        }
    )
    # 5. network
    execution_url = template_env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
    if execution_url is not None:
        parts = urlsplit(execution_url)
        in_this_task = any(c.component == "execution-api" for c in task.containers)
        names = cloud_map_names(template) | ({"localhost"} if in_this_task else set())
        if parts.hostname not in names:
            raise AssertionError(
                f"{label}: execution API host {parts.hostname!r} is none of the template's "
                f"Cloud Map names {sorted(names)}"
            )
        if str(parts.port) != execution_api_port(template):
            raise AssertionError(
                f"{label}: execution API port {parts.port} is not the execution-api's"
            )
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = urlunsplit(
            parts._replace(netloc=f"127.0.0.1:{paths.execution_api_port}")
        )
    for name, value in env.items():
        if LOAD_BALANCER_DNS_NAME in value:
            env[name] = value.replace(LOAD_BALANCER_DNS_NAME, f"127.0.0.1:{paths.api_port}")
    if component == "api-server":
        env["OPENMWAA_API_SERVER_PORT"] = str(paths.api_port)
    elif component == "execution-api":
        env["OPENMWAA_API_SERVER_PORT"] = str(paths.execution_api_port)
    if component is not None:
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(paths.worker_log_port)
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(paths.trigger_log_port)
    # 7. metrics
    if contracts.METRICS_VARIABLE in env:
        metrics = json.loads(env[contracts.METRICS_VARIABLE])
        if task.logical_id not in paths.metrics_ports:
            paths.metrics_ports[task.logical_id] = free_udp_port()
        metrics["port"] = paths.metrics_ports[task.logical_id]
        env[contracts.METRICS_VARIABLE] = json.dumps(metrics, sort_keys=True, separators=(",", ":"))
    if "PWD" in env:
        raise AssertionError(f"{label}: PWD in the environment: the mount namespace unsets it")
    return LaunchSpec(
        container=spec.name,
        component=component,
        argv=bind_argv(binds, own_command),
        env=env,
        template_env=template_env,
        cwd=home / "airflow",
        command=own_command,
        binds=tuple(binds),
    )
