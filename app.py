#!/usr/bin/env python3
"""The bundled app: one stack with one AirflowEnvironment and the embedded defaults.

`make synth` synthesizes it into cdk.out/; `cdk deploy` deploys it to the account and
region of your AWS credentials (or CDK_DEFAULT_ACCOUNT/REGION). The CDK context value
`private_network` (`cdk synth -c private_network=true`) builds it as a private network: no
route out of the VPC, AWS reached through VPC endpoints.
"""

from __future__ import annotations

import aws_cdk as cdk

from openmwaa import AirflowEnvironment, EnvironmentClass


class AirflowStack(cdk.Stack):
    """A stack holding one Airflow environment with openmwaa's defaults."""

    def __init__(
        self,
        scope: cdk.App,
        construct_id: str,
        *,
        private_network: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.airflow = AirflowEnvironment(
            self,
            "Airflow",
            environment_name="openmwaa",
            environment_class=EnvironmentClass.MW1_SMALL,
            private_network=private_network or None,
        )
        cdk.CfnOutput(self, "SourceBucketName", value=self.airflow.bucket.bucket_name)
        cdk.CfnOutput(self, "AirflowUrl", value=self.airflow.url)
        cdk.CfnOutput(
            self,
            "AdminSecretArn",
            value=self.airflow.admin_secret.secret_arn,
            description="Break-glass admin user: aws secretsmanager get-secret-value",
        )


PRIVATE_NETWORK_CONTEXT = "private_network"
"""The CDK context key that builds the bundled app as a private network."""


def context_flag(app: cdk.App, key: str) -> bool:
    """A boolean CDK context value: `-c key=true` arrives as the string "true", a value in
    cdk.json or the App's context as a bool. Anything else is refused, naming the key."""
    value = app.node.try_get_context(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"context {key}: got {value!r}; allowed: true or false")


def build_app(app: cdk.App | None = None) -> cdk.App:
    """Build the bundled app (also used by the tests and by `make example`)."""
    app = app or cdk.App()
    AirflowStack(
        app,
        "OpenMwaa",
        description="openmwaa: Apache Airflow on ECS Fargate",
        private_network=context_flag(app, PRIVATE_NETWORK_CONTEXT),
    )
    return app


if __name__ == "__main__":
    build_app().synth()
