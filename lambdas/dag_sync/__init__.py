"""DAG sync Lambda: mirrors the source bucket (dags/, plugins.zip, requirements.txt,
startup.sh) onto the EFS file system the Airflow containers read.

Entry point: ``dag_sync.handler.handler``. See docs/dag-sync.md.
"""
