"""Worker autoscaler Lambda: sizes the Celery worker ECS service from the SQS broker queue."""
