"""End to end: the synthesized task definitions boot a working Airflow on this machine.

Every component (scheduler, dag-processor, triggerer, api-server, Celery worker) runs from its
container definition's entry point, command, environment and secrets: the runtime bundle in
``OPENMWAA_RUNTIME``, the bootstrap, Airflow from PyPI, a throwaway PostgreSQL as the metadata
database, moto as SQS (the Celery broker), Secrets Manager, CloudWatch Logs and S3. What the
test changes is listed in tests/e2e/provision.py (``LOCAL_SUBSTITUTIONS``): paths, ports,
the AWS endpoint. A wrong command, variable or secret reference in the template makes a
component fail to start, and the test fail with its log.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from .conftest import AirflowUnderTest
from .localenv import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

HELLO = "openmwaa_e2e_hello"
SLEEP = "openmwaa_e2e_sleep"


def _trigger(airflow: AirflowUnderTest, dag_id: str) -> str:
    airflow.wait_for(
        f"DAG {dag_id} to be parsed",
        lambda: airflow.request("GET", f"/api/v2/dags/{dag_id}"),
        timeout=180,
    )
    run = airflow.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
    run_id: str = run["dag_run_id"]
    return run_id


def _run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def _wait_for_run(airflow: AirflowUnderTest, dag_id: str, run_id: str, timeout: float) -> str:
    def finished() -> str | None:
        state: str = airflow.request("GET", _run_path(dag_id, run_id))["state"]
        return state if state in ("success", "failed") else None

    state: str = airflow.wait_for(f"run {run_id} of {dag_id} to finish", finished, timeout)
    return state


def _task_instance(airflow: AirflowUnderTest, dag_id: str, run_id: str, task: str) -> Any:
    return airflow.request("GET", f"{_run_path(dag_id, run_id)}/taskInstances/{task}")


def test_dag_runs_on_a_celery_worker_and_logs_to_cloudwatch(airflow: AirflowUnderTest) -> None:
    run_id = _trigger(airflow, HELLO)

    state = _wait_for_run(airflow, HELLO, run_id, timeout=300)

    assert state == "success", airflow.diagnostics()
    instance = _task_instance(airflow, HELLO, run_id, "hello")
    assert instance["queue"] == airflow.queue_name
    assert instance["executor"] in (None, "CeleryExecutor")
    assert "Task execute_workload" in airflow.processes["worker"].log_text()
    stream = f"dag_id={HELLO}/run_id={run_id}/task_id=hello/attempt=1.log".replace(":", "_")
    logs = airflow.aws.client("logs")

    def cloudwatch_text() -> str | None:
        try:
            events = logs.get_log_events(logGroupName=airflow.task_log_group, logStreamName=stream)
        except logs.exceptions.ResourceNotFoundException:
            return None  # the worker uploads the log when the task process ends
        text = "\n".join(e["message"] for e in events["events"])
        return text if "OPENMWAA_E2E_MARKER" in text else None

    text = airflow.wait_for("the task log in CloudWatch Logs", cloudwatch_text, timeout=90)
    assert "STARTUP_SH_MARK=exported-by-startup-sh-for-worker" in text
    api_log = airflow.request("GET", f"{_run_path(HELLO, run_id)}/taskInstances/hello/logs/1")
    assert "OPENMWAA_E2E_MARKER" in str(api_log["content"])


def test_protected_option_from_startup_script_is_ignored(airflow: AirflowUnderTest) -> None:
    for component in ("scheduler", "worker"):
        log = airflow.processes[component].log_text()
        assert "startup script may not change AIRFLOW__CORE__EXECUTOR: ignored" in log


def test_no_secret_reaches_a_log(airflow: AirflowUnderTest) -> None:
    provisioned = airflow.provisioned
    db = json.loads(provisioned.secret_values[provisioned.database_secret_arn])
    secrets = [airflow.admin_password, db["password"]]

    for component, process in airflow.processes.items():
        log = process.log_text()
        for secret in secrets:
            assert secret not in log, f"a secret appears in the {component} log"


def test_worker_finishes_its_running_task_on_sigterm(airflow: AirflowUnderTest) -> None:
    """ECS stops a worker with SIGTERM to PID 1: the running task must still succeed."""
    run_id = _trigger(airflow, SLEEP)

    def running() -> bool:
        return bool(_task_instance(airflow, SLEEP, run_id, "sleep")["state"] == "running")

    airflow.wait_for("the sleep task to run", running, timeout=180, interval=1)
    worker = airflow.processes["worker"]
    worker.popen.send_signal(signal.SIGTERM)
    exit_code = worker.popen.wait(timeout=180)

    assert exit_code == 0, airflow.diagnostics()
    assert _wait_for_run(airflow, SLEEP, run_id, timeout=120) == "success", airflow.diagnostics()
    assert "warm shutdown" in worker.log_text()


def _logout(airflow: AirflowUnderTest, headers: dict[str, str]) -> http.client.HTTPResponse:
    """GET /auth/logout from 127.0.0.2: a peer other than the api-server's own host, as the
    load balancer is (uvicorn trusts only 127.0.0.1 unless FORWARDED_ALLOW_IPS says more)."""
    url = urllib.parse.urlsplit(airflow.api_url)
    connection = http.client.HTTPConnection(
        url.hostname or "127.0.0.1", url.port, timeout=60, source_address=("127.0.0.2", 0)
    )
    connection.request("GET", "/auth/logout", headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_api_server_knows_its_url_and_trusts_the_load_balancer(airflow: AirflowUnderTest) -> None:
    """Behind the ALB the api-server must build links from the environment's URL and take the
    scheme from X-Forwarded-Proto, so that its cookies are Secure under HTTPS."""
    base_url = airflow.launches["api-server"].env["AIRFLOW__API__BASE_URL"]
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}

    over_https = _logout(airflow, forwarded)
    direct = _logout(airflow, {})

    assert over_https.status == 307, over_https.status
    assert (over_https.getheader("Location") or "").startswith(base_url.rstrip("/") + "/auth/")
    https_cookies = over_https.headers.get_all("Set-Cookie") or []
    assert https_cookies and all("Secure" in c for c in https_cookies), https_cookies
    direct_cookies = direct.headers.get_all("Set-Cookie") or []
    assert direct_cookies and not any("Secure" in c for c in direct_cookies), direct_cookies


def _container_definition(airflow: AirflowUnderTest, name: str) -> Any:
    for resource in airflow.template["Resources"].values():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            for definition in resource["Properties"]["ContainerDefinitions"]:
                if definition["Name"] == name:
                    return definition
    raise AssertionError(f"no container definition {name}")


def _json(url: str, token: str = "") -> Any:
    """The JSON a GET of ``url`` answers, or None (an error status or another content type:
    the UI server answers unknown paths with its single-page app's HTML)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=30
        ) as response:
            if "json" not in response.headers.get("Content-Type", ""):
                return None
            return json.load(response)
    except urllib.error.HTTPError:
        return None


def test_the_task_execution_api_runs_apart_from_the_ui(airflow: AirflowUnderTest) -> None:
    """Workers' task calls go to the execution-api server; the UI server serves none of them,
    and the execution-api server serves no UI or REST API (so no UI load can stall them)."""
    execution_root = airflow.execution_api_url.removesuffix("/execution")
    assert _json(f"{airflow.execution_api_url}/health") == {"status": "healthy"}
    assert _json(f"{airflow.api_url}/execution/health") is None
    assert "version" in _json(f"{airflow.api_url}/api/v2/version", airflow.token())
    assert _json(f"{execution_root}/api/v2/version", airflow.token()) is None
    worker_url = airflow.launches["worker"].env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert worker_url.startswith(airflow.execution_api_url)


def test_the_execution_api_health_check_passes_on_a_running_server(
    airflow: AirflowUnderTest,
) -> None:
    """ECS runs this command to decide when the server's address goes into Cloud Map: run it
    as ECS would (in the container's environment), against the running server."""
    check = _container_definition(airflow, "execution-api")["HealthCheck"]
    assert check["Command"][0] == "CMD"
    launch = airflow.launches["execution-api"]
    result = subprocess.run(
        check["Command"][1:], env=launch.env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    stopped = dict(launch.env, OPENMWAA_API_SERVER_PORT=str(free_port()))
    failed = subprocess.run(
        check["Command"][1:], env=stopped, capture_output=True, text=True, timeout=30
    )
    assert failed.returncode != 0, "the health check passes with no server listening"
