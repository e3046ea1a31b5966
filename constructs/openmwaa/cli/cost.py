"""``openmwaa cost``: what an environment costs a month, side by side with Amazon MWAA.

Prices synthesized CloudFormation templates (default: ``cdk.out/*.template.json``, which
``make synth`` writes) resource by resource at the us-east-1 list prices of
``openmwaa.pricing.prices``, with the usage the template cannot say stated (hours on, GB of
logs, database capacity...). Without usage options it prints three scenarios next to MWAA for
the same class: (a) always on, (b) one more worker-hour on Fargate Spot, (c) a development
environment paused 12 hours a day and at weekends. A template with interface VPC endpoints (a
private network) also gets the endpoints against NAT gateways: each side's fixed cost a month,
its rate per GB, and the traffic at which the endpoints become the cheaper. ``--brief`` prints
scenario (a) and that comparison alone. The last line is ``openmwaa/MWAA monthly: <ratio>``
(scenario (a), or the given usage).

docs/cost.md explains every rule, price and assumption. Exit status: 0, or 2 with one line
on stderr for a usage error (no template, not a template, no openmwaa environment in it).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from ..pricing import prices as price_table
from ..pricing import scenarios as scenario_rules
from ..pricing.endpoints import EndpointComparison, NatOption, compare_endpoints
from ..pricing.estimate import (
    HOURS_PER_MONTH,
    Estimate,
    LineItem,
    TemplateError,
    Usage,
    environments,
    estimate,
)
from ..pricing.scenarios import Comparison
from ..runtime.contracts import ENVIRONMENT_METADATA_KEY
from .common import UsageError

DEFAULT_TEMPLATES = "cdk.out/*.template.json"

_USAGE_OPTIONS: tuple[tuple[str, str, type, str], ...] = (
    ("--hours-on", "hours_on", float, "hours a month the services and database run (730)"),
    ("--worker-hours", "worker_hours", float, "worker task-hours a month above the minimum"),
    ("--acu", "average_acu", float, "average Aurora ACU while on (MinCapacity, at least 0.5)"),
    ("--db-storage-gb", "db_storage_gb", float, "metadata database storage, GB (10)"),
    ("--db-io-millions", "db_io_millions", float, "Aurora I/O, millions a month (20)"),
    ("--log-gb", "log_gb", float, "CloudWatch Logs ingestion, GB a month (5)"),
    ("--flow-log-gb", "flow_log_gb", float, "VPC flow logs, GB a month (2)"),
    ("--nat-gb", "nat_gb", float, "data through the NAT gateway, GB a month (10)"),
    ("--endpoint-gb", "endpoint_gb", float, "data through each interface endpoint, GB a month (1)"),
    ("--alb-lcu", "alb_lcu", float, "average load balancer capacity units (0.2)"),
    ("--dags", "dags", int, "DAGs, for metrics published per DAG (10)"),
)


def register(subparsers: Any) -> None:
    """Add ``cost`` to the ``openmwaa`` parser."""
    parser = subparsers.add_parser(
        "cost",
        help="what an environment costs a month, next to Amazon MWAA",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "templates",
        nargs="*",
        metavar="TEMPLATE",
        help=f"synthesized template(s) (default: {DEFAULT_TEMPLATES})",
    )
    for flag, dest, kind, text in _USAGE_OPTIONS:
        parser.add_argument(flag, dest=dest, type=kind, default=None, metavar="N", help=text)
    parser.add_argument(
        "--spot-discount",
        type=float,
        default=None,
        metavar="SHARE",
        help="price Fargate Spot at this share off on-demand (0-1; the table states "
        f"{price_table.SPOT_DISCOUNT})",
    )
    parser.add_argument(
        "--scenarios",
        action="store_true",
        help="print the three scenarios (the default when no usage option is given)",
    )
    parser.add_argument(
        "--brief",
        action="store_true",
        help="scenario (a) and the endpoints against NAT comparison only",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document instead of text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``cost`` for parsed arguments; the exit status."""
    values = {dest: getattr(args, dest) for _f, dest, _k, _t in _USAGE_OPTIONS}
    given = {name: value for name, value in values.items() if value is not None}
    return report(
        args.templates,
        usage=given,
        show_scenarios=args.scenarios or not given,
        spot_discount=args.spot_discount,
        as_json=args.json,
        brief=args.brief,
        out=out,
        err=err,
    )


def report(
    templates: Sequence[str],
    *,
    usage: dict[str, Any] | None = None,
    show_scenarios: bool = True,
    spot_discount: float | None = None,
    as_json: bool = False,
    brief: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Price each template and print the report to ``out``; the exit status (0 or 2).
    ``brief``: scenario (a) (or the given usage) and the endpoints against NAT only."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        table = price_table.TABLE
        try:
            if spot_discount is not None:
                table = price_table.with_spot_discount(table, spot_discount)
            base = Usage(**(usage or {}))
        except ValueError as error:
            raise UsageError(str(error)) from None
        loaded = _load(templates)
        documents = [
            _price(path, template, base, show_scenarios and not brief, table, brief)
            for path, template in loaded
        ]
    except (UsageError, TemplateError) as error:
        print(f"openmwaa cost: error: {error}", file=err)
        return 2
    if as_json:
        print(json.dumps([doc["json"] for doc in documents], indent=2), file=out)
    else:
        print("\n\n".join(doc["text"] for doc in documents), file=out)
    return 0


def _load(templates: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """The templates to price: the named ones (each must hold an openmwaa environment) or
    those under cdk.out/ that do."""
    explicit = bool(templates)
    paths = list(templates) or sorted(glob.glob(DEFAULT_TEMPLATES))
    if not paths:
        raise UsageError(f"no template: name one, or run `make synth` to write {DEFAULT_TEMPLATES}")
    loaded = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"no such template: {name}")
        try:
            template = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise UsageError(f"{name} is not a CloudFormation template: {error}") from None
        if not isinstance(template, dict):
            raise UsageError(f"{name} is not a CloudFormation template: not a JSON object")
        try:
            envs = environments(template)
        except TemplateError as error:
            raise UsageError(f"{name}: {error}") from None
        if not envs:
            if explicit:
                raise UsageError(
                    f"{name} has no openmwaa environment: no "
                    f"{ENVIRONMENT_METADATA_KEY} metadata (synthesize an app "
                    "with an AirflowEnvironment)"
                )
            continue
        loaded.append((name, template))
    if not loaded:
        raise UsageError(f"no template under {DEFAULT_TEMPLATES} holds an openmwaa environment")
    return loaded


# ---------------------------------------------------------------------------------------------
# One template


def _price(
    path: str,
    template: dict[str, Any],
    base: Usage,
    show_scenarios: bool,
    table: price_table.PriceTable,
    brief: bool = False,
) -> dict[str, Any]:
    lines = [f"openmwaa cost: {path}"]
    envs = environments(template)
    for env in envs:
        lines.append(
            f"Environment {env.name}: {env.environment_class}, Airflow {env.airflow_version}, "
            f"{env.schedulers} schedulers, {env.min_webservers}-{env.max_webservers} web "
            f"servers, {env.min_workers}-{env.max_workers} workers"
        )
    lines.append(
        f"Prices: {table.region} list prices read {table.read_on}, each with its source in "
        f"docs/cost.md. {table.spot_note}"
    )
    document: dict[str, Any] = {
        "template": path,
        "environments": [asdict(env) for env in envs],
        "region": table.region,
        "prices_read_on": table.read_on,
    }
    network = compare_endpoints(template, table)
    document["endpoints_vs_nat"] = _network_json(network)
    network_lines = _network_lines(network) if network else []
    try:
        if show_scenarios:
            comparisons = [c for c in scenario_rules.scenarios(template, table, base) if c]
        elif brief and not given_usage(base):
            comparisons = [scenario_rules.scenarios(template, table, base)[0]]
        else:
            comparisons = [scenario_rules.compare(template, base, table)]
    except ValueError as error:
        # No MWAA price for the class: the estimate alone.
        alone = estimate(template, base, table)
        lines += ["", f"{alone.usage.hours_on:g} hours on:"]
        lines += _estimate_lines(alone, None)
        lines += ["", f"openmwaa monthly: ${alone.total:,.2f}", f"(no MWAA comparison: {error})"]
        lines += network_lines
        lines.append("openmwaa/MWAA monthly: n/a")
        document["estimate"] = _estimate_json(alone)
        document["ratio"] = None
        return {"text": "\n".join(lines), "json": document}
    headline = comparisons[0]
    if brief:
        lines += ["", f"({headline.key}) {headline.title}", *_brief_lines(headline)]
    else:
        shown: Estimate | None = None
        for comparison in comparisons:
            lines += ["", f"({comparison.key}) {comparison.title}"]
            lines += _comparison_lines(comparison, shown)
            if comparison.estimate is not None and shown is None:
                shown = comparison.estimate
        lines += ["", "Summary", *_summary_lines(comparisons)]
    lines += network_lines
    lines.append(f"openmwaa/MWAA monthly: {headline.ratio:.2f}")
    document["comparisons"] = [_comparison_json(c) for c in comparisons]
    document["ratio"] = round(headline.ratio, 2)
    return {"text": "\n".join(_wrap(lines)), "json": document}


def given_usage(usage: Usage) -> bool:
    """Whether ``usage`` sets the hours on or the extra worker-hours (scenario (a) sets both)."""
    return usage.hours_on != HOURS_PER_MONTH or usage.worker_hours != 0


def _brief_lines(comparison: Comparison) -> list[str]:
    lines: list[str] = []
    if comparison.estimate is not None:
        categories = ", ".join(
            f"{name} {_money(v)}" for name, v in comparison.estimate.by_category().items()
        )
        lines.append(f"  by category: {categories}")
    if comparison.mwaa_estimate is not None:
        lines += [_item_line(item) for item in comparison.mwaa_estimate.items]
    lines.append(
        f"  openmwaa {_money(comparison.ours)} a month, MWAA {_money(comparison.mwaa)} a month: "
        f"ratio {comparison.ratio:.2f}{_goal(comparison)}"
    )
    return lines


def _network_lines(network: EndpointComparison) -> list[str]:
    """The endpoints against NAT gateways, as ``make cost`` prints them."""
    services = ", ".join(
        service if zones == network.interface[0][1] else f"{service} ({zones} AZs)"
        for service, zones in network.interface
    )
    zones = network.interface[0][1]
    lines = [
        "",
        "Endpoints vs NAT gateway: the path to AWS services, a month (a GB here is traffic to "
        "services other than S3 and DynamoDB, whose gateway endpoints are free either way)",
        f"  {len(network.interface)} interface endpoints in {zones} AZ(s) ({services}): "
        f"{_quantity(network.endpoint_az_hours)} endpoint-AZ-hours x "
        f"{_rate(network.endpoints_fixed / network.endpoint_az_hours)} = "
        f"{_money(network.endpoints_fixed)} a month, plus {_rate(network.endpoint_gb_rate)} a GB",
    ]
    if network.gateway:
        lines.append(f"  gateway endpoints ({', '.join(network.gateway)}): free")
    if network.not_priced:
        lines.append("  not counted (subnets not a literal list): " + ", ".join(network.not_priced))
    for option in network.options:
        what = (
            "1 NAT gateway and its public IPv4 address"
            if option.gateways == 1
            else f"{option.gateways} NAT gateways and their public IPv4 addresses"
        )
        lines.append(
            f"  {what} ({option.label}): {option.gateways} x 730 h x ("
            f"{_rate(network.nat_hour)} + {_rate(network.ipv4_hour)}) = "
            f"{_money(option.fixed)} a month, plus {_rate(network.nat_gb_rate)} a GB"
        )
        lines.append(f"    {_verdict(network, option)}")
    return lines


def _verdict(network: EndpointComparison, option: NatOption) -> str:
    if option.break_even_gb is None:
        return "NAT is cheaper at any traffic"
    if option.break_even_gb == 0:
        return "the endpoints are cheaper at any traffic"
    gb = f"{option.break_even_gb:,.0f}"
    return (
        f"NAT is cheaper at any traffic below {gb} GB a month; the endpoints above it "
        f"({_money(network.endpoints_fixed - option.fixed)} more a month fixed / "
        f"{_rate(network.nat_gb_rate - network.endpoint_gb_rate)} saved a GB)"
    )


def _network_json(network: EndpointComparison | None) -> dict[str, Any] | None:
    if network is None:
        return None
    return {
        "interface": [{"service": s, "zones": z} for s, z in network.interface],
        "gateway": list(network.gateway),
        "endpoint_az_hours": network.endpoint_az_hours,
        "endpoints_monthly": round(network.endpoints_fixed, 4),
        "endpoint_gb_rate": network.endpoint_gb_rate,
        "nat_gb_rate": network.nat_gb_rate,
        "nat": [
            {
                "gateways": option.gateways,
                "label": option.label,
                "monthly": round(option.fixed, 4),
                "break_even_gb": (
                    None if option.break_even_gb is None else round(option.break_even_gb, 2)
                ),
            }
            for option in network.options
        ],
        "not_priced": list(network.not_priced),
    }


def _wrap(lines: Sequence[str], width: int = 100) -> list[str]:
    """Long prose lines wrapped, indented as they start; table rows left as they are."""
    wrapped: list[str] = []
    for line in lines:
        if len(line) <= width or (line.startswith("    ") and "  " in line.strip()):
            wrapped.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip()))
        wrapped += textwrap.wrap(
            line, width, subsequent_indent=indent + "  ", break_on_hyphens=False
        ) or [line]
    return wrapped


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _hourly(value: float) -> str:
    return f"${value:.4f}"


def _rate(value: float) -> str:
    text = f"{value:.10f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


def _quantity(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def _item_line(item: LineItem) -> str:
    name = item.name if len(item.name) <= 72 else item.name[:71] + "…"
    return (
        f"    {name:<72} {_quantity(item.quantity):>10} {item.unit:<18} "
        f"{_rate(item.unit_price):>12} {_money(item.monthly):>10}"
    )


def _estimate_lines(shown: Estimate, previous: Estimate | None) -> list[str]:
    usage = shown.usage
    stated = ", ".join(
        f"{name} {value:g}" if value is not None else f"{name} (MinCapacity, at least 0.5)"
        for name, value in asdict(usage).items()
    )
    lines = [f"  usage: {stated}"]
    header = f"    {'item':<72} {'quantity':>10} {'unit':<18} {'unit price':>12} {'monthly':>10}"
    lines.append(header)
    if previous is None:
        lines += [_item_line(item) for item in shown.items]
        reasons: dict[str, list[str]] = {}
        for skipped in shown.not_priced:
            reasons.setdefault(skipped.reason, []).append(skipped.resource)
        for reason, ids in reasons.items():
            lines.append(f"    not priced ({reason}): {', '.join(ids)}")
        if shown.free:
            free = ", ".join(f"{count} {kind}" for kind, count in shown.free)
            lines.append(f"    free (no charge of their own): {free}")
    else:
        before = {(item.name, round(item.monthly, 6)) for item in previous.items}
        changed = [
            item for item in shown.items if (item.name, round(item.monthly, 6)) not in before
        ]
        lines += [_item_line(item) for item in changed]
        lines.append(f"    (the other {len(shown.items) - len(changed)} items as in (a))")
    categories = ", ".join(f"{name} {_money(v)}" for name, v in shown.by_category().items())
    lines.append(f"  by category: {categories}")
    return lines


def _comparison_lines(comparison: Comparison, previous: Estimate | None) -> list[str]:
    lines: list[str] = []
    if comparison.estimate is not None:
        lines += _estimate_lines(comparison.estimate, previous)
    lines += [f"  {detail}" for detail in comparison.details]
    if comparison.mwaa_estimate is not None:
        for item in comparison.mwaa_estimate.items:
            lines.append(_item_line(item))
    hourly = comparison.key == "b"
    fmt = _hourly if hourly else _money
    per = "an hour" if hourly else "a month"
    lines.append(
        f"  openmwaa {fmt(comparison.ours)} {per}, MWAA {fmt(comparison.mwaa)} {per}: "
        f"ratio {comparison.ratio:.2f}{_goal(comparison)}"
    )
    return lines


def _goal(comparison: Comparison) -> str:
    if comparison.goal is None:
        return ""
    return f", goal <= {comparison.goal:.2f}: {'met' if comparison.met else 'not met'}"


def _summary_lines(comparisons: Sequence[Comparison]) -> list[str]:
    names = {
        "a": "(a) always on",
        "b": "(b) one more worker-hour, Spot",
        "c": "(c) development, paused",
    }
    lines = [f"  {'scenario':<34} {'openmwaa':>12} {'MWAA':>12} {'ratio':>6}  goal"]
    for c in comparisons:
        fmt = _hourly if c.key == "b" else _money
        goal = "" if c.goal is None else f"<= {c.goal:.2f} {'met' if c.met else 'not met'}"
        lines.append(
            f"  {names.get(c.key, 'your usage'):<34} {fmt(c.ours):>12} {fmt(c.mwaa):>12} "
            f"{c.ratio:>6.2f}  {goal}"
        )
    return lines


def _estimate_json(shown: Estimate) -> dict[str, Any]:
    return {
        "usage": asdict(shown.usage),
        "total": round(shown.total, 2),
        "items": [
            {
                "name": item.name,
                "resources": list(item.resources),
                "quantity": item.quantity,
                "unit": item.unit,
                "unit_price": item.unit_price,
                "monthly": round(item.monthly, 4),
                "category": item.category,
                "note": item.note,
            }
            for item in shown.items
        ],
        "not_priced": [asdict(skipped) for skipped in shown.not_priced],
        "free": dict(shown.free),
    }


def _comparison_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "key": comparison.key,
        "title": comparison.title,
        "openmwaa": comparison.ours,
        "mwaa": comparison.mwaa,
        "ratio": round(comparison.ratio, 4),
        "goal": comparison.goal,
        "met": comparison.met,
        "details": list(comparison.details),
        "estimate": _estimate_json(comparison.estimate) if comparison.estimate else None,
        "mwaa_items": [
            {
                "name": i.name,
                "quantity": i.quantity,
                "unit_price": i.unit_price,
                "monthly": round(i.monthly, 4),
            }
            for i in (comparison.mwaa_estimate.items if comparison.mwaa_estimate else ())
        ],
    }
