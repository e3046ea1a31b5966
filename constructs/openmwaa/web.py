"""Web access: the load balancer in front of the api-server, private or public, with HTTPS."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3

from constructs import Construct

from .nag_acknowledgements import acknowledge
from .nag_reasons import (
    LOAD_BALANCER_DELETION,
    LOAD_BALANCER_LOGS_NEED_REGION,
    LOAD_BALANCER_TO_VPC,
    LOAD_BALANCER_WAF,
    LOAD_BALANCER_WITHOUT_TLS,
    REDIRECT_LISTENER,
)
from .props import WebserverAccessMode
from .runtime.contracts import API_SERVER, API_SERVER_PORT

CPU_TARGET_PERCENT = 70
REQUESTS_PER_TARGET = 1000


class WebAccess(Construct):
    """An Application Load Balancer in front of the api-server (the Airflow UI and REST API).

    `PRIVATE_ONLY` (MWAA's default): internal, in the private subnets, reachable from
    `allowed_cidrs` (default: the VPC's CIDR). `PUBLIC_ONLY`: internet-facing, in the public
    subnets, reachable from `allowed_cidrs` (required: say who). With `domain_name` and
    `hosted_zone` it issues an ACM certificate (DNS-validated), serves HTTPS only (HTTP
    redirects) and adds a Route 53 alias, the custom-domain answer of the MWAA FAQ; a
    `certificate` you give is used as is. Without TLS it serves HTTP, which only
    `PRIVATE_ONLY` allows. Access logs go to the environment's access-log bucket when the
    stack's region is known at synth (the log-delivery principal differs per region, so a
    region-agnostic stack cannot grant it). The
    api-server scales between `min_webservers` and `max_webservers` on CPU above 70 % or
    more than 1,000 requests per task per minute, as MWAA scales web servers on load.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        service: ecs.FargateService,
        access_mode: WebserverAccessMode,
        access_log_bucket: s3.IBucket,
        min_webservers: int,
        max_webservers: int,
        health_check_path: str,
        allowed_cidrs: Sequence[str] | None = None,
        domain_name: str | None = None,
        hosted_zone: route53.IHostedZone | None = None,
        certificate: acm.ICertificate | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        public = access_mode is WebserverAccessMode.PUBLIC_ONLY
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Airflow web access: the load balancer in front of the api-server",
            allow_all_outbound=False,
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=public,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
            if public
            else vpc_subnets,
            security_group=self.security_group,
            drop_invalid_header_fields=True,
        )
        acknowledge(self.load_balancer, [LOAD_BALANCER_DELETION, LOAD_BALANCER_WAF])
        self.access_logs_enabled = not Token.is_unresolved(Stack.of(self).region)
        if self.access_logs_enabled:
            self.load_balancer.log_access_logs(access_log_bucket, prefix="load-balancer")
        else:
            acknowledge(self.load_balancer, LOAD_BALANCER_LOGS_NEED_REGION)

        if certificate is None and domain_name is not None and hosted_zone is not None:
            certificate = acm.Certificate(
                self,
                "Certificate",
                domain_name=domain_name,
                validation=acm.CertificateValidation.from_dns(hosted_zone),
            )
        self.certificate = certificate

        target = service.load_balancer_target(
            container_name=API_SERVER, container_port=API_SERVER_PORT
        )
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "ApiServer",
            vpc=vpc,
            port=API_SERVER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            targets=[target],
            deregistration_delay=Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                path=health_check_path,
                healthy_http_codes="200",
                interval=Duration.seconds(30),
                timeout=Duration.seconds(10),
                healthy_threshold_count=2,
                unhealthy_threshold_count=5,
            ),
        )
        if certificate is not None:
            self.listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_target_groups=[self.target_group],
                open=False,
            )
            self.redirect_listener: elbv2.ApplicationListener | None = (
                self.load_balancer.add_listener(
                    "HttpRedirect",
                    port=80,
                    protocol=elbv2.ApplicationProtocol.HTTP,
                    open=False,
                    default_action=elbv2.ListenerAction.redirect(
                        protocol="HTTPS", port="443", permanent=True
                    ),
                )
            )
            acknowledge(self.redirect_listener, [REDIRECT_LISTENER])
            port = 443
        else:
            self.redirect_listener = None
            self.listener = self.load_balancer.add_listener(
                "Http",
                port=80,
                protocol=elbv2.ApplicationProtocol.HTTP,
                default_target_groups=[self.target_group],
                open=False,
            )
            acknowledge(self.listener, LOAD_BALANCER_WITHOUT_TLS)
            port = 80

        self.default_peers_are_vpc = allowed_cidrs is None and not public
        if self.default_peers_are_vpc:
            acknowledge(self.security_group, LOAD_BALANCER_TO_VPC)
        peers = (
            list(allowed_cidrs)
            if allowed_cidrs is not None
            else ([vpc.vpc_cidr_block] if self.default_peers_are_vpc else [])
        )
        for cidr in peers:
            peer = ec2.Peer.ipv6(cidr) if ":" in cidr else ec2.Peer.ipv4(cidr)
            self.security_group.add_ingress_rule(peer, ec2.Port.tcp(port), "Airflow UI and API")
            if certificate is not None:
                self.security_group.add_ingress_rule(peer, ec2.Port.tcp(80), "Redirect to HTTPS")
        self.load_balancer.connections.allow_to(
            service, ec2.Port.tcp(API_SERVER_PORT), "Load balancer to the api-server"
        )

        self.alias: route53.ARecord | None = None
        """The Route 53 alias of `domain_name`; None without `hosted_zone` (no record made)."""
        if domain_name is not None and hosted_zone is not None:
            self.alias = route53.ARecord(
                self,
                "Alias",
                zone=hosted_zone,
                record_name=domain_name,
                target=route53.RecordTarget.from_alias(
                    route53_targets.LoadBalancerTarget(self.load_balancer)
                ),
            )

        if max_webservers > min_webservers:
            scaling = service.auto_scale_task_count(
                min_capacity=min_webservers, max_capacity=max_webservers
            )
            scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=CPU_TARGET_PERCENT)
            scaling.scale_on_request_count(
                "Requests",
                requests_per_target=REQUESTS_PER_TARGET,
                target_group=self.target_group,
            )

        scheme = "https" if certificate is not None else "http"
        host = domain_name if domain_name is not None else self.load_balancer.load_balancer_dns_name
        self.url = f"{scheme}://{host}"
        """The environment's URL: `https://<domain_name>`, or `http://<load balancer DNS name>`
        without TLS. Every Airflow container gets it as `[api] base_url`."""
