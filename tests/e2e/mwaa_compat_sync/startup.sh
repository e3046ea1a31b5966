#!/bin/bash
# startup.sh of the MWAA compatibility suite (MWAA_COMPAT_STARTUP_MARKER), written as for MWAA.
echo "mwaa-compat startup.sh for ${MWAA_AIRFLOW_COMPONENT} of ${AIRFLOW_ENV_NAME}"
# A custom MWAA_-prefixed name: MWAA lets startup.sh set it, and it reaches the tasks.
export MWAA_COMPAT_STARTUP_FLAG="set-by-startup-sh-for-${MWAA_AIRFLOW_COMPONENT}"
# What startup.sh itself saw of MWAA's variables, for the tasks to check.
export MWAA_COMPAT_STARTUP_SAW_ENV_NAME="${AIRFLOW_ENV_NAME}"
# Reserved by MWAA: this override must be ignored.
export AIRFLOW_ENV_NAME="overridden-by-startup-sh"
