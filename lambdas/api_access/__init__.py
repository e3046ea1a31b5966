"""The API access Lambda: IAM callers get Airflow API tokens, or call the REST API, as a role."""
