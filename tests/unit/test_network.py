from __future__ import annotations

from aws_cdk.assertions import Match

from tests.conftest import template_of


def test_network_security_group_allows_all_traffic_from_itself(default_template) -> None:
    groups = default_template.find_resources("AWS::EC2::SecurityGroup")
    [sg_id] = [k for k in groups if "NetworkSecurityGroup" in k]
    default_template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "IpProtocol": "-1",
            "GroupId": {"Fn::GetAtt": [sg_id, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [sg_id, "GroupId"]},
        },
    )


def test_network_security_group_has_no_cidr_ingress(default_template) -> None:
    groups = default_template.find_resources("AWS::EC2::SecurityGroup")
    [group] = [v for k, v in groups.items() if "NetworkSecurityGroup" in k]
    assert "SecurityGroupIngress" not in group["Properties"]


def test_network_new_vpc_spans_two_zones_with_private_subnets(default_template) -> None:
    default_template.resource_count_is("AWS::EC2::VPC", 1)
    default_template.resource_count_is("AWS::EC2::Subnet", 4)
    default_template.has_resource_properties("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": False})


def test_network_new_vpc_has_flow_logs_for_all_traffic(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )


def test_network_nat_gateways_default_to_one_and_are_configurable(default_template) -> None:
    default_template.resource_count_is("AWS::EC2::NatGateway", 1)
    template_of(nat_gateways=2).resource_count_is("AWS::EC2::NatGateway", 2)


def test_network_imported_vpc_creates_no_vpc(kms_template) -> None:
    kms_template.resource_count_is("AWS::EC2::VPC", 0)
    kms_template.resource_count_is("AWS::EC2::NatGateway", 0)
    kms_template.has_resource_properties(
        "AWS::EC2::SecurityGroup", {"VpcId": "vpc-0a1b2c3d4e5f67890"}
    )


def test_network_imported_vpc_places_mount_targets_in_its_private_subnets(kms_template) -> None:
    kms_template.has_resource_properties(
        "AWS::EFS::MountTarget", {"SubnetId": "subnet-0aaaaaaaaaaaaaaa1"}
    )
    kms_template.has_resource_properties(
        "AWS::RDS::DBSubnetGroup",
        {"SubnetIds": Match.array_equals(["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"])},
    )
