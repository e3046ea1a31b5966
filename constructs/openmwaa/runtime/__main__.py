"""``python -m openmwaa_runtime`` (or ``python -m openmwaa.runtime``): run the bootstrap."""

from .bootstrap import main

raise SystemExit(main())
