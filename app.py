#!/usr/bin/env python3
"""The bundled app: one stack with one AirflowEnvironment and the embedded defaults.

`make synth` synthesizes it into cdk.out/; `cdk deploy` deploys it to the account and
region of your AWS credentials (or CDK_DEFAULT_ACCOUNT/REGION).
"""

from __future__ import annotations

import aws_cdk as cdk

from openmwaa import AirflowEnvironment, EnvironmentClass


class AirflowStack(cdk.Stack):
    """A stack holding one Airflow environment with openmwaa's defaults."""

    def __init__(self, scope: cdk.App, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.airflow = AirflowEnvironment(
            self,
            "Airflow",
            environment_name="openmwaa",
            environment_class=EnvironmentClass.MW1_SMALL,
        )
        cdk.CfnOutput(self, "SourceBucketName", value=self.airflow.bucket.bucket_name)
        cdk.CfnOutput(self, "AirflowUrl", value=self.airflow.url)
        cdk.CfnOutput(
            self,
            "AdminSecretArn",
            value=self.airflow.admin_secret.secret_arn,
            description="Break-glass admin user: aws secretsmanager get-secret-value",
        )


def build_app(app: cdk.App | None = None) -> cdk.App:
    """Build the bundled app (also used by the tests and by `make example`)."""
    app = app or cdk.App()
    AirflowStack(app, "OpenMwaa", description="openmwaa: Apache Airflow on ECS Fargate")
    return app


if __name__ == "__main__":
    build_app().synth()
