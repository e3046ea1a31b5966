"""Helpers that MWAA-style DAGs import from the DAGs folder (dags/ is on sys.path)."""
