"""`openmwaa dag-check`: real ruff on MWAA-era Airflow 2 DAGs, classification and reports.

The fixture DAGs (tests/fixtures/airflow2_dags/) each carry one Airflow 3 breakage; the test
pins the exact (file, code) pairs the scan reports, so a rule that stops firing, fires twice or
changes severity fails here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tomllib
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from openmwaa.cli import dag_check, dag_scan

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "airflow2_dags"

EXPECTED: dict[str, set[str]] = {
    ".airflowignore": {"OMW313"},
    "clickstream_dynamic_start.py": {"AIR304", "AIR311"},
    "context_callable.py": {"OMW302", "AIR311", "AIR312", "OMW311"},
    "invoice_provide_context.py": {"AIR301", "AIR311", "AIR312"},
    "metadata_cleanup.py": {"OMW304", "AIR311", "AIR312"},
    "nightly_no_schedule.py": {"AIR002", "AIR311"},
    "partner_feed_days_ago.py": {"AIR301", "AIR311", "AIR312", "OMW312"},
    "s3_export_bash_operator.py": {"AIR302", "AIR311"},
    "sales_report.py": {"AIR301", "AIR311", "AIR312", "OMW311"},
    "sql/orders_by_day.sql": {"OMW301"},
    # ruff reports the `execution_date` parameter (AIR301); our OMW302 for it is dropped.
    "taskflow_execution_date.py": {"AIR301", "AIR311", "OMW311"},
    "templated_dates.py": {"OMW301", "AIR001", "AIR311", "AIR312", "OMW311"},
    "warehouse_subdag.py": {"OMW303", "AIR311", "AIR312"},
}
"""Every (file, code) the scan of the fixture folder reports; ready_for_airflow3.py has none."""

BREAKING_BY_FILE = {
    "clickstream_dynamic_start.py": "AIR304",  # a preview rule: proves --preview
    "context_callable.py": "OMW302",
    "invoice_provide_context.py": "AIR301",
    "metadata_cleanup.py": "OMW304",
    "nightly_no_schedule.py": "AIR002",
    "partner_feed_days_ago.py": "AIR301",
    "s3_export_bash_operator.py": "AIR302",
    "sales_report.py": "AIR301",
    "sql/orders_by_day.sql": "OMW301",
    "taskflow_execution_date.py": "AIR301",
    "templated_dates.py": "OMW301",
    "warehouse_subdag.py": "OMW303",
}
"""The one breakage each fixture file was written for."""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="openmwaa")
    dag_check.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dag-check", *argv])
    code = args.run(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code, out, _ = _run([*argv, "--format", "json"], capsys)
    return code, json.loads(out)


def _pair(finding: dict[str, Any]) -> tuple[str, str]:
    return Path(finding["path"]).resolve().relative_to(FIXTURES).as_posix(), finding["code"]


def _pairs(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {_pair(f) for f in document["findings"]}


Report = tuple[int, dict[str, Any]]


@pytest.fixture(scope="module")
def fixture_report() -> Report:
    """The exit status and JSON report of the whole fixture folder (one scan per module)."""
    out, err = StringIO(), StringIO()
    code = dag_check.check([str(FIXTURES)], output_format="json", out=out, err=err)
    return code, json.loads(out.getvalue())


# --- the fixture folder ---------------------------------------------------------------------


def test_dag_check_reports_exactly_the_expected_findings(fixture_report: Report) -> None:
    _, document = fixture_report
    expected = {(name, code) for name, codes in EXPECTED.items() for code in codes}
    assert _pairs(document) == expected


def test_dag_check_finds_one_breakage_per_fixture_file(fixture_report: Report) -> None:
    _, document = fixture_report
    breaking = {_pair(f) for f in document["findings"] if f["severity"] == "breaking"}
    assert breaking == set(BREAKING_BY_FILE.items())


def test_dag_check_exits_1_on_a_breaking_finding(fixture_report: Report) -> None:
    code, document = fixture_report
    assert code == 1
    assert document["exit_code"] == 1


def test_dag_check_json_has_summary_and_finding_fields(fixture_report: Report) -> None:
    _, document = fixture_report
    assert document["target_version"] == "3"
    assert document["ruff_version"] == dag_scan.TESTED_RUFF_VERSION
    summary = document["summary"]
    assert summary["breaking"] == 13  # templated_dates.py reports two template variables
    assert summary["breaking"] + summary["advisory"] == len(document["findings"])
    assert summary["files_scanned"] == 14  # 12 DAG files, the SQL template, .airflowignore
    assert summary["files_with_findings"] == len(EXPECTED)
    sales = next(
        f
        for f in document["findings"]
        if f["code"] == "AIR301" and f["path"].endswith("sales_report.py")
    )
    assert sales == {
        "path": sales["path"],
        "line": 15,
        "column": 5,
        "code": "AIR301",
        "rule": "airflow3-removal",
        "severity": "breaking",
        "message": "`schedule_interval` is removed in Airflow 3.0",
        "fix": "Use `schedule` instead",
        "source": "ruff",
    }


def test_dag_check_points_at_template_variables_in_files_and_strings(
    fixture_report: Report,
) -> None:
    _, document = fixture_report
    places = {
        (Path(f["path"]).name, f["line"], f["column"], f["message"])
        for f in document["findings"]
        if f["code"] == "OMW301"
    }
    assert places == {
        ("orders_by_day.sql", 5, 24, "`prev_ds` is not in the Airflow 3 template context"),
        ("templated_dates.py", 19, 53, "`execution_date` is not in the Airflow 3 template context"),
        ("templated_dates.py", 20, 56, "`next_ds` is not in the Airflow 3 template context"),
    }
    sql = (FIXTURES / "sql" / "orders_by_day.sql").read_text().splitlines()[4]
    assert sql[23:].startswith("prev_ds")


def test_dag_check_text_report_groups_by_file_with_totals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run([str(FIXTURES / "sales_report.py")], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[2].endswith("sales_report.py")
    assert re.match(r"\s+15:5\s+AIR301\s+breaking\s+`schedule_interval` is removed", lines[5])
    assert lines[6].strip() == "fix: Use `schedule` instead"
    assert "1 breaking in 1 file(s), 3 advisory in 1 file(s); 1 file(s) scanned." in out
    assert "By rule: AIR301 1, AIR311 1, AIR312 1, OMW311 1" in out


def test_dag_check_accepts_several_paths(capsys: pytest.CaptureFixture[str]) -> None:
    code, document = _json(
        [str(FIXTURES / "sql"), str(FIXTURES / "s3_export_bash_operator.py")], capsys
    )
    assert code == 1
    assert _pairs(document) == {
        ("sql/orders_by_day.sql", "OMW301"),
        ("s3_export_bash_operator.py", "AIR302"),
        ("s3_export_bash_operator.py", "AIR311"),
    }


# --- clean and advisory-only input ----------------------------------------------------------


def test_dag_check_exits_0_on_an_airflow3_ready_dag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([str(FIXTURES / "ready_for_airflow3.py")], capsys)
    assert code == 0
    assert "0 breaking in 0 file(s), 0 advisory in 0 file(s); 1 file(s) scanned." in out
    assert "No breaking findings." in out


def test_dag_check_exits_0_on_a_clean_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURES / "ready_for_airflow3.py", tmp_path / "sales.py")
    code, document = _json([str(tmp_path)], capsys)
    assert (code, document["findings"], document["exit_code"]) == (0, [], 0)


def test_dag_check_exits_0_when_findings_are_only_advisory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "still_works.py").write_text(
        "from datetime import timedelta\n"
        "from airflow import DAG\n"
        "from airflow.operators.empty import EmptyOperator\n"
        "with DAG('a', schedule=timedelta(days=1), catchup=False) as dag:\n"
        "    done = EmptyOperator(task_id='done')\n"
    )
    code, document = _json([str(tmp_path)], capsys)
    assert code == 0
    assert {f["code"] for f in document["findings"]} == {"AIR311", "AIR312"}
    assert {f["severity"] for f in document["findings"]} == {"advisory"}


def test_dag_check_ignores_the_users_ruff_config_and_noqa(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ruff.lint.per-file-ignores]\n"*.py" = ["AIR"]\n'
    )
    (tmp_path / "dag.py").write_text(
        "from airflow.utils.dates import days_ago  # noqa: AIR301\n"
        "start = days_ago(1)  # noqa: AIR301\n"
    )
    code, document = _json([str(tmp_path)], capsys)
    assert code == 1
    assert [f["code"] for f in document["findings"]] == ["AIR301"]


def test_dag_check_skips_the_folders_ruff_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in (".venv", ".git", "node_modules", "__pycache__", "dags/.hidden"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "query.sql").write_text("SELECT '{{ next_ds }}'\n")
    code, document = _json([str(tmp_path)], capsys)
    assert code == 1
    assert [Path(f["path"]).parent.name for f in document["findings"]] == [".hidden"]


def test_dag_check_reports_a_file_that_does_not_parse_as_breaking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.py").write_text("from airflow import DAG\ndef oops(:\n    pass\n")
    code, document = _json([str(tmp_path)], capsys)
    assert code == 1
    assert {f["code"] for f in document["findings"]} == {dag_scan.SYNTAX_ERROR_CODE}


def test_dag_check_accepts_newer_python_syntax(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "typed.py").write_text("type Rows = list[dict[str, str]]\n")
    code, document = _json([str(tmp_path)], capsys)
    assert (code, document["findings"]) == (0, [])


# --- usage errors (exit 2) ------------------------------------------------------------------


def test_fails_when_a_path_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dags"
    code, out, err = _run([str(FIXTURES), str(missing)], capsys)
    assert code == 2
    assert out == ""
    assert f"openmwaa dag-check: error: no such file or directory: {missing}" in err


def test_fails_when_given_a_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "plugins.zip"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))
    code, _, err = _run([str(archive)], capsys)
    assert code == 2
    assert "unzip it" in err


def test_fails_when_ruff_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setattr(sysconfig, "get_path", lambda *args, **kwargs: str(empty))
    monkeypatch.setenv("PATH", str(empty))
    assert dag_check.find_ruff() is None
    code, out, err = _run([str(FIXTURES)], capsys)
    assert code == 2
    assert out == ""
    assert "ruff not found" in err
    assert "pip install 'openmwaa[cli]'" in err


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell script stands in for ruff")
def test_fails_when_ruff_crashes_and_shows_its_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = tmp_path / "bin"
    scripts.mkdir()
    fake = scripts / "ruff"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "ruff 0.17.6"; exit 0; fi\n'
        'echo "error: Failed to parse: unexpected token" >&2\n'
        "exit 2\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sysconfig, "get_path", lambda *args, **kwargs: str(scripts))
    assert dag_check.find_ruff() == str(fake)
    code, out, err = _run([str(FIXTURES)], capsys)
    assert code == 2
    assert out == ""
    assert "ruff check failed with exit status 2" in err
    assert "error: Failed to parse: unexpected token" in err


def test_fails_on_an_unknown_target_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _run([str(FIXTURES), "--target-version", "2"], capsys)
    assert exit_info.value.code == 2


def test_openmwaa_main_runs_dag_check(capsys: pytest.CaptureFixture[str]) -> None:
    from openmwaa.cli import main

    assert main.main(["dag-check", str(FIXTURES / "ready_for_airflow3.py")]) == 0
    assert "No breaking findings." in capsys.readouterr().out
    assert main.main(["dag-check", str(FIXTURES / "sales_report.py"), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["exit_code"] == 1


def test_dag_check_finds_ruff_next_to_the_running_python() -> None:
    scripts = Path(sysconfig.get_path("scripts"))
    assert dag_check.find_ruff() == str(scripts / ("ruff.exe" if os.name == "nt" else "ruff"))


# --- classification -------------------------------------------------------------------------


def test_every_ruff_airflow_rule_is_classified() -> None:
    ruff = dag_check.find_ruff()
    assert ruff is not None
    listing = subprocess.run(
        [ruff, "rule", "--all", "--output-format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    codes = {r["code"] for r in json.loads(listing.stdout) if (r["code"] or "").startswith("AIR")}
    classified = {code for code in dag_scan.RULES if code.startswith("AIR")}
    assert codes == classified


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        ("AIR002", "breaking"),
        ("AIR301", "breaking"),
        ("AIR302", "breaking"),
        ("AIR303", "breaking"),
        ("AIR304", "breaking"),
        ("AIR001", "advisory"),
        ("AIR311", "advisory"),
        ("AIR312", "advisory"),
        ("AIR321", "advisory"),
        ("AIR305", "breaking"),  # unknown to 0.17.6: AIR30x are removals in ruff's numbering
        ("AIR399", "advisory"),
    ],
)
def test_classify(code: str, severity: str) -> None:
    assert dag_scan.classify(code) == severity


def test_tested_ruff_version_matches_the_cli_extra_pin() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert (
        f"ruff=={dag_scan.TESTED_RUFF_VERSION}"
        in pyproject["project"]["optional-dependencies"]["cli"]
    )


def test_every_own_code_is_documented_in_the_module_docstring() -> None:
    own = {code for code in dag_scan.RULES if code.startswith("OMW")}
    assert own == set(re.findall(r"^(OMW\d{3}) ", dag_scan.__doc__ or "", re.MULTILINE))


# --- openmwaa's own checks, one behaviour each ----------------------------------------------


def _codes(source: str) -> list[tuple[int, str, str]]:
    return [(f.line, f.code, f.subject) for f in dag_scan.scan_python("dag.py", source)]


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("{{ execution_date }}", ["execution_date"]),
        ("{{ macros.ds_add(next_ds, 1) }}", ["next_ds"]),
        ("{% if prev_ds_nodash %}x{% endif %}", ["prev_ds_nodash"]),
        (
            "{{ ti.execution_date | ds }} {{ dag_run.external_trigger }}",
            ["ti.execution_date", "dag_run.external_trigger"],
        ),
        ("{{ conf.get('core', 'dags_folder') }}", ["conf"]),
        ("{{ ds }} {{ logical_date }} {{ data_interval_end | ds }}", []),
        ("{{ dag_run.conf['execution_date'] }} {{ params.next_ds }}", []),
        ("execution_date outside a template", []),
    ],
)
def test_template_variables(template: str, names: list[str]) -> None:
    assert [name for _, name, _ in dag_scan.template_variables(template)] == names


def test_context_keys_in_callables_callbacks_and_execute_are_found() -> None:
    source = (
        "from airflow.operators.python import get_current_context\n"
        "def on_failure(context):\n"
        "    return context['next_ds']\n"
        "class Op:\n"
        "    def execute(self, ctx_in):\n"
        "        return ctx_in.get('tomorrow_ds'), ctx_in['ti'].execution_date\n"
        "def helper():\n"
        "    current = get_current_context()\n"
        "    return current['yesterday_ds'], current['ds'], self_like['execution_date']\n"
    )
    assert _codes(source) == [
        (3, "OMW302", "next_ds"),
        (6, "OMW302", "tomorrow_ds"),
        (6, "OMW302", "execution_date"),
        (9, "OMW302", "yesterday_ds"),
    ]


def test_callable_parameters_named_after_removed_variables_are_found() -> None:
    source = (
        "def load(ds, prev_ds, **kwargs):\n    pass\n"
        "def unrelated(prev_ds):\n    pass\n"
        "op = PythonOperator(task_id='load', python_callable=load)\n"
    )
    assert _codes(source) == [(1, "OMW302", "prev_ds")]


def test_own_attribute_named_execution_date_is_not_reported() -> None:
    source = (
        "class Op:\n"
        "    def __init__(self, d):\n"
        "        self.execution_date = d\n"
        "        x = self.execution_date\n"
    )
    assert _codes(source) == []


def test_metadata_database_access_is_found() -> None:
    source = (
        "from airflow import settings\n"
        "from airflow.settings import Session\n"
        "from airflow.utils.db import provide_session\n"
        "from airflow.models import DagRun\n"
        "def f():\n"
        "    s = settings.Session()\n"
        "    return DagRun.find(dag_id='x')\n"
    )
    assert [(line, code) for line, code, _ in _codes(source)] == [
        (2, "OMW304"),
        (3, "OMW304"),
        (6, "OMW304"),
        (7, "OMW304"),
    ]


def test_removed_modules_are_found_even_when_unused() -> None:
    source = (
        "import airflow.contrib.hooks.aws_hook\n"
        "from airflow.hooks.S3_hook import S3Hook\n"
        "from airflow.operators.subdag import SubDagOperator\n"
        "from airflow.operators.bash import BashOperator\n"
        "from airflow.providers.amazon.aws.hooks.s3 import S3Hook as Hook\n"
    )
    assert _codes(source) == [
        (1, "OMW303", "airflow.contrib.hooks.aws_hook"),
        (2, "OMW303", "airflow.hooks.S3_hook"),
        (3, "OMW303", "airflow.operators.subdag"),
    ]


@pytest.mark.parametrize(
    ("source", "subject"),
    [
        (
            "DAG('a', schedule='30 2 * * 1-5', catchup=False, params={'d': '{{ ds }}'})",
            "30 2 * * 1-5",
        ),
        (
            "DAG('a', schedule=timedelta(days=1), catchup=False, doc='{{ ds }}')",
            "timedelta(days=1)",
        ),
        ("DAG('a', schedule='@daily', catchup=False)", None),  # reads no date
        ("DAG('a', schedule=SCHEDULE, catchup=False, doc='{{ ds }}')", None),  # cannot tell
        (
            "DAG('a', schedule=CronTriggerTimetable('0 6 * * *'), catchup=False, doc='{{ ds }}')",
            None,
        ),
    ],
)
def test_schedule_advisory_needs_a_clock_schedule_and_a_date(
    source: str, subject: str | None
) -> None:
    assert _codes(source + "\n") == ([(1, "OMW311", subject)] if subject else [])


@pytest.mark.parametrize(
    ("call", "reported"),
    [
        ("DAG('a', schedule='@daily')", True),
        ("DAG('a', schedule_interval=timedelta(hours=1))", True),
        ("DAG('a', schedule=None)", False),
        ("DAG('a', schedule='@once')", False),
        ("DAG('a', schedule=[Dataset('s3://b/k')])", False),
        ("DAG('a', schedule='@daily', catchup=True)", False),
        ("DAG('a', **common)", False),
        ("DAG('a')", False),  # no schedule at all: ruff's AIR002
    ],
)
def test_implicit_catchup_advisory(call: str, reported: bool) -> None:
    assert (_codes(call + "\n") == [(1, "OMW312", "catchup")]) is reported


def test_airflowignore_with_patterns_is_advisory() -> None:
    assert dag_scan.scan_text("dags/.airflowignore", "# comment\n\n") == []
    [finding] = dag_scan.scan_text("dags/.airflowignore", "# comment\nhelpers/.*\n")
    assert (finding.line, finding.code, finding.severity) == (2, "OMW313", "advisory")


def test_a_file_that_does_not_parse_gets_no_own_findings() -> None:
    assert dag_scan.scan_python("dag.py", "x = '{{ execution_date }}'\ndef (:\n") == []


def test_columns_count_characters_not_bytes() -> None:
    [finding] = dag_scan.scan_python("dag.py", "é = context['next_ds']\n")
    assert finding.column == 13


def test_ruff_findings_drop_own_duplicates_on_the_same_line_only() -> None:
    ruff = [
        dag_scan.Finding(
            "d.py",
            3,
            9,
            "AIR301",
            "`execution_date` is removed",
            subject="execution_date",
            source="ruff",
        )
    ]
    same_line = dag_scan.Finding("d.py", 3, 9, "OMW302", "m", subject="execution_date")
    other_line = dag_scan.Finding("d.py", 4, 9, "OMW302", "m", subject="execution_date")
    assert dag_scan.drop_covered([same_line, other_line], ruff) == [other_line]


def test_ruff_findings_drop_own_module_findings_for_the_same_module() -> None:
    ruff = [
        dag_scan.Finding(
            "d.py",
            9,
            5,
            "AIR302",
            "m",
            subject="airflow.operators.bash_operator.BashOperator",
            source="ruff",
        )
    ]
    covered = dag_scan.Finding(
        "d.py", 1, 1, "OMW303", "m", subject="airflow.operators.bash_operator"
    )
    elsewhere = dag_scan.Finding(
        "e.py", 1, 1, "OMW303", "m", subject="airflow.operators.bash_operator"
    )
    prefix_only = dag_scan.Finding("d.py", 2, 1, "OMW303", "m", subject="airflow.operators.bash")
    assert dag_scan.drop_covered([covered, elsewhere, prefix_only], ruff) == [
        elsewhere,
        prefix_only,
    ]


def test_construct_package_imports_without_the_ruff_package() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "constructs")}
    code = "import sys; sys.modules['ruff'] = None; import openmwaa.cli.dag_check, openmwaa"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
