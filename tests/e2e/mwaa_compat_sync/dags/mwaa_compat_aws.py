"""MWAA compatibility suite: AWS from DAGs as on MWAA, with the execution role's credentials.

- ``aws_default`` exists, of type ``aws``, with no configuration by the user;
- an S3Hook on ``aws_default`` reads and writes the bucket the run's conf names;
- the AWS CLI, from a BashOperator, copies from and to that bucket.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import BaseHook, dag, get_current_context, task

COMMON = {
    "schedule": None,
    "start_date": datetime(2024, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "tags": ["mwaa-compat"],
}
INPUT_KEY = "mwaa-compat/input.txt"
INPUT_TEXT = "MWAA_COMPAT_S3_INPUT"


@dag(dag_id="mwaa_compat_aws_default", **COMMON)
def aws_default() -> None:
    @task
    def connection_is_aws() -> str:
        connection = BaseHook.get_connection("aws_default")
        print(f"aws_default: conn_type={connection.conn_type}")
        if connection.conn_type != "aws":
            raise ValueError(f"aws_default has conn_type {connection.conn_type!r}, not 'aws'")
        return str(connection.conn_type)

    connection_is_aws()


@dag(dag_id="mwaa_compat_s3_hook", **COMMON)
def s3_hook() -> None:
    @task
    def read_and_write_the_bucket() -> str:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        params = get_current_context()["params"]
        bucket, token = params["bucket"], params["token"]
        hook = S3Hook(aws_conn_id="aws_default")
        text = hook.read_key(key=INPUT_KEY, bucket_name=bucket)
        if text != INPUT_TEXT:
            raise ValueError(f"s3://{bucket}/{INPUT_KEY} holds {text!r}")
        key = f"mwaa-compat/s3hook/{token}.txt"
        hook.load_string(f"written by S3Hook {token}", key=key, bucket_name=bucket, replace=True)
        if hook.read_key(key=key, bucket_name=bucket) != f"written by S3Hook {token}":
            raise ValueError(f"s3://{bucket}/{key} does not hold what was written")
        return key

    read_and_write_the_bucket()


@dag(dag_id="mwaa_compat_aws_cli", **COMMON)
def aws_cli() -> None:
    BashOperator(
        task_id="copy_with_the_aws_cli",
        bash_command=(
            "set -eu; echo \"aws: $(command -v aws || echo 'not on PATH')\"; aws --version; "
            "work=$(mktemp -d); trap 'rm -rf \"$work\"' EXIT; "
            f'aws s3 cp "s3://{{{{ params.bucket }}}}/{INPUT_KEY}" "$work/input.txt"; '
            f'test "$(cat "$work/input.txt")" = "{INPUT_TEXT}"; '
            'echo "written by the AWS CLI {{ params.token }}" > "$work/output.txt"; '
            'aws s3 cp "$work/output.txt" '
            '"s3://{{ params.bucket }}/mwaa-compat/cli/{{ params.token }}.txt"'
        ),
    )


aws_default()
s3_hook()
aws_cli()
