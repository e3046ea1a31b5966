"""A helper module beside the DAGs, imported as ``from mwaa_compat_lib.helpers import ...``."""

from __future__ import annotations

MARKER = "MWAA_COMPAT_HELPERS"


def shout(name: str) -> str:
    """``name`` trimmed and upper-cased, with the module's marker."""
    return f"{MARKER} {name.strip().upper()}"
