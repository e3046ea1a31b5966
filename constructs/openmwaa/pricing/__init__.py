"""What an environment costs a month, priced from its synthesized CloudFormation template.

Three modules, standard library only (the ``openmwaa cost`` console command loads them without
the AWS CDK):

- :mod:`.prices`: the dated us-east-1 price table, each price with its source;
- :mod:`.estimate`: the pure core, ``estimate(template, usage, prices)`` into line items, and
  Amazon MWAA's price for the same class (``mwaa_monthly``);
- :mod:`.scenarios`: the three comparisons ``make cost`` prints.

docs/cost.md explains every rule and assumption.
"""

from __future__ import annotations

from .estimate import (
    HOURS_PER_MONTH,
    EnvironmentInfo,
    Estimate,
    LineItem,
    MwaaEstimate,
    NotPriced,
    TemplateError,
    Usage,
    environments,
    estimate,
    mwaa_monthly,
)
from .prices import TABLE, MwaaClassPrice, Price, PriceTable

__all__ = [
    "HOURS_PER_MONTH",
    "TABLE",
    "EnvironmentInfo",
    "Estimate",
    "LineItem",
    "MwaaClassPrice",
    "MwaaEstimate",
    "NotPriced",
    "Price",
    "PriceTable",
    "TemplateError",
    "Usage",
    "environments",
    "estimate",
    "mwaa_monthly",
]
