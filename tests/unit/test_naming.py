"""Every environment name MWAA accepts gives valid, distinct AWS identifiers."""

from __future__ import annotations

import re
from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openmwaa.naming import (
    database_cluster_identifier,
    dns_label,
    is_dns_label,
    namespace_name,
)
from openmwaa.validation import ENVIRONMENT_NAME_PATTERN

MWAA_NAME = r"^[A-Za-z][0-9A-Za-z_-]{0,79}$"
"""MWAA's CreateEnvironment `Name` pattern."""

mwaa_names = st.from_regex(MWAA_NAME, fullmatch=True)

RDS_CLUSTER_IDENTIFIER = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-)){0,62}$")
"""1-63 characters, a letter first, lowercase letters, digits and hyphens, no `--`."""

TRICKY = ["a__b", "a_-b", "a-_b", "a--b", "a_b", "a-b", "name_", "name-", "name", "x" * 80,
          "x" * 79 + "_", "x" * 79 + "y", "A_", "a" * 54, "a" * 55, "Z9_-_-_"]  # fmt: skip


def rds_cluster_identifier_is_valid(value: str) -> bool:
    return RDS_CLUSTER_IDENTIFIER.match(value) is not None and not value.endswith("-")


def dns_name_is_valid(value: str) -> bool:
    """Each label LDH (letters, digits, inner hyphens), 1-63 characters; 253 in all."""
    labels = value.split(".")
    return len(value) <= 253 and all(
        re.match(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", label) for label in labels
    )


def test_naming_pattern_is_the_one_the_construct_validates() -> None:
    assert ENVIRONMENT_NAME_PATTERN.pattern.strip("^$") in MWAA_NAME


@given(mwaa_names)
def test_naming_every_mwaa_name_gives_a_valid_cluster_identifier(name: str) -> None:
    assert rds_cluster_identifier_is_valid(database_cluster_identifier(name))


@given(mwaa_names)
def test_naming_every_mwaa_name_gives_a_valid_namespace(name: str) -> None:
    assert dns_name_is_valid(namespace_name(name))


@given(mwaa_names, st.integers(min_value=10, max_value=63))
def test_naming_dns_label_is_valid_and_fits(name: str, max_length: int) -> None:
    label = dns_label(name, max_length)
    assert is_dns_label(label, max_length)
    assert rds_cluster_identifier_is_valid(label)


@given(mwaa_names, mwaa_names)
def test_naming_different_names_give_different_labels(first: str, second: str) -> None:
    if first.lower() != second.lower():
        assert dns_label(first) != dns_label(second)
        assert database_cluster_identifier(first) != database_cluster_identifier(second)


def test_naming_is_stable() -> None:
    """The identifiers of deployed environments: a changed one replaces the database cluster
    and the namespace. (SHA-256 of the name, not Python's per-process `hash`.)"""
    assert dns_label("my__env") == "my-env-d687244c"
    assert database_cluster_identifier("my__env") == "my-env-d687244c-metadata"
    assert namespace_name("x" * 80) == "x" * 54 + "-d929cdee.airflow.internal"
    assert database_cluster_identifier("x" * 80) == "x" * 45 + "-d929cdee-metadata"


@pytest.mark.parametrize("name", ["openmwaa", "my-env", "a", "env2", "a" * 54])
def test_naming_keeps_names_that_are_already_valid(name: str) -> None:
    assert database_cluster_identifier(name) == f"{name}-metadata"
    assert namespace_name(name) == f"{name}.airflow.internal"


def test_naming_only_lowercases_a_valid_mixed_case_name() -> None:
    assert database_cluster_identifier("MyEnv") == "myenv-metadata"


@pytest.mark.parametrize("name", TRICKY)
def test_naming_tricky_name_gives_valid_identifiers(name: str) -> None:
    assert re.match(MWAA_NAME, name)
    assert rds_cluster_identifier_is_valid(database_cluster_identifier(name))
    assert dns_name_is_valid(namespace_name(name))


def test_naming_tricky_names_give_distinct_identifiers() -> None:
    for first, second in combinations(TRICKY, 2):
        assert database_cluster_identifier(first) != database_cluster_identifier(second)
        assert namespace_name(first) != namespace_name(second)


def test_naming_a_changed_name_keeps_a_readable_prefix() -> None:
    assert dns_label("my__env").startswith("my-env-")
    assert dns_label("x" * 80).startswith("x" * 54)
    assert len(database_cluster_identifier("x" * 80)) == 63


def test_naming_dns_label_refuses_a_length_without_room_for_the_hash() -> None:
    with pytest.raises(ValueError, match="max_length"):
        dns_label("abc", 9)
