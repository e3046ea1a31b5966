"""``openmwaa from-mwaa``: an Amazon MWAA environment, written out as an openmwaa CDK app.

Reads the environment with the caller's AWS credentials and writes a new folder with
``app.py`` (the CDK app), ``cdk.json`` and ``migration-report.md`` (every MWAA setting: maps,
maps differently, or no equivalent). :mod:`openmwaa.cli.mwaa_mapping` decides all of it
without calling AWS; this module makes the calls and writes the files.

``--copy-bucket --target-bucket BUCKET`` also copies MWAA's DAG folder, plugins.zip,
requirements.txt and startup.sh (the versions MWAA pinned) into the bucket of a deployed
openmwaa environment, at openmwaa's keys, and pins the copies' versions in ``app.py``.

The AWS calls, so the permissions the caller needs:

- ``airflow:GetEnvironment`` (GetEnvironment);
- unless ``--new-vpc``, for the VPC around MWAA's subnets: ``ec2:DescribeSubnets``,
  ``ec2:DescribeVpcs`` and ``ec2:DescribeRouteTables``;
- when MWAA names its key by alias: ``kms:DescribeKey``;
- with ``--copy-bucket``, on MWAA's bucket: ``s3:ListBucket`` (ListObjectsV2 of the DAG
  folder), ``s3:GetObject`` and ``s3:GetObjectVersion`` (HeadObject, and CopyObject's read of
  the pinned version), ``kms:Decrypt`` if its objects use a customer managed key; on the target
  bucket: ``s3:ListBucket`` (HeadBucket), ``s3:GetBucketVersioning`` and ``s3:PutObject``
  (CopyObject), ``kms:GenerateDataKey`` if it uses a customer managed key.

Nothing is half done: the folder is built under a temporary name and renamed into place last;
the copy checks every source object and the target bucket before it copies the first object.

Exit status: 0 done, 1 failed (the reason on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from . import bucket_copy, mwaa_mapping
from .bucket_copy import CopyItem, CopyPlan, CopyResult, SourceObject
from .common import INSTALL_HINT
from .mwaa_mapping import Lookups, NetworkFacts, SubnetFacts

ClientFactory = Callable[[str, str | None], Any]
"""(AWS service name, region or None for the default) -> a boto3 client."""

client_factory: ClientFactory | None = None
"""The factory `run` uses when it is given none. None: boto3 with the caller's credentials.
Tests set it (with pytest's monkeypatch) to pass stubbed clients through `openmwaa.cli.main`."""

ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "UnauthorizedOperation"}
)
REFUSED_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
MISSING_OBJECT_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})

T = TypeVar("T")


class MigrationError(Exception):
    """A failure the user can act on: printed on stderr, exit status 1."""


def register(subparsers: Any) -> None:
    """Add ``from-mwaa`` to the ``openmwaa`` parser."""
    parser = subparsers.add_parser(
        "from-mwaa",
        help="write an openmwaa CDK app (and a migration report) from an Amazon MWAA environment",
        description=(
            "Read an Amazon MWAA environment with your AWS credentials and write a folder "
            "with an openmwaa CDK app (app.py, cdk.json) and migration-report.md, which says "
            "how every MWAA setting maps. With --copy-bucket, copy MWAA's DAGs, plugins.zip, "
            "requirements.txt and startup.sh into a deployed openmwaa bucket and pin the "
            "copies. Exit status: 0 done, 1 failed, 2 usage error."
        ),
    )
    parser.add_argument("environment", metavar="ENV_NAME", help="the MWAA environment's name")
    parser.add_argument("--region", help="the AWS region (default: your AWS configuration's)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="the folder to create (default: ./openmwaa-ENV_NAME); it must not exist",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace --output-dir if it exists (all of it)"
    )
    parser.add_argument(
        "--name",
        metavar="NEW_NAME",
        help="the openmwaa environment's name (default: MWAA's); needed to run both side by "
        "side while MWAA's log groups exist",
    )
    parser.add_argument(
        "--new-vpc",
        action="store_true",
        help="let openmwaa create a VPC instead of importing MWAA's (no EC2 calls)",
    )
    parser.add_argument(
        "--copy-bucket",
        action="store_true",
        help="copy MWAA's DAGs, plugins.zip, requirements.txt and startup.sh into "
        "--target-bucket and pin the copies in app.py",
    )
    parser.add_argument(
        "--target-bucket",
        metavar="BUCKET",
        help="the deployed openmwaa environment's bucket (its SourceBucketName output)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, factory: ClientFactory | None = None) -> int:
    """Run ``from-mwaa`` for parsed arguments; the exit status.

    `factory` makes the AWS clients (default: `client_factory`, else boto3)."""
    problem = _usage_problem(args)
    if problem is not None:
        print(f"openmwaa from-mwaa: error: {problem}", file=sys.stderr)
        return 2
    try:
        output = migrate(args, factory or client_factory or boto3_client_factory())
    except MigrationError as error:
        print(f"openmwaa from-mwaa: {error}", file=sys.stderr)
        return 1
    print(output, end="")
    return 0


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.copy_bucket and not args.target_bucket:
        return "--copy-bucket needs --target-bucket (the deployed openmwaa bucket)"
    if args.target_bucket and not args.copy_bucket:
        return "--target-bucket is only used with --copy-bucket"
    if args.name is None:
        return None
    from ..validation import ENVIRONMENT_NAME_PATTERN  # loads the AWS CDK: only for --name

    if not ENVIRONMENT_NAME_PATTERN.match(args.name):
        return (
            f"--name: got {args.name!r}; allowed: 1-80 characters, a letter first, then "
            "letters, digits, '-' or '_'"
        )
    return None


def boto3_client_factory() -> ClientFactory:
    """Clients from one boto3 session per region, with the caller's credentials."""
    try:
        import boto3
    except ImportError:
        raise MigrationError(f"boto3 is not installed; install it with {INSTALL_HINT}") from None
    sessions: dict[str | None, Any] = {}

    def make(service: str, region: str | None) -> Any:
        if region not in sessions:
            sessions[region] = boto3.session.Session(region_name=region)
        return sessions[region].client(service)

    return make


def migrate(args: argparse.Namespace, factory: ClientFactory) -> str:
    """Do the whole command; the summary to print. Raises `MigrationError`, leaving nothing
    behind: no folder, and no object in the target bucket unless the copy itself failed."""
    output_dir: Path = args.output_dir or Path(f"openmwaa-{args.environment}")
    staging = _prepare_output(output_dir, force=args.force)
    try:
        mwaa = _client(factory, "mwaa", args.region)
        region = mwaa.meta.region_name
        environment = _aws(
            lambda: _environment_of(mwaa.get_environment(Name=args.environment)),
            action=f"reading the MWAA environment {args.environment!r}",
            permission="airflow:GetEnvironment",
            not_found=f"no MWAA environment named {args.environment!r} in {region}"
            + ("" if args.region else " (pass --region if it is elsewhere)"),
        )
        lookups = Lookups(
            network=None if args.new_vpc else _network(factory, region, environment),
            kms_key_arn=_kms_key_arn(factory, region, environment),
        )
        copy = None
        if args.copy_bucket:
            s3 = _client(factory, "s3", args.region)
            plan = check_copy(s3, environment, args.target_bucket)
            copy = copy_objects(s3, plan)
        mapped = mwaa_mapping.map_environment(
            environment,
            lookups,
            copy=copy,
            environment_name=args.name,
            region=region,
            new_vpc=args.new_vpc,
        )
        shown = str(output_dir)
        files = {
            mwaa_mapping.APP_FILE: mwaa_mapping.render_app(mapped),
            mwaa_mapping.CDK_JSON_FILE: mwaa_mapping.render_cdk_json(),
            mwaa_mapping.REPORT_FILE: mwaa_mapping.render_report(mapped, output_dir=shown),
        }
        _publish(staging, output_dir, files)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return mwaa_mapping.render_summary(mapped, output_dir=shown)


# AWS calls and their errors.


def _environment_of(response: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `Environment` of a GetEnvironment response (other members, should AWS add any,
    are not read)."""
    environment: Mapping[str, Any] = response["Environment"]
    return environment


def _client(factory: ClientFactory, service: str, region: str | None) -> Any:
    return _aws(
        lambda: factory(service, region),
        action=f"creating the {service} client",
        permission="-",
    )


def _error_code(error: Exception) -> tuple[str, str]:
    details = getattr(error, "response", {}).get("Error", {})
    return str(details.get("Code", "")), str(details.get("Message", ""))


def _aws(call: Callable[[], T], *, action: str, permission: str, not_found: str | None = None) -> T:
    """`call()`, with botocore's errors turned into a `MigrationError` that says what to do."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except (BotoCoreError, ClientError) as error:
        raise _translate(error, action=action, permission=permission, not_found=not_found) from None


def _translate(
    error: Exception, *, action: str, permission: str, not_found: str | None = None
) -> MigrationError:
    """A botocore error as a message naming the action, and what to do about it."""
    from botocore.exceptions import (
        ClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return MigrationError(
            f"{action}: no AWS credentials found; configure them (aws configure, aws sso "
            "login, or AWS_PROFILE / AWS_ACCESS_KEY_ID)"
        )
    if isinstance(error, NoRegionError):
        return MigrationError(f"{action}: no AWS region configured; pass --region")
    if not isinstance(error, ClientError):
        return MigrationError(f"{action}: {error}")
    code, message = _error_code(error)
    if code in ACCESS_DENIED_CODES:
        return MigrationError(
            f"{action}: access denied; your credentials need {permission} ({message})"
        )
    if code in REFUSED_CREDENTIAL_CODES:
        return MigrationError(f"{action}: AWS refused your credentials ({code})")
    if not_found is not None and (
        code.endswith("NotFoundException") or code.endswith(".NotFound") or code == "404"
    ):
        return MigrationError(not_found)
    return MigrationError(f"{action}: {code}: {message}")


def _network(
    factory: ClientFactory, region: str, environment: Mapping[str, Any]
) -> NetworkFacts | None:
    """The VPC around MWAA's subnets; None when MWAA names no subnet."""
    subnet_ids = list((environment.get("NetworkConfiguration") or {}).get("SubnetIds") or [])
    if not subnet_ids:
        return None
    ec2 = _client(factory, "ec2", region)
    hint = " (or pass --new-vpc to let openmwaa create a VPC)"
    subnets = _aws(
        lambda: ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"],
        action=f"describing MWAA's subnets {', '.join(subnet_ids)}",
        permission="ec2:DescribeSubnets" + hint,
        not_found=f"MWAA's subnets {', '.join(subnet_ids)} do not all exist{hint}",
    )
    by_id = {s["SubnetId"]: s for s in subnets}
    vpc_ids = sorted({s["VpcId"] for s in subnets})
    if len(vpc_ids) != 1 or set(by_id) != set(subnet_ids):
        raise MigrationError(
            f"MWAA's subnets {', '.join(subnet_ids)} are not all found in one VPC "
            f"(found: {', '.join(vpc_ids) or 'none'}){hint}"
        )
    vpcs = _aws(
        lambda: ec2.describe_vpcs(VpcIds=vpc_ids)["Vpcs"],
        action=f"describing MWAA's VPC {vpc_ids[0]}",
        permission="ec2:DescribeVpcs" + hint,
        not_found=f"MWAA's VPC {vpc_ids[0]} does not exist{hint}",
    )
    tables = _aws(
        lambda: ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": vpc_ids}])[
            "RouteTables"
        ],
        action=f"describing the route tables of MWAA's VPC {vpc_ids[0]}",
        permission="ec2:DescribeRouteTables" + hint,
    )
    route_tables = _route_table_ids(tables)
    return NetworkFacts(
        vpc_id=vpc_ids[0],
        vpc_cidr_block=vpcs[0]["CidrBlock"],
        subnets=tuple(
            SubnetFacts(
                subnet_id=i,
                availability_zone=by_id[i]["AvailabilityZone"],
                route_table_id=route_tables.get(i, route_tables.get("main")),
            )
            for i in subnet_ids
        ),
    )


def _route_table_ids(tables: list[Mapping[str, Any]]) -> dict[str, str]:
    """Subnet id -> its explicitly associated route table; `main` -> the VPC's main table."""
    ids: dict[str, str] = {}
    for table in tables:
        for association in table.get("Associations", []):
            if association.get("Main"):
                ids["main"] = table["RouteTableId"]
            elif association.get("SubnetId"):
                ids[association["SubnetId"]] = table["RouteTableId"]
    return ids


def _kms_key_arn(factory: ClientFactory, region: str, environment: Mapping[str, Any]) -> str | None:
    """The key ARN behind MWAA's `KmsKey` when it is an alias (else None: no lookup needed)."""
    kms_key = environment.get("KmsKey")
    if not kms_key or not mwaa_mapping.is_kms_alias(str(kms_key)):
        return None
    kms = _client(factory, "kms", region)
    metadata = _aws(
        lambda: kms.describe_key(KeyId=str(kms_key))["KeyMetadata"],
        action=f"resolving MWAA's KMS key alias {kms_key}",
        permission="kms:DescribeKey",
        not_found=f"MWAA's KMS key alias {kms_key} does not exist",
    )
    return str(metadata["Arn"])


# The bucket copy.


def _s3_problem(error: Exception, source: SourceObject, bucket: str) -> str:
    code, message = _error_code(error)
    what = bucket_copy.describe(source, bucket)
    if code in MISSING_OBJECT_CODES or (code in {"400", "InvalidArgument"} and source.version_id):
        return f"{what} does not exist"
    if code in ACCESS_DENIED_CODES:
        return f"{what}: access denied (needs s3:GetObject and s3:GetObjectVersion)"
    return f"{what}: {code} {message}".strip()


def check_copy(s3: Any, environment: Mapping[str, Any], target_bucket: str) -> CopyPlan:
    """Find and check every object to copy, and the target bucket, before copying anything.

    Raises one `MigrationError` listing every problem: a named file or pinned version that is
    missing or unreadable, a DAG folder that cannot be listed, a target bucket that does not
    exist, cannot be read or is not versioned."""
    from botocore.exceptions import BotoCoreError, ClientError

    problems: list[str] = []
    bucket_arn = environment.get("SourceBucketArn")
    if not bucket_arn:
        raise MigrationError("--copy-bucket: MWAA names no source bucket (SourceBucketArn)")
    source_bucket = bucket_copy.bucket_name_from_arn(str(bucket_arn))
    sources = list(bucket_copy.named_sources(environment))
    prefix = bucket_copy.dags_prefix(environment)
    if prefix is not None:
        try:
            keys = [
                item["Key"]
                for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=source_bucket, Prefix=prefix
                )
                for item in page.get("Contents", [])
            ]
            sources += bucket_copy.dag_sources(prefix, keys)
        except BotoCoreError as error:
            raise _translate(
                error, action=f"listing s3://{source_bucket}/{prefix}", permission="s3:ListBucket"
            ) from None
        except ClientError as error:
            code, message = _error_code(error)
            denied = "access denied (needs s3:ListBucket)" if code in ACCESS_DENIED_CODES else ""
            where = f"s3://{source_bucket}/{prefix}"
            problems.append(f"listing {where} (DagS3Path): {denied or code} {message}".strip())
    items: list[CopyItem] = []
    for source in sources:
        extra = {"VersionId": source.version_id} if source.version_id else {}
        try:
            head = s3.head_object(Bucket=source_bucket, Key=source.key, **extra)
        except ClientError as error:
            problems.append(_s3_problem(error, source, source_bucket))
            continue
        except BotoCoreError as error:
            raise _translate(
                error,
                action=f"reading {bucket_copy.describe(source, source_bucket)}",
                permission="s3:GetObject",
            ) from None
        items.append(
            CopyItem(
                source=source,
                version_id=source.version_id or head.get("VersionId"),
                size=int(head.get("ContentLength", 0)),
            )
        )
    problems += _target_problems(s3, target_bucket)
    plan = CopyPlan(source_bucket, target_bucket, tuple(items))
    problems += bucket_copy.plan_problems(plan)
    if problems:
        raise MigrationError(
            "--copy-bucket: nothing was copied and nothing written:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return plan


def _target_problems(s3: Any, bucket: str) -> list[str]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except BotoCoreError as error:
        raise _translate(
            error, action=f"reading --target-bucket {bucket}", permission="s3:ListBucket"
        ) from None
    except ClientError as error:
        code, message = _error_code(error)
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return [
                f"--target-bucket: no bucket named {bucket!r}; deploy the app first (without "
                "--copy-bucket) and pass its SourceBucketName output"
            ]
        if code in ACCESS_DENIED_CODES:
            return [
                f"--target-bucket {bucket!r}: access denied (needs s3:ListBucket, "
                "s3:GetBucketVersioning and s3:PutObject)"
            ]
        return [f"--target-bucket {bucket!r}: {code} {message}".strip()]
    if status != "Enabled":
        return [
            f"--target-bucket {bucket!r} is not versioned, so the copies could not be pinned; "
            "openmwaa's bucket is: pass the environment's SourceBucketName output"
        ]
    return []


def copy_objects(s3: Any, plan: CopyPlan) -> CopyResult:
    """Copy every checked object (the checked version) to its openmwaa key; the new versions
    of the pinned files. A failure part way says how far it got: running again is safe."""
    pins: dict[str, str] = {}
    copied: list[tuple[str, str]] = []
    for item in plan.items:
        source: dict[str, str] = {"Bucket": plan.source_bucket, "Key": item.source.key}
        if item.version_id:
            source["VersionId"] = item.version_id
        what = bucket_copy.describe(item.source, plan.source_bucket)
        try:
            response = _aws(
                functools.partial(
                    s3.copy_object,
                    Bucket=plan.target_bucket,
                    Key=item.source.target_key,
                    CopySource=source,
                ),
                action=f"copying {what} to s3://{plan.target_bucket}/{item.source.target_key}",
                permission="s3:GetObject and s3:GetObjectVersion on MWAA's bucket, "
                "s3:PutObject on the target (and kms:Decrypt/kms:GenerateDataKey for its keys)",
            )
        except MigrationError as error:
            raise MigrationError(
                f"{error}\n{len(copied)} of {len(plan.items)} objects were copied before this "
                "failure and no folder was written; fix it and run the command again"
            ) from None
        copied.append((item.source.key, item.source.target_key))
        if item.source.pin_prop is not None:
            version = response.get("VersionId")
            if not version:
                raise MigrationError(
                    f"s3://{plan.target_bucket} returned no version for "
                    f"{item.source.target_key}: is versioning suspended?"
                )
            pins[item.source.pin_prop] = str(version)
    return CopyResult(
        source_bucket=plan.source_bucket,
        target_bucket=plan.target_bucket,
        pins=pins,
        dag_objects=sum(1 for item in plan.items if item.source.pin_prop is None),
        copied=tuple(copied),
    )


# The output folder.


def _prepare_output(path: Path, *, force: bool) -> Path:
    """Check `path` can be created (or replaced, with force) and make the staging folder
    next to it, so the final rename stays on one file system."""
    if path.exists() or path.is_symlink():
        if not force:
            raise MigrationError(
                f"{path} already exists; choose another --output-dir, or pass --force to replace it"
            )
        if not path.is_dir() or path.is_symlink():
            raise MigrationError(f"{path} exists and is not a folder; --force replaces folders")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise MigrationError(f"cannot create {path}: the folder {parent} does not exist")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    except OSError as error:
        raise MigrationError(f"cannot create {path}: {error}") from None
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _publish(staging: Path, path: Path, files: Mapping[str, str]) -> None:
    """Write `files` into `staging`, then put it in place of `path` (replacing it, if --force
    let it exist) with renames."""
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
    except OSError as error:
        raise MigrationError(f"writing {path}: {error}") from None
    if not path.exists():
        try:
            staging.rename(path)
        except OSError as error:
            raise MigrationError(f"creating {path}: {error}") from None
        return
    old = path.absolute().parent / f".{path.name}.old-{uuid.uuid4().hex}"
    try:
        path.rename(old)
    except OSError as error:
        raise MigrationError(f"replacing {path}: {error}") from None
    try:
        staging.rename(path)
    except OSError as error:
        old.rename(path)
        raise MigrationError(f"replacing {path}: {error}; it was left as it was") from None
    shutil.rmtree(old, ignore_errors=True)
