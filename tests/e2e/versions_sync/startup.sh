#!/bin/bash
# startup.sh of the end-to-end test: its exports reach Airflow, except protected options.
echo "startup.sh running for ${MWAA_AIRFLOW_COMPONENT}"
export STARTUP_SH_MARK="exported-by-startup-sh-for-${MWAA_AIRFLOW_COMPONENT}"
# Protected: the runtime must ignore this, or no task would reach a Celery worker.
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
