"""dag_feedback: syntax errors with their line, literal dag_ids, never executing the file."""

from __future__ import annotations

from dag_sync.dag_feedback import analyse


def test_analyse_reports_syntax_error_with_line() -> None:
    result = analyse(b"import os\n\ndef broken(:\n    pass\n", "dags/broken.py")
    assert result.syntax_error is not None
    assert result.syntax_error.line == 3


def test_analyse_reports_errors_found_only_when_compiling() -> None:
    result = analyse(b"x = 1\nreturn x\n", "dags/ret.py")
    assert result.syntax_error is not None
    assert result.syntax_error.line == 2
    assert "outside function" in result.syntax_error.message


def test_analyse_reports_null_bytes_as_error() -> None:
    assert analyse(b"x = 1\x00\n", "dags/nul.py").syntax_error is not None


def test_analyse_never_executes_the_file(tmp_path: object) -> None:
    result = analyse(b"raise SystemExit('executed')\n", "dags/boom.py")
    assert result.syntax_error is None


def test_analyse_honours_coding_cookie() -> None:
    source = "# -*- coding: latin-1 -*-\nname = 'café'\n".encode("latin-1")
    assert analyse(source, "dags/latin.py").syntax_error is None


def test_analyse_finds_positional_and_keyword_dag_ids() -> None:
    source = b"""
from airflow import DAG, models
with DAG("first") as d1:
    pass
d2 = DAG(dag_id="second", schedule=None)
d3 = models.DAG(dag_id='third')
"""
    assert analyse(source, "dags/a.py").dag_ids == ("first", "second", "third")


def test_analyse_finds_decorator_dag_ids() -> None:
    source = b"""
from airflow.sdk import dag
import airflow.sdk as sdk

@dag(dag_id="explicit")
def one(): ...

@dag("positional")
def two(): ...

@dag
def bare_name(): ...

@sdk.dag(schedule=None)
def called_without_id(): ...
"""
    assert analyse(source, "dags/b.py").dag_ids == (
        "explicit",
        "positional",
        "bare_name",
        "called_without_id",
    )


def test_analyse_skips_non_literal_dag_ids() -> None:
    source = b"for n in ['a', 'b']:\n    DAG(dag_id=f'gen_{n}')\nDAG(name)\n"
    assert analyse(source, "dags/gen.py").dag_ids == ()


def test_analyse_lists_a_repeated_id_once() -> None:
    source = b"if x:\n    DAG('same')\nelse:\n    DAG('same')\n"
    assert analyse(source, "dags/same.py").dag_ids == ("same",)
