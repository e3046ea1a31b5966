"""End to end: the DAG sync Lambda feeds the running Airflow, and how long a change takes.

The DAG sync handler (lambdas/dag_sync) runs in this process with the configuration of the
template's function (``handler.Config.from_env`` of its resolved environment); only its
``EFS_MOUNT_PATH`` becomes the local stand-in for the EFS access point, the folder that every
Airflow component of the ``airflow`` fixture mounts as ``OPENMWAA_SYNC_ROOT`` (the
dag-processor scans its ``dags/``), and ``CLUSTER_NAME`` is left empty (a DAG change rolls
nothing). Files go to the template's source bucket on moto (versioned), and each change is
delivered as the S3 event notification S3 would send, built from moto's response. The handler
signs its S3 and ECS calls with the credentials of a moto user that holds exactly its role's
policies from the template, under IAM enforcement (see tests/e2e/iam.py).

For a new DAG, an edit and a delete, the test measures the wall time from the S3 call to the
change being visible in the REST API (polled every 0.5 s) and prints
``DAG_SYNC_E2E new=..s edit=..s delete=..s`` (see ``pytest -s``); docs/dag-sync.md records
the figures under "Measured here". Timings are reported, never asserted: the waits only have
generous time-outs.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
import urllib.error
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dag_sync import handler

from .cfn import resources_of_type
from .conftest import AirflowUnderTest
from .localenv import descendants
from .provision import REGION

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DAG_ID = "openmwaa_e2e_synced"
# A folder with a space: S3 sends the key URL-encoded ("synced+e2e"), the sync must decode it.
KEY = "dags/synced e2e/openmwaa_e2e_synced.py"
POLL = 0.5
VISIBLE_TIMEOUT = 240.0
RUN_TIMEOUT = 300.0

DAG_SOURCE = '''\
"""A DAG delivered by the DAG sync (openmwaa end-to-end test), version {version}."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task


@dag(
    dag_id="{dag_id}",
    description="delivered by the DAG sync, version {version}",
    tags=["openmwaa-e2e", "sync-v{version}"],
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
)
def openmwaa_e2e_synced() -> None:
    @task
    def report_version() -> str:
        print("OPENMWAA_SYNC_VERSION={version}")
        return "v{version}"

    report_version()


openmwaa_e2e_synced()
'''

# What the figures depend on: (section.key, environment variable, Airflow's own default).
AIRFLOW_SETTINGS = (
    ("dag_processor.refresh_interval", "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "300"),
    (
        "dag_processor.min_file_process_interval",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL",
        "30",
    ),
    (
        "dag_processor.file_parsing_sort_mode",
        "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE",
        "modified_time",
    ),
    (
        "dag_processor.bundle_refresh_check_interval",
        "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL",
        "5",
    ),
)


def _source(version: int) -> bytes:
    return DAG_SOURCE.format(dag_id=DAG_ID, version=version).encode()


# --- the template's DAG sync function ----------------------------------------------------


def _dag_sync_function(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for logical_id, resource in resources_of_type(template, "AWS::Lambda::Function").items():
        if resource.get("Properties", {}).get("Handler") == "dag_sync.handler.handler":
            return logical_id, resource["Properties"]
    raise AssertionError("the template has no dag_sync.handler.handler function")


def _refs(value: Any) -> Iterator[str]:
    """Every ``Ref`` target inside a template value."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            yield value["Ref"]
        for inner in value.values():
            yield from _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _refs(inner)


def _task_access_points(template: dict[str, Any]) -> set[Any]:
    found = set()
    for resource in resources_of_type(template, "AWS::ECS::TaskDefinition").values():
        for volume in resource["Properties"].get("Volumes", []):
            efs = volume.get("EFSVolumeConfiguration")
            if efs:
                found.add(efs.get("AuthorizationConfig", {}).get("AccessPointId", {}).get("Ref"))
    return found


def _config(airflow: AirflowUnderTest, template: dict[str, Any]) -> handler.Config:
    """``handler.Config`` from the function's own environment, with the local mount."""
    _, props = _dag_sync_function(template)
    variables = props["Environment"]["Variables"]
    env = {
        name: airflow.provisioned.resolver.resolve(value)
        for name, value in variables.items()
        # no ECS here: a DAG change rolls nothing, and no requirements build is started
        if name != "CLUSTER_NAME" and not name.startswith("BUILD_")
    }
    mounts = {c["LocalMountPath"]: c["Arn"] for c in props.get("FileSystemConfigs", [])}
    assert env["EFS_MOUNT_PATH"] in mounts, "EFS_MOUNT_PATH is not where the function mounts EFS"
    # The function mounts the same access point the Airflow tasks use as their sync volume,
    # so its mount root is the folder the containers see at OPENMWAA_SYNC_ROOT.
    access_points = set(_refs(mounts[env["EFS_MOUNT_PATH"]])) & set(
        resources_of_type(template, "AWS::EFS::AccessPoint")
    )
    assert access_points and access_points <= _task_access_points(template), (
        f"the function mounts access point {access_points}, the tasks "
        f"{_task_access_points(template)}"
    )
    env["EFS_MOUNT_PATH"] = str(airflow.sync_root)
    return handler.Config.from_env(env)


def _routed_to_dag_sync(template: dict[str, Any], event_name: str, key: str) -> bool:
    """Would the template's bucket notifications send this event to the DAG sync function?"""
    function_id, _ = _dag_sync_function(template)
    for resource in resources_of_type(template, "Custom::S3BucketNotifications").values():
        configuration = resource["Properties"]["NotificationConfiguration"]
        for target in configuration.get("LambdaFunctionConfigurations", []):
            if target["LambdaFunctionArn"] != {"Fn::GetAtt": [function_id, "Arn"]}:
                continue
            rules = target.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            prefix = next((r["Value"] for r in rules if r["Name"].lower() == "prefix"), "")
            suffix = next((r["Value"] for r in rules if r["Name"].lower() == "suffix"), "")
            events = target.get("Events", [])
            if (
                any(fnmatch.fnmatchcase(f"s3:{event_name}", e) for e in events)
                and key.startswith(prefix)
                and key.endswith(suffix)
            ):
                return True
    return False


# --- S3 events as S3 sends them ----------------------------------------------------------


@dataclass
class Upload:
    """One S3 call and the event notification S3 sends for it."""

    event: dict[str, Any]
    started: float  # time.monotonic() just before the S3 call
    version_id: str
    sequencer: str


@dataclass
class SyncHarness:
    """The source bucket on moto, the DAG sync configured as the template's function, and
    the state the ordered tests of this module hand on."""

    airflow: AirflowUnderTest
    template: dict[str, Any]
    config: handler.Config
    s3: Any  # the user's: uploads and deletes
    function_s3: Any  # the function's, signed with its role's credentials
    function_ecs: Any
    metrics: list[str] = field(default_factory=list)
    uploads: dict[str, Upload] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    _last_sequencer: int = 0

    @property
    def path(self) -> Path:
        return self.airflow.sync_root / KEY

    def sequencer(self) -> str:
        """A sequencer as S3 makes them: hex, growing with time for a key."""
        value = max(time.time_ns(), self._last_sequencer + 1)
        self._last_sequencer = value
        return format(value, "018X")

    def event(self, event_name: str, obj: dict[str, Any]) -> dict[str, Any]:
        bucket = self.config.bucket
        assert _routed_to_dag_sync(self.template, event_name, KEY), (
            f"the template does not route {event_name} for {KEY} to the DAG sync"
        )
        now = datetime.now(UTC)
        return {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": REGION,
                    "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.")
                    + f"{now.microsecond // 1000:03d}Z",
                    "eventName": event_name,
                    "userIdentity": {"principalId": "AWS:AIDAOPENMWAAE2E"},
                    "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                    "responseElements": {
                        "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                        "x-amz-id-2": uuid.uuid4().hex,
                    },
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "openmwaa-dag-sync-e2e",
                        "bucket": {
                            "name": bucket,
                            "ownerIdentity": {"principalId": "A3OPENMWAAE2E"},
                            "arn": f"arn:aws:s3:::{bucket}",
                        },
                        "object": obj,
                    },
                }
            ]
        }

    def put(self, body: bytes) -> Upload:
        started = time.monotonic()
        response = self.s3.put_object(Bucket=self.config.bucket, Key=KEY, Body=body)
        sequencer = self.sequencer()
        obj = {
            "key": urllib.parse.quote_plus(KEY, safe="/"),
            "size": len(body),
            "eTag": response["ETag"].strip('"'),
            "versionId": response["VersionId"],
            "sequencer": sequencer,
        }
        event = self.event("ObjectCreated:Put", obj)
        return Upload(event, started, response["VersionId"], sequencer)

    def delete(self) -> Upload:
        started = time.monotonic()
        response = self.s3.delete_object(Bucket=self.config.bucket, Key=KEY)
        sequencer = self.sequencer()
        # On a versioned bucket a plain delete adds a delete marker, and S3 says so.
        marker = bool(response.get("DeleteMarker"))
        name = "ObjectRemoved:DeleteMarkerCreated" if marker else "ObjectRemoved:Delete"
        obj = {
            "key": urllib.parse.quote_plus(KEY, safe="/"),
            "versionId": response.get("VersionId", ""),
            "sequencer": sequencer,
        }
        return Upload(self.event(name, obj), started, response.get("VersionId", ""), sequencer)

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the handler as Lambda would for this event."""
        summary: dict[str, Any] = handler.run(
            event,
            self.config,
            s3_client=lambda: self.function_s3,
            ecs_client=lambda: self.function_ecs,
            emit=self.metrics.append,
        )
        return summary

    def wait_until(self, upload: Upload, what: str, check: Callable[[], Any]) -> tuple[Any, float]:
        """Poll ``check`` every 0.5 s; returns its value and the seconds since the upload."""
        value = self.airflow.wait_for(what, check, timeout=VISIBLE_TIMEOUT, interval=POLL)
        return value, time.monotonic() - upload.started


@pytest.fixture(scope="module")
def sync(airflow: AirflowUnderTest, e2e_template: tuple[dict[str, Any], str]) -> SyncHarness:
    template, _ = e2e_template
    assert airflow.source_bucket, "the template's DAG sync function names no bucket"
    s3 = airflow.aws.client("s3")
    versioning = s3.get_bucket_versioning(Bucket=airflow.source_bucket)
    assert versioning.get("Status") == "Enabled", "the source bucket is not versioned on moto"
    config = _config(airflow, template)
    assert config.bucket == airflow.source_bucket
    assert config.mount == str(airflow.sync_root)
    role = airflow.function_principal("dag_sync.handler.handler")
    return SyncHarness(
        airflow,
        template,
        config,
        s3,
        function_s3=airflow.aws.client("s3", role),
        function_ecs=airflow.aws.client("ecs", role),
    )


# --- Airflow side ------------------------------------------------------------------------


def _dag(airflow: AirflowUnderTest) -> dict[str, Any]:
    dag: dict[str, Any] = airflow.request("GET", f"/api/v2/dags/{DAG_ID}")
    return dag


def _tags(dag: dict[str, Any]) -> set[str]:
    return {t["name"] for t in dag.get("tags", [])}


def _run_and_return_value(airflow: AirflowUnderTest) -> str:
    """Trigger the DAG, wait for the run to succeed on the worker, return the task's XCom."""
    run = airflow.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})
    run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"

    def finished() -> str | None:
        state: str = airflow.request("GET", run_path)["state"]
        return state if state in ("success", "failed") else None

    state = airflow.wait_for(f"run {run['dag_run_id']} to finish", finished, RUN_TIMEOUT, 1.0)
    assert state == "success", airflow.diagnostics()
    entry = airflow.request(
        "GET", f"{run_path}/taskInstances/report_version/xcomEntries/return_value"
    )
    return str(entry["value"])


def _effective_settings(airflow: AirflowUnderTest) -> dict[str, str]:
    """The dag-processor's settings in effect: read from the environment of its Airflow
    process (the bootstrap adds openmwaa's defaults), else Airflow's default."""
    process = airflow.processes["dag-processor"]
    environments: list[dict[str, str]] = []
    for pid in [process.popen.pid, *descendants(process.popen.pid)]:
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
        environments.append({k.decode(): v.decode(errors="replace") for k, v in pairs})
    settings = {}
    for option, variable, default in AIRFLOW_SETTINGS:
        values = [e[variable] for e in environments if variable in e]
        settings[option] = f"{values[-1]} (set)" if values else f"{default} (Airflow default)"
    return settings


# --- the tests ---------------------------------------------------------------------------


def test_new_dag_from_an_s3_event_is_parsed_and_runs(sync: SyncHarness) -> None:
    airflow = sync.airflow
    body = _source(1)

    upload = sync.put(body)
    summary = sync.deliver(upload.event)
    on_disk = time.monotonic() - upload.started

    assert summary["written"] == [KEY], summary
    assert summary["counts"]["errors"] == 0 and not summary["syntax_errors"], summary
    assert sync.path.read_bytes() == body
    metrics = json.loads(sync.metrics[-1])
    assert metrics["FilesWritten"] == 1 and metrics["Environment"] == sync.config.environment
    dag, seconds = sync.wait_until(upload, f"DAG {DAG_ID} in the REST API", lambda: _dag(airflow))
    sync.uploads["v1"] = upload
    sync.figures["new"] = seconds
    print(
        f"\nDAG_SYNC_E2E new DAG: on the sync root after {on_disk:.2f} s, in the API after "
        f"{seconds:.1f} s"
    )
    assert "sync-v1" in _tags(dag)
    assert dag["is_stale"] is False
    assert dag["fileloc"].endswith(KEY.removeprefix("dags/"))

    assert _run_and_return_value(airflow) == "v1"


def test_edit_reaches_airflow_and_a_stale_event_does_not_revert_it(sync: SyncHarness) -> None:
    airflow = sync.airflow
    if "v1" not in sync.uploads:
        pytest.skip("needs test_new_dag_from_an_s3_event_is_parsed_and_runs")
    body = _source(2)

    upload = sync.put(body)
    summary = sync.deliver(upload.event)
    on_disk = time.monotonic() - upload.started

    assert summary["written"] == [KEY], summary
    assert sync.path.read_bytes() == body

    def edited() -> dict[str, Any] | None:
        dag = _dag(airflow)
        return dag if "sync-v2" in _tags(dag) else None

    dag, seconds = sync.wait_until(upload, "the edit in the REST API", edited)
    sync.uploads["v2"] = upload
    sync.figures["edit"] = seconds
    print(
        f"\nDAG_SYNC_E2E edit: on the sync root after {on_disk:.2f} s, in the API after "
        f"{seconds:.1f} s"
    )
    assert "sync-v1" not in _tags(dag)
    assert dag["description"] == "delivered by the DAG sync, version 2"

    # S3 delivers late: the first upload's event (older sequencer) arrives after the edit.
    stale = sync.deliver(sync.uploads["v1"].event)
    assert stale["written"] == [] and stale["counts"]["skipped"] == 1, stale
    assert stale["skipped"][0]["reason"].startswith("stale event"), stale
    # ... and at least once: the edit's own event again.
    duplicate = sync.deliver(upload.event)
    assert duplicate["written"] == [] and duplicate["counts"]["skipped"] == 1, duplicate
    assert duplicate["skipped"][0]["reason"].startswith("duplicate event"), duplicate
    assert sync.path.read_bytes() == body

    # The worker runs the edited code.
    assert _run_and_return_value(airflow) == "v2"


def test_deleted_dag_leaves_the_sync_root_at_once_and_goes_stale(sync: SyncHarness) -> None:
    airflow = sync.airflow
    if "v2" not in sync.uploads:
        pytest.skip("needs test_edit_reaches_airflow_and_a_stale_event_does_not_revert_it")

    upload = sync.delete()
    summary = sync.deliver(upload.event)
    off_disk = time.monotonic() - upload.started

    assert upload.event["Records"][0]["eventName"] == "ObjectRemoved:DeleteMarkerCreated"
    assert summary["removed"] == [KEY], summary
    assert not sync.path.exists()
    # A late redelivery of the edit's upload event must not bring the file back.
    late = sync.deliver(sync.uploads["v2"].event)
    assert late["written"] == [] and late["counts"]["skipped"] == 1, late
    assert not sync.path.exists()

    def gone() -> dict[str, Any] | None:
        try:
            dag = _dag(airflow)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return {"is_stale": True, "status": 404}
            raise
        return dag if dag.get("is_stale") else None

    dag, seconds = sync.wait_until(upload, "the deleted DAG to be stale or gone", gone)
    sync.figures["delete"] = seconds
    print(
        f"\nDAG_SYNC_E2E delete: off the sync root after {off_disk:.2f} s, stale in the API "
        f"after {seconds:.1f} s"
    )
    assert dag["is_stale"] is True

    settings = _effective_settings(airflow)
    figures = sync.figures
    print(
        f"\nDAG_SYNC_E2E new={figures['new']:.1f}s edit={figures['edit']:.1f}s "
        f"delete={seconds:.1f}s (upload -> visible in the REST API; polled every {POLL} s)"
    )
    print("DAG_SYNC_E2E settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    if os.environ.get("OPENMWAA_E2E_KEEP"):
        print(f"DAG_SYNC_E2E sync root: {airflow.sync_root}")
