"""The stock apache/airflow image's default extras, and the pinned e2e venvs that must match them.

``tests/e2e/airflow/image_extras.json`` records, per Airflow version pinned under
``tests/e2e/airflow/``, the image's ``AIRFLOW_EXTRAS`` default (with its source), the extras
that cannot be installed here (``exceptions``: extra -> why) and the distributions each extra
installs. ``tests/unit/test_image_extras.py`` checks the pins against the record without a
network; ``tests/e2e/test_image_extras_venv.py`` checks a built venv (and the record's
distributions against the installed ``apache-airflow`` wheel's metadata).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PINS_DIR = Path(__file__).resolve().parent / "airflow"
RECORD_FILE = PINS_DIR / "image_extras.json"

AIRFLOW = "apache-airflow"
AIRFLOW_BASES = frozenset({"apache-airflow", "apache-airflow-core"})
"""Distributions whose sub-extras are followed but which are not themselves what an extra adds."""


@dataclass(frozen=True)
class ImageExtras:
    """One version's entry of the record."""

    version: str
    extras: tuple[str, ...]
    exceptions: Mapping[str, str]
    distributions: Mapping[str, tuple[str, ...]]
    source: Mapping[str, Any]
    checked: str

    @property
    def installable(self) -> frozenset[str]:
        """The extras requirements.txt must request: the image's, minus the exceptions."""
        return frozenset(self.extras) - frozenset(self.exceptions)

    def expected_distributions(self) -> dict[str, tuple[str, ...]]:
        """Extra -> the distributions it installs, for every installable extra."""
        return {e: self.distributions[e] for e in sorted(self.installable)}


def load_record(path: Path = RECORD_FILE) -> dict[str, ImageExtras]:
    """Every version's entry (keys starting with ``_`` are comments)."""
    raw: dict[str, Any] = json.loads(path.read_text())
    return {
        version: ImageExtras(
            version=version,
            extras=tuple(entry["extras"]),
            exceptions=dict(entry["exceptions"]),
            distributions={k: tuple(v) for k, v in entry["distributions"].items()},
            source=dict(entry["source"]),
            checked=entry["checked"],
        )
        for version, entry in raw.items()
        if not version.startswith("_")
    }


def _requirement_lines(text: str) -> list[str]:
    """A requirements file's requirement lines (comments dropped, ``\\`` continuations joined)."""
    joined = re.sub(r"\\\n", "", text)
    lines = (re.sub(r"(^|\s)#.*$", "", line).strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def airflow_requirement(version: str, pins_dir: Path = PINS_DIR) -> Requirement:
    """The one ``apache-airflow`` requirement of ``version``'s requirements.txt."""
    path = pins_dir / version / "requirements.txt"
    found = [
        req
        for req in map(Requirement, _requirement_lines(path.read_text()))
        if canonicalize_name(req.name) == AIRFLOW
    ]
    if len(found) != 1:
        raise ValueError(f"{path}: {len(found)} apache-airflow requirements, expected one")
    return found[0]


def requested_extras(version: str, pins_dir: Path = PINS_DIR) -> list[str]:
    """The extras ``version``'s requirements.txt asks apache-airflow for, normalized."""
    return sorted(canonicalize_name(e) for e in airflow_requirement(version, pins_dir).extras)


def locked_versions(version: str, pins_dir: Path = PINS_DIR) -> dict[str, str]:
    """Distribution (normalized) -> the version ``version``'s constraints.txt pins."""
    pins: dict[str, str] = {}
    for line in _requirement_lines((pins_dir / version / "constraints.txt").read_text()):
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator == "==":
            pins[canonicalize_name(req.name)] = specs[0].version
    return pins


def extras_problems(
    version: str, record: Mapping[str, ImageExtras], pins_dir: Path = PINS_DIR
) -> list[str]:
    """What is wrong with ``version``'s pins against the record; empty when they match."""
    entry = record.get(version)
    if entry is None:
        return [f"{version}: no entry in {RECORD_FILE.name}: record the image's extras for it"]
    problems: list[str] = []
    requested = set(requested_extras(version, pins_dir))
    wanted = set(entry.installable)
    if missing := sorted(wanted - requested):
        problems.append(f"{version}: requirements.txt does not request the image's {missing}")
    if extra := sorted(requested - wanted):
        problems.append(f"{version}: requirements.txt requests {extra}, not the image's extras")
    if unknown := sorted(set(entry.exceptions) - set(entry.extras)):
        problems.append(f"{version}: exceptions {unknown} are not image extras")
    if unmapped := sorted(set(entry.extras) ^ set(entry.distributions)):
        problems.append(f"{version}: distributions must map exactly the extras: {unmapped}")
    locked = locked_versions(version, pins_dir)
    wanted_dists = {d for dists in entry.expected_distributions().values() for d in dists}
    unlocked = sorted(wanted_dists - set(locked))
    if unlocked:
        problems.append(f"{version}: constraints.txt pins none of {unlocked}")
    return problems


def extra_distributions(
    extra: str, requires: Mapping[str, list[str]], environment: Mapping[str, str]
) -> set[str]:
    """The distributions apache-airflow's ``extra`` installs, from installed metadata.

    ``requires`` maps each installed distribution (normalized) to its ``Requires-Dist`` lines,
    ``environment`` is the venv's marker environment. A requirement with extras of its own is
    followed one level (``apache-airflow-providers-amazon[aiobotocore]`` adds the provider and
    aiobotocore); apache-airflow and apache-airflow-core are only followed, never counted.
    """

    def applies(marker: Marker, wanted: str) -> bool:
        base = {**environment, "extra": ""}
        return marker.evaluate({**base, "extra": wanted}) and not marker.evaluate(base)

    def under(dist: str, wanted: str) -> list[Requirement]:
        reqs = [Requirement(line) for line in requires.get(dist, [])]
        return [r for r in reqs if r.marker is not None and applies(r.marker, wanted)]

    found: set[str] = set()
    for req in under(AIRFLOW, extra):
        name = canonicalize_name(req.name)
        if name not in AIRFLOW_BASES:
            found.add(name)
        for sub in req.extras:
            found.update(
                canonicalize_name(r.name)
                for r in under(name, canonicalize_name(sub))
                if canonicalize_name(r.name) not in AIRFLOW_BASES
            )
    return found


VENV_METADATA = """
import importlib.metadata as m, json
from packaging.markers import default_environment
from packaging.utils import canonicalize_name
dists = {}
for d in m.distributions():
    if d.metadata["Name"]:
        dists[canonicalize_name(d.metadata["Name"])] = {
            "version": d.version, "requires": d.requires or []}
print(json.dumps({"environment": default_environment(), "distributions": dists}))
"""
"""Run by the venv's Python: its marker environment and every installed distribution."""


@dataclass(frozen=True)
class VenvMetadata:
    """What a built venv has installed."""

    environment: dict[str, str]
    versions: dict[str, str]
    requires: dict[str, list[str]]


def venv_metadata(venv: Path) -> VenvMetadata:
    """Read ``venv``'s installed distributions with its own Python."""
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", VENV_METADATA],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    data = json.loads(out.stdout)
    dists: dict[str, dict[str, Any]] = data["distributions"]
    return VenvMetadata(
        environment=data["environment"],
        versions={name: d["version"] for name, d in dists.items()},
        requires={name: d["requires"] for name, d in dists.items()},
    )
