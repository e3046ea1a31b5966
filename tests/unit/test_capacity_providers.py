"""ECS capacity providers are attached only when Fargate Spot is used (issue 8, item 11).

Associating capacity providers needs ECS's service-linked role, which in a fresh account
may not be ready during the first deploy; without Spot nothing needs them.
"""

from __future__ import annotations

from tests.conftest import template_of


def test_capacity_providers_are_not_attached_without_spot(default_template) -> None:
    assert default_template.find_resources("AWS::ECS::ClusterCapacityProviderAssociations") == {}
    services = default_template.find_resources("AWS::ECS::Service")
    assert services
    for logical_id, service in services.items():
        assert service["Properties"]["LaunchType"] == "FARGATE", logical_id


def test_capacity_providers_are_attached_with_spot() -> None:
    template = template_of(worker_fargate_spot=True)
    [association] = template.find_resources(
        "AWS::ECS::ClusterCapacityProviderAssociations"
    ).values()
    assert set(association["Properties"]["CapacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    template.has_resource_properties(
        "AWS::ECS::Service",
        {"CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]},
    )
