"""Everything else: secrets, keys, file system, queues, images, buckets, service discovery; then
every resource no rule priced is counted free or listed as not priced, with the reason."""

from __future__ import annotations

from collections.abc import Mapping

from .context import Context
from .template import display_name, ref

FREE_TYPES = frozenset(
    {
        "AWS::ApiGateway::Account",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Model",
        "AWS::ApiGateway::RequestValidator",
        "AWS::ApiGateway::Resource",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::CDK::Metadata",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::Route",
        "AWS::EC2::RouteTable",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::Subnet",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::VPC",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::ECS::Cluster",
        "AWS::ECS::ClusterCapacityProviderAssociations",
        "AWS::EFS::AccessPoint",
        "AWS::EFS::MountTarget",
        "AWS::ElasticLoadBalancingV2::Listener",
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "AWS::Events::Rule",
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::Lambda::Alias",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Lambda::Permission",
        "AWS::Lambda::Version",
        "AWS::Logs::ResourcePolicy",
        "AWS::RDS::DBClusterParameterGroup",
        "AWS::RDS::DBParameterGroup",
        "AWS::RDS::DBSubnetGroup",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::Scheduler::ScheduleGroup",
        "AWS::SQS::QueuePolicy",
        "AWS::SecretsManager::SecretTargetAttachment",
    }
)
"""Types with no charge of their own (what they serve is priced where it is billed)."""

_NOT_PRICED_REASONS: Mapping[str, str] = {
    "AWS::ApiGateway::RestApi": "billed per API call, no standing charge",
    "AWS::ApiGateway::Stage": "billed per API call, no standing charge",
    "AWS::SNS::Topic": "billed per notification (alarms only), no standing charge",
    "AWS::Scheduler::Schedule": "EventBridge Scheduler bills per invocation (14 million a month "
    "free); a schedule that runs a few times a day costs nothing",
    "AWS::DynamoDB::Table": "on-demand requests (the autoscaler's state, cents a month), no "
    "standing charge",
}


def price_codeartifact(ctx: Context) -> None:
    """CodeArtifact (the PyPI mirror): storage is billed per domain (an asset in several of its
    repositories is stored once), requests across its repositories; no standing charge."""
    domains = [lid for lid, _ in ctx.of_type("AWS::CodeArtifact::Domain")]
    repositories = [lid for lid, _ in ctx.of_type("AWS::CodeArtifact::Repository")]
    if not domains and not repositories:
        return
    ctx.add(
        f"CodeArtifact: {len(domains)} domain(s), storage",
        domains + repositories,
        ctx.usage.codeartifact_gb,
        "GB-month",
        "codeartifact.storage_gb_month",
        "storage",
        "usage codeartifact_gb",
    )
    ctx.add(
        f"CodeArtifact: {len(repositories)} repositories, requests",
        domains + repositories,
        ctx.usage.codeartifact_requests,
        "requests",
        ctx.prices["codeartifact.requests_10k"] / 10_000,
        "other",
        "usage codeartifact_requests; data transfer within the Region not priced",
    )


def price_rest(ctx: Context) -> None:
    """Secrets, keys, file systems, queues, repositories, buckets, service discovery; then
    each resource no rule took is counted free or listed as not priced."""
    secrets = [lid for lid, _ in ctx.of_type("AWS::SecretsManager::Secret")]
    if secrets:
        ctx.add(
            f"Secrets Manager: {len(secrets)} secrets",
            secrets,
            len(secrets),
            "secrets",
            "secrets.secret_month",
            "other",
            "API calls ($0.05 per 10,000) not priced",
        )
    keys = [lid for lid, _ in ctx.of_type("AWS::KMS::Key")]
    if keys:
        ctx.add(
            f"KMS: {len(keys)} customer managed keys",
            keys,
            len(keys),
            "keys",
            "kms.key_month",
            "other",
            "requests not priced",
        )
    for lid, resource in ctx.of_type("AWS::EFS::FileSystem"):
        props = resource.get("Properties") or {}
        label = display_name(lid, resource)
        ctx.add(
            f"{label}: storage",
            (lid,),
            ctx.usage.efs_gb,
            "GB-month",
            "efs.standard_gb_month",
            "storage",
            "usage efs_gb",
        )
        if props.get("ThroughputMode") == "elastic":
            ctx.add(
                f"{label}: Elastic Throughput reads",
                (lid,),
                ctx.usage.efs_read_gb,
                "GB",
                "efs.elastic_read_gb",
                "storage",
                "usage efs_read_gb",
            )
            ctx.add(
                f"{label}: Elastic Throughput writes",
                (lid,),
                ctx.usage.efs_write_gb,
                "GB",
                "efs.elastic_write_gb",
                "storage",
                "usage efs_write_gb",
            )
    queues = [lid for lid, _ in ctx.of_type("AWS::SQS::Queue")]
    if queues:
        ctx.add(
            f"SQS: {len(queues)} queue(s), requests",
            queues,
            ctx.usage.sqs_million_requests,
            "million requests",
            "sqs.million_requests",
            "other",
            "usage sqs_million_requests",
        )
    for lid, resource in ctx.of_type("AWS::ECR::Repository"):
        ctx.add(
            f"{display_name(lid, resource)}: image storage",
            (lid,),
            ctx.usage.ecr_gb,
            "GB-month",
            "ecr.gb_month",
            "storage",
            "usage ecr_gb",
        )
    buckets = [lid for lid, _ in ctx.of_type("AWS::S3::Bucket")]
    if buckets:
        ctx.add(
            f"S3: {len(buckets)} bucket(s), storage",
            buckets,
            ctx.usage.s3_gb,
            "GB-month",
            "s3.standard_gb_month",
            "storage",
            "usage s3_gb; requests not priced",
        )
    price_codeartifact(ctx)
    for lid, resource in ctx.of_type("AWS::ServiceDiscovery::PrivateDnsNamespace"):
        ctx.add(
            f"{display_name(lid, resource)}: Route 53 private hosted zone",
            (lid,),
            1,
            "hosted zones",
            "route53.hosted_zone_month",
            "network",
        )
    registered = 0.0
    registries: set[str] = set()
    for lid, (_td, count) in ctx.service_tasks().items():
        for registry in ctx.props(lid).get("ServiceRegistries") or []:
            target = ref(registry.get("RegistryArn"))
            if target:
                registries.add(target)
                registered += count
    discovery = [lid for lid, _ in ctx.of_type("AWS::ServiceDiscovery::Service")]
    if discovery:
        ctx.add(
            f"Cloud Map: {registered:g} registered task(s)",
            discovery,
            registered * ctx.usage.on_fraction,
            "instance-months",
            "cloudmap.instance_month",
            "network",
        )
    for lid, resource in ctx.resources.items():
        if lid in ctx.handled:
            continue
        kind = resource["Type"]
        if kind in _NOT_PRICED_REASONS:
            ctx.skip(lid, _NOT_PRICED_REASONS[kind])
        elif kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
            ctx.skip(
                lid, "a deployment-time custom resource: its function runs during deploys only"
            )
        elif kind == "AWS::SSM::Parameter":
            if (resource.get("Properties") or {}).get("Tier", "Standard") == "Standard":
                ctx.free[kind] += 1  # standard parameters are free
            else:
                ctx.skip(lid, "an advanced parameter: no price in the table")
        elif kind in FREE_TYPES:
            ctx.free[kind] += 1
        else:
            ctx.skip(lid, "no price rule for this resource type")
