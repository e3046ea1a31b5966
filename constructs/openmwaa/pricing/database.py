"""The metadata database: Aurora Serverless v2 capacity while on and while paused, storage and
I/O."""

from __future__ import annotations

from .context import Context
from .model import NotPriced
from .template import display_name, number, ref


def price_databases(ctx: Context) -> None:
    """Each Aurora Serverless v2 cluster: ACU-hours while on and while paused, storage, I/O."""
    instances = ctx.of_type("AWS::RDS::DBInstance")
    for cluster_id, cluster in ctx.of_type("AWS::RDS::DBCluster"):
        props = cluster.get("Properties") or {}
        scaling = props.get("ServerlessV2ScalingConfiguration")
        members = [
            lid
            for lid, r in instances
            if ref((r.get("Properties") or {}).get("DBClusterIdentifier")) == cluster_id
        ]
        serverless = [
            lid for lid in members if ctx.props(lid).get("DBInstanceClass") == "db.serverless"
        ]
        for lid in members:
            if lid not in serverless:
                instance_class = ctx.props(lid).get("DBInstanceClass")
                ctx.skip(lid, f"provisioned instance class {instance_class}: no price in the table")
        minimum = number((scaling or {}).get("MinCapacity"))
        if not scaling or minimum is None or not serverless:
            reason = "not an Aurora Serverless v2 cluster with a literal MinCapacity"
            ctx.skip(cluster_id, reason)
            for lid in serverless:
                ctx.skip(lid, reason)
            continue
        label = display_name(cluster_id, cluster)
        count = len(serverless)
        for lid in serverless:
            if (number(ctx.props(lid).get("MonitoringInterval")) or 0) > 0:
                ctx.not_priced.append(
                    NotPriced(
                        lid,
                        "AWS::RDS::DBInstance",
                        "Enhanced Monitoring sends its OS metrics to CloudWatch Logs "
                        "(RDSOSMetrics): billed as log ingestion, not in log_gb",
                    )
                )
        ids = (cluster_id, *serverless)
        acu = ctx.usage.average_acu
        if acu is None:
            acu = max(minimum, 0.5)
        ctx.add(
            f"{label}: {count} instance(s) x {acu:g} ACU while on",
            ids,
            count * acu * ctx.usage.hours_on,
            "ACU-hours",
            "aurora.acu_hour",
            "database",
            f"MinCapacity {minimum:g}, MaxCapacity {scaling.get('MaxCapacity')}",
        )
        if ctx.usage.paused_hours > 0:
            paused_acu = minimum  # 0 auto-pauses; above 0 the cluster cannot go lower
            ctx.add(
                f"{label}: while paused, {paused_acu:g} ACU"
                + (" (auto-paused)" if paused_acu == 0 else " (its MinCapacity)"),
                ids,
                count * paused_acu * ctx.usage.paused_hours,
                "ACU-hours",
                "aurora.acu_hour",
                "database",
            )
        ctx.add(
            f"{label}: storage",
            ids,
            ctx.usage.db_storage_gb,
            "GB-month",
            "aurora.storage_gb_month",
            "database",
            "usage db_storage_gb",
        )
        ctx.add(
            f"{label}: I/O",
            ids,
            ctx.usage.db_io_millions,
            "million requests",
            "aurora.io_million",
            "database",
            "usage db_io_millions; backup storage up to the cluster's size is free",
        )
