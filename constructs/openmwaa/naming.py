"""AWS identifiers derived from the environment name, valid for every name MWAA accepts.

MWAA accepts a letter followed by up to 79 letters, digits, `_` and `-`. Log group names
(`airflow-<name>-<Type>`) and the dashboard name (`airflow-<name>`) allow all of those as
they are. A DNS label (the Cloud Map namespace) and an RDS identifier do not: they allow only
letters, digits and single hyphens, no trailing hyphen, and at most 63 characters. This
module turns any name into such a label, and keeps it unique: two names that differ (other
than in letter case, which RDS and DNS ignore themselves) never give the same label.

Pure: no AWS calls, no CDK; the construct and the tests import it.
"""

from __future__ import annotations

import hashlib
import re

DNS_LABEL_MAX_LENGTH = 63
"""RFC 1035: a DNS label is at most 63 octets; RDS identifiers have the same limit."""

HASH_LENGTH = 8
"""Hex digits of SHA-256 added when the name had to change: 32 bits against collisions."""

DATABASE_CLUSTER_SUFFIX = "-metadata"
NAMESPACE_SUFFIX = ".airflow.internal"

_VALID_LABEL = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*(?<!-)$")
_NOT_LDH = re.compile(r"[^a-z0-9]+")


def is_dns_label(value: str, max_length: int = DNS_LABEL_MAX_LENGTH) -> bool:
    """Whether `value` is a lowercase letter, then letters, digits and single hyphens,
    not ending in a hyphen, at most `max_length` characters: valid as a DNS label and as
    an RDS identifier."""
    return 0 < len(value) <= max_length and _VALID_LABEL.match(value) is not None


def short_hash(value: str) -> str:
    """A short, stable digest of `value` (the first hex digits of its SHA-256)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def dns_label(name: str, max_length: int = DNS_LABEL_MAX_LENGTH) -> str:
    """`name` as a valid DNS label / RDS identifier of at most `max_length` characters.

    The name is lowercased (RDS and DNS fold case themselves). If that already is a valid
    label, it is the result, unchanged. Otherwise every run of characters other than
    letters and digits becomes one `-`, leading and trailing hyphens go, the result is cut
    to fit and a `-` plus a short hash of the original name is appended, so names that
    only differ in `_` versus `-`, in repeated separators or beyond the length limit still
    give different labels.
    """
    if max_length < HASH_LENGTH + 2:
        raise ValueError(f"max_length: got {max_length}; allowed: {HASH_LENGTH + 2} or more")
    lowered = name.lower()
    if is_dns_label(lowered, max_length):
        return lowered
    base = _NOT_LDH.sub("-", lowered).strip("-")
    if not base[:1].isalpha():
        base = f"n-{base}".rstrip("-")
    suffix = f"-{short_hash(name)}"
    head = base[: max_length - len(suffix)].rstrip("-")
    return f"{head}{suffix}"


def database_cluster_identifier(environment_name: str) -> str:
    """`<label>-metadata`: the Aurora cluster identifier, 1-63 characters."""
    label = dns_label(environment_name, DNS_LABEL_MAX_LENGTH - len(DATABASE_CLUSTER_SUFFIX))
    return f"{label}{DATABASE_CLUSTER_SUFFIX}"


def namespace_name(environment_name: str) -> str:
    """`<label>.airflow.internal`: the Cloud Map private DNS namespace of the environment."""
    return f"{dns_label(environment_name)}{NAMESPACE_SUFFIX}"
