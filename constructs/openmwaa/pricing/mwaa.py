"""Amazon MWAA's price, from the same table: the environment for every hour (it cannot pause),
extra schedulers and web servers, extra worker-hours, the meta database's storage."""

from __future__ import annotations

from .model import HOURS_PER_MONTH, LineItem, MwaaEstimate
from .prices import TABLE, PriceTable


def mwaa_monthly(
    environment_class: str,
    hours: float = HOURS_PER_MONTH,
    extra_worker_hours: float = 0.0,
    extra_schedulers: int = 0,
    extra_webservers: int = 0,
    db_storage_gb: float = 0.0,
    prices: PriceTable = TABLE,
) -> MwaaEstimate:
    """Amazon MWAA's price a month for a class: the environment for ``hours`` (MWAA cannot
    pause: 730), the extra schedulers and web servers for as long, the extra worker-hours and
    the meta database's storage. ValueError when the table has no price for the class."""
    row = prices.mwaa.get(environment_class)
    if row is None:
        raise ValueError(
            f"unknown MWAA environment class {environment_class!r}; the table has "
            + ", ".join(prices.mwaa)
        )
    if (
        row.environment_hour is None
        or row.worker_hour is None
        or row.scheduler_hour is None
        or row.webserver_hour is None
    ):
        raise ValueError(
            f"the price table has no verified MWAA price for {environment_class} "
            f"(read {prices.read_on})"
        )
    name = f"MWAA {environment_class}"
    items = [
        LineItem(
            f"{name}: environment ({row.included_schedulers} schedulers, "
            f"{row.included_webservers} web servers, {row.included_workers} worker)",
            (),
            hours,
            "hours",
            row.environment_hour,
            "mwaa",
        ),
    ]
    if extra_schedulers:
        items.append(
            LineItem(
                f"{name}: {extra_schedulers} extra scheduler(s)",
                (),
                extra_schedulers * hours,
                "scheduler-hours",
                row.scheduler_hour,
                "mwaa",
            )
        )
    if extra_webservers:
        items.append(
            LineItem(
                f"{name}: {extra_webservers} extra web server(s)",
                (),
                extra_webservers * hours,
                "web server-hours",
                row.webserver_hour,
                "mwaa",
            )
        )
    if extra_worker_hours:
        items.append(
            LineItem(
                f"{name}: extra worker-hours",
                (),
                extra_worker_hours,
                "worker-hours",
                row.worker_hour,
                "mwaa",
            )
        )
    if db_storage_gb:
        items.append(
            LineItem(
                f"{name}: meta database storage",
                (),
                db_storage_gb,
                "GB-month",
                prices["mwaa.metadata_gb_month"],
                "mwaa",
            )
        )
    return MwaaEstimate(environment_class, tuple(items))
