"""The e2e venvs install the stock apache/airflow image's default extras (issue 16, item 4).

Every Airflow version pinned under tests/e2e/airflow/ must have an entry in
tests/e2e/airflow/image_extras.json (the image's ``AIRFLOW_EXTRAS`` for that version and where
it was read), and its requirements.txt must request exactly those extras minus the entry's
listed exceptions, with every distribution they install locked in constraints.txt. No network:
tests/e2e/test_image_extras_venv.py checks a built venv.
"""

from __future__ import annotations

import datetime
import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.image_extras import (
    PINS_DIR,
    ImageExtras,
    extras_problems,
    load_record,
    requested_extras,
)
from tools.airflow_venv import pinned_versions

RECORD = load_record()

NOT_PROVIDERS = frozenset(
    {"aiobotocore", "async", "google-auth", "graphviz", "ldap", "pandas", "statsd", "uv"}
    | {"virtualenv"}
)
"""Extras that install libraries (or a provider's sub-extra), not apache-airflow-providers-<x>."""


def test_every_pinned_version_has_a_record_and_no_record_is_stale() -> None:
    assert set(pinned_versions()) == set(RECORD), (
        "tests/e2e/airflow/image_extras.json must have exactly one entry per pinned version"
    )


@pytest.mark.parametrize("version", pinned_versions())
def test_requirements_request_exactly_the_image_extras(version: str) -> None:
    problems = extras_problems(version, RECORD)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("version", sorted(RECORD))
def test_the_record_says_where_each_list_comes_from(version: str) -> None:
    entry = RECORD[version]
    assert len(set(entry.extras)) == len(entry.extras), "an extra is listed twice"
    assert entry.source.get("dockerfile") or entry.source.get("docs")
    assert re.fullmatch(r"\d+\.\d+\.\d+", entry.source["read_at_airflow_version"])
    assert isinstance(entry.source["confirmed_at_tag"], bool)
    if not entry.source["confirmed_at_tag"]:
        assert entry.source.get("note"), "say why the list was not read at the exact tag"
    datetime.date.fromisoformat(entry.checked)
    assert all(reason.strip() for reason in entry.exceptions.values())


@pytest.mark.parametrize("version", sorted(RECORD))
def test_provider_extras_install_their_provider(version: str) -> None:
    for extra, dists in RECORD[version].distributions.items():
        assert dists, f"{version}: {extra} maps to no distribution"
        if extra not in NOT_PROVIDERS:
            assert dists == (f"apache-airflow-providers-{extra}",), (version, extra)


def _copy_pins(tmp_path: Path, version: str) -> Path:
    shutil.copytree(PINS_DIR / version, tmp_path / version)
    return tmp_path


def _rewrite_extras(pins: Path, version: str, extras: list[str]) -> None:
    path = pins / version / "requirements.txt"
    text = re.sub(
        r"^apache-airflow\[[^\]]*\]",
        f"apache-airflow[{','.join(extras)}]",
        path.read_text(),
        flags=re.MULTILINE,
    )
    path.write_text(text)


def test_the_check_names_a_missing_or_foreign_extra(tmp_path: Path) -> None:
    version = pinned_versions()[-1]
    pins = _copy_pins(tmp_path, version)
    extras = requested_extras(version, pins)
    _rewrite_extras(pins, version, [*extras[1:], "cassandra"])
    problems = "\n".join(extras_problems(version, RECORD, pins))
    assert f"does not request the image's ['{extras[0]}']" in problems
    assert "requests ['cassandra']" in problems


def test_only_a_listed_exception_may_be_left_out(tmp_path: Path) -> None:
    version = pinned_versions()[-1]
    pins = _copy_pins(tmp_path, version)
    extras = requested_extras(version, pins)
    _rewrite_extras(pins, version, extras[1:])
    entry = RECORD[version]
    excused = ImageExtras(
        version=version,
        extras=entry.extras,
        exceptions={extras[0]: "needs a system library the machine lacks"},
        distributions=entry.distributions,
        source=entry.source,
        checked=entry.checked,
    )
    assert extras_problems(version, {version: excused}, pins) == []
    assert extras_problems(version, RECORD, pins) != []


def test_a_version_without_a_record_fails() -> None:
    version = pinned_versions()[0]
    problems = extras_problems(version, {})
    assert problems and "no entry" in problems[0]
