"""Code that runs inside the Airflow containers (standard library only).

It reaches a container as a zip application in the ``OPENMWAA_RUNTIME`` environment variable
(see :mod:`openmwaa.runtime_bundle` and docs/runtime.md), where this package is named
``openmwaa_runtime``: modules here import each other relatively and never import ``openmwaa``
or ``aws_cdk``.

The construct reads :data:`PROTECTED_OPTIONS` and :func:`is_protected_option` to reject user
overrides of the options the runtime owns.
"""

from .config import PROTECTED_OPTIONS, is_protected_option

__all__ = ["PROTECTED_OPTIONS", "is_protected_option"]
