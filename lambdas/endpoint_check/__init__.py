"""VPC endpoint check: a deploy-time custom resource that fails the deploy when the VPC lacks
an endpoint a private environment needs."""
