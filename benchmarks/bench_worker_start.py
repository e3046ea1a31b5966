"""A worker's start with requirements.txt: the prebuilt folder against pip at start.

What is measured, with the real runtime (the zip application the containers run) under the
real Airflow 3 virtualenv of the end-to-end test (``.e2e-cache/airflow-venv-*``, Python 3.12):

- **bootstrap**: from the runtime's process start to its start of ``airflow celery worker``
  (configuration, the pycurl check, the requirements step, ``db check-migrations``). The
  ``airflow`` on PATH is a stub (it answers ``db check-migrations`` at once and records when
  ``celery worker`` starts), so no database, broker or real Celery is involved: the figure is
  the runtime's own cost, requirements included;
- **import**: the import time of ``airflow.providers.celery.executors.celery_executor`` and of
  every requirement's top-level module, in the environment the runtime gives Airflow (the
  prebuilt folder on PYTHONPATH, or the packages pip put into site-packages): what Celery
  loads before it is ready, minus the broker connection;
- **build**: the one-shot build's own time (the ``build-requirements`` role), paid once per
  requirements change, off any worker's start.

"pip at start" installs into a copy of the virtualenv with ``PIP_NO_CACHE_DIR=1``, like a
fresh container; wheels come from this machine's pip configuration (local wheel folders, then
PyPI), so on Fargate, where every wheel is downloaded through the NAT, pip is slower than
here. The prebuilt folder is on the local disk here and on EFS on Fargate (EFS adds latency
per file opened; the import figure is therefore a lower bound).

Not measured (estimates, stated in docs/runtime.md): Fargate's placement and network interface
and the image pull. Run: ``python benchmarks/bench_worker_start.py [--sets 0,5,20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "constructs"), str(ROOT)]

from openmwaa.runtime_bundle import build_bundle, runtime_sources  # noqa: E402
from tools.airflow_venv import airflow_venv, constraints_file  # noqa: E402

TYPICAL_5 = ["pandas", "openpyxl", "paramiko", "pymysql", "slack-sdk"]
TYPICAL_20 = [
    *TYPICAL_5,
    "xlsxwriter",
    "xmltodict",
    "toolz",
    "backoff",
    "markdown",
    "hvac",
    "pycryptodome",
    "sshtunnel",
    "simple-salesforce",
    "smart-open",
    "pyarrow",
    "scipy",
    "emoji",
    "retry",
    "xlrd",
]
MODULES = {
    "openpyxl": "openpyxl",
    "pymysql": "pymysql",
    "slack-sdk": "slack_sdk",
    "pycryptodome": "Crypto",
    "simple-salesforce": "simple_salesforce",
    "smart-open": "smart_open",
}
SETS = {0: [], 5: TYPICAL_5, 20: TYPICAL_20}

FAKE_AIRFLOW = """#!/bin/bash
case "$1 $2" in
  "db check-migrations") exit 0 ;;
  "celery worker") python3 -c 'import json, os, time; json.dump({"at": time.time(),
      "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "PATH": os.environ["PATH"]},
      open(os.environ["BENCH_OUT"], "w"))'; exit 0 ;;
esac
exit 0
"""


def base_env(tmp: Path, sync: Path, bin_dir: Path, out: Path) -> dict[str, str]:
    secret = {"username": "u", "password": "p", "host": "localhost", "port": 5432}
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "OPENMWAA_COMPONENT": "worker",
        "OPENMWAA_ENVIRONMENT_NAME": "bench",
        "OPENMWAA_AIRFLOW_VERSION": "3.3.2",
        "OPENMWAA_PYTHON_VERSION": "3.12",
        "OPENMWAA_SYNC_ROOT": str(sync),
        "OPENMWAA_CONSTRAINTS_URL": str(constraints_file()),
        "OPENMWAA_DB_SECRET": json.dumps({**secret, "dbname": "airflow"}),
        "OPENMWAA_FERNET_SEED": "x" * 40,
        "OPENMWAA_CELERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
        "OPENMWAA_CELERY_QUEUE_NAME": "q",
        "OPENMWAA_TASK_PROTECTION": "off",
        "AIRFLOW__API_AUTH__JWT_SECRET": "j" * 40,
        "AIRFLOW__API__SECRET_KEY": "k" * 40,
        "AIRFLOW_HOME": str(tmp / "airflow-home"),
        "PIP_NO_CACHE_DIR": "1",
        "BENCH_OUT": str(out),
    }


def start_worker(python: Path, pyz: Path, env: dict[str, str], log: Path) -> tuple[float, dict]:
    """Seconds from the runtime's start to its start of the Celery worker, and what it saw."""
    out = Path(env["BENCH_OUT"])
    out.unlink(missing_ok=True)
    started = time.time()
    with log.open("w") as f:
        code = subprocess.run([str(python), str(pyz)], env=env, stdout=f, stderr=f).returncode
    seen = json.loads(out.read_text()) if out.exists() else None
    if code != 0 or seen is None:
        raise SystemExit(f"the runtime failed (exit {code}); see {log}")
    return seen["at"] - started, seen


def import_seconds(python: Path, env: dict[str, str], packages: list[str]) -> float:
    modules = ["airflow.providers.celery.executors.celery_executor"]
    modules += [MODULES.get(p, p.replace("-", "_")) for p in packages]
    code = (
        "import importlib, time; t = time.perf_counter()\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(time.perf_counter() - t)"
    )
    result = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"importing {modules} failed:\n{result.stderr[-3000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def scenario(venv: Path, pyz: Path, packages: list[str], work: Path) -> dict[str, float]:
    sync = work / "sync"
    sync.mkdir(parents=True)
    bin_dir = work / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "airflow"
    fake.write_text(FAKE_AIRFLOW)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    if packages:
        (sync / "requirements.txt").write_text("\n".join(packages) + "\n")
    env = base_env(work, sync, bin_dir, work / "worker.json")
    python = venv / "bin" / "python"
    result: dict[str, float] = {}

    # the one-shot build, then a worker start that uses its folder
    build_env = {**env, "OPENMWAA_COMPONENT": "build-requirements"}
    started = time.time()
    with (work / "build.log").open("w") as f:
        code = subprocess.run([str(python), str(pyz)], env=build_env, stdout=f, stderr=f)
    result["build"] = time.time() - started
    if code.returncode != 0:
        raise SystemExit(f"the build failed; see {work / 'build.log'}")
    seconds, seen = start_worker(python, pyz, env, work / "prebuilt.log")
    log = (work / "prebuilt.log").read_text()
    if packages and ("using the prebuilt folder" not in log or "pip" in log.split("no pip")[1]):
        raise SystemExit(f"the worker did not use the prebuilt folder; see {work}/prebuilt.log")
    result["prebuilt_bootstrap"] = seconds
    result["prebuilt_import"] = import_seconds(
        python, {**env, "PYTHONPATH": seen["PYTHONPATH"], "PATH": seen["PATH"]}, packages
    )

    # pip at start, into a copy of the virtualenv (a fresh container's site-packages)
    copy = work / "venv"
    shutil.copytree(venv, copy, symlinks=True)
    subprocess.run(["sync"], check=False)  # the copy's writeback must not slow pip's run
    shutil.rmtree(sync / ".openmwaa", ignore_errors=True)
    copy_python = copy / "bin" / "python"
    seconds, seen = start_worker(copy_python, pyz, env, work / "pip.log")
    result["pip_bootstrap"] = seconds
    result["pip_import"] = import_seconds(
        copy_python, {**env, "PYTHONPATH": seen["PYTHONPATH"], "PATH": seen["PATH"]}, packages
    )
    shutil.rmtree(copy, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="0,5,20", help="package counts: 0, 5 and/or 20")
    args = parser.parse_args()
    venv = airflow_venv()
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        pyz = Path(tmp) / "runtime.pyz"
        pyz.write_bytes(build_bundle(runtime_sources()))
        rows = []
        for count in (int(c) for c in args.sets.split(",")):
            figures = scenario(venv, pyz, SETS[count], Path(tmp) / f"set-{count}")
            rows.append((count, figures))
            print(f"  {count} packages done", file=sys.stderr)
    print("Worker start, runtime start -> start of `airflow celery worker`, plus Airflow's")
    print(f"Celery executor and the requirements imported (seconds, {os.cpu_count()} CPUs):")
    header = "packages | prebuilt: bootstrap + import = total | pip at start: bootstrap + "
    print(header + "import = total | one-shot build")
    for count, f in rows:
        pre = f["prebuilt_bootstrap"] + f["prebuilt_import"]
        pip = f["pip_bootstrap"] + f["pip_import"]
        print(
            f"{count:>8} | {f['prebuilt_bootstrap']:6.2f} + {f['prebuilt_import']:5.2f} = "
            f"{pre:6.2f} | {f['pip_bootstrap']:6.2f} + {f['pip_import']:5.2f} = {pip:6.2f} | "
            f"{f['build']:6.2f}"
        )
    base = rows[0][1] if rows and rows[0][0] == 0 else None
    if base is not None:
        zero = base["prebuilt_bootstrap"] + base["prebuilt_import"]
        for count, f in rows[1:]:
            added = f["prebuilt_bootstrap"] + f["prebuilt_import"] - zero
            print(f"requirements add {added:+.2f} s to a worker start with {count} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
