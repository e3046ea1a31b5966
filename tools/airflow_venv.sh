#!/usr/bin/env bash
# Build (once) the cached venv of one Apache Airflow version the end-to-end test runs Airflow
# from, and print its path on the last line of stdout.
#
#   tools/airflow_venv.sh VERSION [CACHE_DIR]      (default: <repo>/.e2e-cache, gitignored)
#
# VERSION names a folder tests/e2e/airflow/VERSION/ with requirements.txt and constraints.txt.
# Airflow lives apart from the project's .venv: its pins conflict with ours. The venv's
# directory name carries the version and a hash of those two files and the Python version, so a
# changed pin builds a new venv and an unchanged one is reused. A venv counts only once its
# .complete marker is written (an interrupted build is redone), and builds hold a lock, so
# concurrent runs wait for one. airflow-venv-* directories that no version folder names any
# more are removed.
#
# Python: $OPENMWAA_E2E_PYTHON, else Python 3.12 (the stock image's), else python3. Installer:
# uv ($OPENMWAA_UV, else the project venv's, pinned in pyproject.toml), else pip; the venv keeps
# pip either way (the runtime's requirements steps run `python -m pip`).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:?usage: tools/airflow_venv.sh VERSION [CACHE_DIR]}"
cache="${2:-${repo}/.e2e-cache}"
pins="${repo}/tests/e2e/airflow"
if [[ ! -f "${pins}/${version}/requirements.txt" || ! -f "${pins}/${version}/constraints.txt" ]]; then
    echo "no pinned Airflow ${version}: ${pins}/${version}/{requirements,constraints}.txt" >&2
    exit 2
fi

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
venv_key() {
    cat "${pins}/$1/requirements.txt" "${pins}/$1/constraints.txt" <(echo "${python_version}") |
        sha256sum | cut -c1-12
}
venv="${cache}/airflow-venv-${version}-$(venv_key "${version}")"

mkdir -p "${cache}"
exec 9>"${cache}/.airflow-venv.lock"
flock 9

if [[ ! -f "${venv}/.complete" ]]; then
    echo "building the Airflow venv ${venv} with Python ${python_version} (a few minutes)" >&2
    rm -rf "${venv}"
    "${python}" -m venv "${venv}"
    uv="${OPENMWAA_UV:-${repo}/.venv/bin/uv}"
    if [[ -x "${uv}" ]]; then
        # uv installs the image's ~440 pinned distributions in about a minute, pip in five
        "${uv}" pip install --quiet --python "${venv}/bin/python" --compile-bytecode \
            -r "${pins}/${version}/requirements.txt" -c "${pins}/${version}/constraints.txt"
    else
        "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
            -r "${pins}/${version}/requirements.txt" -c "${pins}/${version}/constraints.txt" 2> >(grep -v '^WARNING: Location' >&2 || true)
    fi
    "${venv}/bin/python" -m pip check >&2
    touch "${venv}/.complete"
    current=()
    for folder in "${pins}"/*/; do
        pinned="$(basename "${folder}")"
        current+=("${cache}/airflow-venv-${pinned}-$(venv_key "${pinned}")")
    done
    for old in "${cache}"/airflow-venv-*; do
        if [[ -d "${old}" && ! " ${current[*]} " =~ " ${old} " ]]; then
            rm -rf "${old}"
        fi
    done
fi

echo "${venv}"
