#!/usr/bin/env bash
# Build (once) the cached Apache Airflow venv the end-to-end test runs Airflow from, and print
# its path on the last line of stdout.
#
#   tools/airflow_venv.sh [CACHE_DIR]      (default: <repo>/.e2e-cache, gitignored)
#
# Airflow lives apart from the project's .venv: its pins conflict with ours. The venv's
# directory name carries a hash of tests/e2e/airflow-requirements.txt,
# tests/e2e/airflow-constraints.txt and the Python version, so a changed pin builds a new venv
# and an unchanged one is reused. A venv counts only once its .complete marker is written
# (an interrupted build is redone), and builds hold a lock, so concurrent runs wait for one.
# Older airflow-venv-* directories are removed.
#
# Python: $OPENMWAA_E2E_PYTHON, else Python 3.12 (the stock image's), else python3.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${1:-${repo}/.e2e-cache}"
requirements="${repo}/tests/e2e/airflow-requirements.txt"
constraints="${repo}/tests/e2e/airflow-constraints.txt"

find_python() {
    if [[ -n "${OPENMWAA_E2E_PYTHON:-}" ]]; then
        echo "${OPENMWAA_E2E_PYTHON}"
        return
    fi
    local candidate
    for candidate in python3.12 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
        if [[ -n "${candidate}" ]] && "${candidate}" --version >/dev/null 2>&1; then
            echo "${candidate}"
            return
        fi
    done
    echo python3
}

python="$(find_python)"
python_version="$("${python}" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
key="$(cat "${requirements}" "${constraints}" <(echo "${python_version}") | sha256sum | cut -c1-12)"
venv="${cache}/airflow-venv-${key}"

mkdir -p "${cache}"
exec 9>"${cache}/.airflow-venv.lock"
flock 9

if [[ ! -f "${venv}/.complete" ]]; then
    echo "building the Airflow venv ${venv} with Python ${python_version} (a few minutes)" >&2
    rm -rf "${venv}"
    "${python}" -m venv "${venv}"
    "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "${requirements}" -c "${constraints}" 2> >(grep -v '^WARNING: Location' >&2 || true)
    "${venv}/bin/python" -m pip check >&2
    touch "${venv}/.complete"
    for old in "${cache}"/airflow-venv-*; do
        if [[ "${old}" != "${venv}" && -d "${old}" ]]; then
            rm -rf "${old}"
        fi
    done
fi

echo "${venv}"
