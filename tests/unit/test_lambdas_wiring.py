"""The bundled Lambdas as the construct wires them: code, triggers, permissions, settings."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk.assertions import Match

from tests.conftest import template_of


def function(template, handler: str) -> dict[str, Any]:
    [fn] = [
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == handler
    ]
    return fn["Properties"]


def policy_of(template, role_prefix: str) -> list[dict[str, Any]]:
    [policy] = [
        p
        for k, p in template.find_resources("AWS::IAM::Policy").items()
        if k.startswith(role_prefix)
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_dag_sync_mounts_efs_in_the_private_subnets(default_template) -> None:
    props = function(default_template, "dag_sync.handler.handler")
    assert props["Runtime"] == "python3.14"
    [mount] = props["FileSystemConfigs"]
    assert mount["LocalMountPath"] == "/mnt/airflow"
    subnets = props["VpcConfig"]["SubnetIds"]
    assert subnets and all("PrivateSubnet" in s["Ref"] for s in subnets)


def test_dag_sync_settings_follow_the_props() -> None:
    template = template_of(requirements_s3_object_version="abc123", plugins_s3_object_version="v9")
    env = function(template, "dag_sync.handler.handler")["Environment"]["Variables"]
    assert env["REQUIREMENTS_S3_OBJECT_VERSION"] == "abc123"
    assert env["PLUGINS_S3_OBJECT_VERSION"] == "v9"
    assert env["STARTUP_SCRIPT_S3_OBJECT_VERSION"] == ""
    assert env["EFS_MOUNT_PATH"] == "/mnt/airflow"
    assert env["BUCKET_NAME"]["Ref"].startswith("AirflowSourceBucket")


def test_dag_sync_is_notified_of_every_synced_key(default_template) -> None:
    [notifications] = default_template.find_resources("Custom::S3BucketNotifications").values()
    configs = notifications["Properties"]["NotificationConfiguration"][
        "LambdaFunctionConfigurations"
    ]
    seen = {(c["Events"][0], c["Filter"]["Key"]["FilterRules"][0]["Value"]) for c in configs}
    for event in ("s3:ObjectCreated:*", "s3:ObjectRemoved:*"):
        for key in ("dags/", "plugins.zip", "requirements.txt", "startup.sh"):
            assert (event, key) in seen


def test_dag_sync_reconciles_every_ten_minutes_by_default(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(10 minutes)"}
    )
    template_of(reconcile_interval=Duration.minutes(3)).has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(3 minutes)"}
    )


def test_dag_sync_runs_at_deploy_before_the_services_start(default_template) -> None:
    [trigger_id] = default_template.find_resources("Custom::Trigger")
    services = default_template.find_resources("AWS::ECS::Service")
    assert services
    for logical_id, service in services.items():
        assert trigger_id in service.get("DependsOn", []), logical_id


def test_dag_sync_may_roll_only_this_clusters_services(default_template) -> None:
    statements = policy_of(default_template, "AirflowDagSyncFunctionServiceRole")
    [roll] = [s for s in statements if s.get("Sid") == "RollAirflowServices"]
    assert set(roll["Action"]) == {"ecs:UpdateService", "ecs:DescribeServices"}
    assert "service/" in str(roll["Resource"]) and "AirflowServicesCluster" in str(roll["Resource"])
    [find] = [s for s in statements if s.get("Sid") == "FindAirflowServices"]
    assert find["Condition"]["ArnEquals"]["ecs:cluster"]["Fn::GetAtt"][0].startswith(
        "AirflowServicesCluster"
    )
    assert not any("s3:PutObject" in str(s["Action"]) for s in statements)


def test_autoscaler_runs_every_minute(default_template) -> None:
    props = function(default_template, "autoscaler.handler.handler")
    assert props["Timeout"] == 60
    default_template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(1 minute)"}
    )


def test_autoscaler_settings_follow_the_props() -> None:
    template = template_of(environment_class="mw1.large", min_workers=0, max_workers=30)
    env = function(template, "autoscaler.handler.handler")["Environment"]["Variables"]
    assert (env["MIN_WORKERS"], env["MAX_WORKERS"], env["TASKS_PER_WORKER"]) == ("0", "30", "20")
    assert env["SCALE_IN_COOLDOWN_SECONDS"] == "300"
    assert env["METRIC_NAMESPACE"] == "OpenMWAA"


def test_autoscaler_may_only_touch_the_worker_service(default_template) -> None:
    statements = policy_of(default_template, "AirflowWorkerAutoscalerFunctionServiceRole")
    [scale] = [s for s in statements if s.get("Sid") == "ScaleWorkerService"]
    assert scale["Resource"]["Ref"].startswith("AirflowServicesWorkerService")
    [metrics] = [s for s in statements if s.get("Sid") == "PublishWorkerMetrics"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "OpenMWAA"}}


def test_workers_may_protect_their_own_tasks(default_template) -> None:
    statements = policy_of(default_template, "AirflowExecutionRole")
    [protect] = [s for s in statements if s.get("Sid") == "WorkerScaleInProtection"]
    assert "ecs:UpdateTaskProtection" in protect["Action"]
    assert "task/" in str(protect["Resource"])


def test_micro_has_no_autoscaler() -> None:
    template = template_of(environment_class="mw1.micro")
    handlers = [
        f["Properties"].get("Handler")
        for f in template.find_resources("AWS::Lambda::Function").values()
    ]
    assert "autoscaler.handler.handler" not in handlers
    assert "dag_sync.handler.handler" in handlers


def test_both_lambdas_share_one_code_asset(default_template) -> None:
    keys = {
        str(function(default_template, h)["Code"])
        for h in ("dag_sync.handler.handler", "autoscaler.handler.handler")
    }
    assert len(keys) == 1


def test_monitoring_dashboard_and_alarms_notify_a_topic(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": "airflow-openmwaa"}
    )
    alarms = default_template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 15  # the five of the functions and the web, and ten of issue 13
    for alarm in alarms.values():
        [action] = alarm["Properties"]["AlarmActions"]
        assert action["Ref"].startswith("AirflowMonitoringAlarmTopic")
    # CloudWatch cannot publish to a topic under the AWS managed SNS key: no key without kms_key.
    default_template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.absent()})


def test_monitoring_alarm_topic_uses_the_customer_key_cloudwatch_may_use(kms_template) -> None:
    kms_template.has_resource_properties(
        "AWS::SNS::Topic",
        {"KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]}},
    )
    kms_template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "AllowCloudWatchAlarmsToPublish",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_monitoring_alarms_on_a_backlog_at_max_workers(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "EvaluationPeriods": 15,
            "Metrics": Match.array_with(
                [Match.object_like({"Expression": "IF(desired >= 10 AND queued > 0, queued, 0)"})]
            ),
        },
    )


def test_autoscaler_runs_are_never_retried_or_queued(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0},
    )


def test_bundled_lambdas_reserve_no_concurrency(default_template) -> None:
    for handler in ("dag_sync.handler.handler", "autoscaler.handler.handler"):
        assert "ReservedConcurrentExecutions" not in function(default_template, handler)


def test_monitoring_topic_lets_this_accounts_alarms_publish(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "AllowCloudWatchAlarmsToPublish",
                                "Action": "sns:Publish",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Condition": {
                                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                                },
                            }
                        )
                    ]
                )
            }
        },
    )
