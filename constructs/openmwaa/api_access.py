"""API access for machines: IAM callers get Airflow API tokens or call the REST API as a role.

Like Amazon MWAA's ``CreateCliToken`` and ``InvokeRestApi``: a regional API Gateway REST API with
AWS_IAM authorization on every method, in front of the API access Lambda
(``lambdas/api_access``), which signs in to Airflow as the role's machine user.
"""

from __future__ import annotations

import dataclasses
import re

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm

from constructs import Construct

from .bundled_function import FunctionPlacement, bundled_function
from .nag_acknowledgements import acknowledge
from .nag_reasons import API_ACCESS_FUNCTION, API_ACCESS_REST_API, API_ACCESS_STAGE
from .runtime.contracts import (
    AIRFLOW_ROLES,
    AIRFLOW_URL_VARIABLE,
    AIRFLOW_VERSION_VARIABLE,
    ENVIRONMENT_NAME_VARIABLE,
    MACHINE_KEY_SECRET_VARIABLE,
)

STAGE_NAME = "v1"
"""The API's one stage: its invoke URL is ``https://<api id>.execute-api.<region>.../v1``."""
PARAMETER_NAME_FORMAT = "/openmwaa/{}/api-access"
"""The SSM parameter the ``openmwaa`` CLI looks the API up in, by environment name."""
ROUTES = ("token", "invoke")
"""``POST /token/{role}`` and ``POST /invoke/{role}``."""
FUNCTION_TIMEOUT = Duration.seconds(30)
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")

INVOKE_BODY_SCHEMA = apigateway.JsonSchema(
    schema=apigateway.JsonSchemaVersion.DRAFT4,
    title="InvokeRequest",
    type=apigateway.JsonSchemaType.OBJECT,
    required=["method", "path"],
    additional_properties=False,
    properties={
        "method": apigateway.JsonSchema(
            type=apigateway.JsonSchemaType.STRING,
            enum=["GET", "POST", "PATCH", "PUT", "DELETE"],
        ),
        "path": apigateway.JsonSchema(type=apigateway.JsonSchemaType.STRING, pattern="^/api/"),
        "query": apigateway.JsonSchema(type=apigateway.JsonSchemaType.OBJECT),
        "body": apigateway.JsonSchema(),
    },
)
"""API Gateway checks ``/invoke``'s body before the Lambda runs (the Lambda checks it again)."""


class ApiAccess(Construct):
    """IAM-authenticated access to an environment's Airflow REST API, for machines.

    Routes (regional REST API, stage ``v1``, AWS_IAM authorization on every method, so every
    request is SigV4-signed by an AWS principal):

    - ``POST /token/{role}``: on Airflow 3, a short-lived Airflow API token (JWT) of the
      role's machine user, ``{"token", "role", "expires_in"}``; it lives ``[api_auth]
      jwt_cli_expiration_time`` (Airflow's default: 3600 s). Airflow 2 has no API tokens (400).
    - ``POST /invoke/{role}`` with ``{"method", "path", "query"?, "body"?}``: one REST API
      call made as that role, answered ``{"status", "headers", "body"}`` (MWAA's
      InvokeRestApi).

    Who may use which role is IAM's decision: :meth:`grant_airflow_role` grants
    ``execute-api:Invoke`` on exactly the two routes of one role (MWAA:
    ``airflow:CreateWebLoginToken`` on ``role/<env>/<Role>``). A caller without it gets API
    Gateway's 403.

    The SSM String parameter ``/openmwaa/<environment_name>/api-access`` holds
    ``{"url", "airflow_version", "region"}``, where the ``openmwaa`` CLI finds the API.

    :param environment_name: The environment's name (letters, digits, ``_ . -``): names the
        parameter.
    :param placement: Where the function runs (the environment's private subnets); it gets
        its own security group, which may reach only the load balancer besides AWS's APIs.
    :param airflow_url: The environment's URL as the function calls it (``http(s)://...``).
    :param airflow_version: The environment's Airflow version (2.x or 3.x).
    :param machine_key: The secret holding the machine key (the whole secret string); the
        function reads it.
    :param web_security_group: The load balancer's security group: the function is allowed
        to reach it on 80 and 443. None: the load balancer's own rules decide.
    :param throttling_rate_limit: Steady requests per second the stage accepts (default 10).
    :param throttling_burst_limit: Burst of requests the stage accepts (default 20).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        placement: FunctionPlacement,
        airflow_url: str,
        airflow_version: str,
        machine_key: secretsmanager.ISecret,
        web_security_group: ec2.ISecurityGroup | None = None,
        throttling_rate_limit: int = 10,
        throttling_burst_limit: int = 20,
    ) -> None:
        super().__init__(scope, construct_id)
        _check_props(
            environment_name,
            airflow_url,
            airflow_version,
            throttling_rate_limit,
            throttling_burst_limit,
        )
        self.environment_name = environment_name
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=placement.vpc,
            description="Airflow API access function: calls the web address and AWS APIs",
            allow_all_outbound=True,
        )
        """The function's own security group: no ingress."""
        if web_security_group is not None:
            for port in (80, 443):
                web_security_group.add_ingress_rule(
                    self.security_group, ec2.Port.tcp(port), "API access function to Airflow"
                )
        self.function: lambda_.Function = bundled_function(
            self,
            "Function",
            handler="api_access.handler.handler",
            description=f"Airflow environment {environment_name}: API access for IAM callers",
            timeout=FUNCTION_TIMEOUT,
            memory_size=256,
            placement=dataclasses.replace(placement, security_group=self.security_group),
            environment={
                AIRFLOW_URL_VARIABLE: airflow_url,
                MACHINE_KEY_SECRET_VARIABLE: machine_key.secret_arn,
                AIRFLOW_VERSION_VARIABLE: airflow_version,
                ENVIRONMENT_NAME_VARIABLE: environment_name,
            },
        )
        """The API access Lambda (handler ``api_access.handler.handler``)."""
        machine_key.grant_read(self.function)
        acknowledge(self.function, API_ACCESS_FUNCTION)

        self.rest_api = apigateway.RestApi(
            self,
            "Api",
            description=f"Airflow environment {environment_name}: API access (IAM auth)",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            cloud_watch_role=False,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=throttling_rate_limit,
                throttling_burst_limit=throttling_burst_limit,
                tracing_enabled=True,
                caching_enabled=False,
            ),
            default_method_options=apigateway.MethodOptions(
                authorization_type=apigateway.AuthorizationType.IAM
            ),
            disable_execute_api_endpoint=False,
        )
        """The REST API: every method AWS_IAM authorized."""
        acknowledge(self.rest_api, API_ACCESS_REST_API)
        acknowledge(self.rest_api.deployment_stage, API_ACCESS_STAGE)
        validator = self.rest_api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        invoke_model = self.rest_api.add_model(
            "InvokeRequest", content_type="application/json", schema=INVOKE_BODY_SCHEMA
        )
        integration = apigateway.LambdaIntegration(self.function, allow_test_invoke=False)
        for route in ROUTES:
            resource = self.rest_api.root.add_resource(route).add_resource("{role}")
            resource.add_method(
                "POST",
                integration,
                authorization_type=apigateway.AuthorizationType.IAM,
                request_validator=validator,
                request_parameters={"method.request.path.role": True},
                request_models={"application/json": invoke_model} if route == "invoke" else None,
            )

        stack = Stack.of(self)
        self.url = self.rest_api.url
        """The stage's invoke URL (``https://<api id>.execute-api.<region>.amazonaws.com/v1/``)."""
        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=PARAMETER_NAME_FORMAT.format(environment_name),
            description=f"Airflow environment {environment_name}: where its API access is",
            string_value=stack.to_json_string(
                {"url": self.url, "airflow_version": airflow_version, "region": stack.region}
            ),
        )
        """``/openmwaa/<environment_name>/api-access``: ``{"url", "airflow_version", "region"}``."""

    def execute_arns(self, role: str) -> list[str]:
        """The ``execute-api`` ARNs of ``role``'s two routes (``POST /token/<role>``,
        ``POST /invoke/<role>``); ValueError for a role not in AIRFLOW_ROLES."""
        if role not in AIRFLOW_ROLES:
            raise ValueError(f"role must be one of {', '.join(AIRFLOW_ROLES)}: {role!r}")
        return [
            self.rest_api.arn_for_execute_api("POST", f"/{route}/{role}", STAGE_NAME)
            for route in ROUTES
        ]

    def grant_airflow_role(self, grantee: iam.IGrantable, role: str) -> iam.Grant:
        """Let ``grantee`` act as Airflow ``role`` (one of Admin, Op, User, Viewer, Public):
        ``execute-api:Invoke`` on that role's token and invoke routes, nothing else."""
        if role not in AIRFLOW_ROLES:
            raise ValueError(f"role must be one of {', '.join(AIRFLOW_ROLES)}: {role!r}")
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["execute-api:Invoke"],
            resource_arns=self.execute_arns(role),
        )

    def grant_lookup(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read the parameter (``ssm:GetParameter``), as the CLI does."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ssm:GetParameter"],
            resource_arns=[self.parameter.parameter_arn],
        )


def _check_props(
    environment_name: str,
    airflow_url: str,
    airflow_version: str,
    rate: int,
    burst: int,
) -> None:
    if not Token.is_unresolved(environment_name) and not _NAME.fullmatch(environment_name):
        raise ValueError(
            "environment_name must be 1-200 letters, digits, '_', '.' or '-' (it names the "
            f"SSM parameter /openmwaa/<environment_name>/api-access): {environment_name!r}"
        )
    if not Token.is_unresolved(airflow_url) and not re.match(r"https?://", airflow_url):
        raise ValueError(f"airflow_url must start with http:// or https://: {airflow_url!r}")
    if not re.fullmatch(r"[23]\.\d+(\.\d+)?", airflow_version):
        raise ValueError(
            f"airflow_version must be an Airflow 2.x or 3.x version: {airflow_version!r}"
        )
    if rate < 1:
        raise ValueError(f"throttling_rate_limit must be at least 1: {rate}")
    if burst < 1:
        raise ValueError(f"throttling_burst_limit must be at least 1: {burst}")
