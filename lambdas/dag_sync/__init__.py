"""DAG sync Lambda: mirrors the source bucket (dags/, plugins.zip, requirements.txt,
startup.sh) onto the EFS file system the Airflow containers read.

Entry point: ``dag_sync.handler.handler``. See docs/dag-sync.md.

The pure decision core (no boto3, no file access):

    model.py      the data: S3Change, ObjectInfo, Entry, Report, the errors
    keys.py       which keys are synced or refused, and the kind of file each one is
    events.py     S3 event notifications parsed into an Invocation
    verdicts.py   per-key decisions: event ordering, version pins, what a reconcile fixes
    ports.py      the Protocols every side effect goes through
    syncer.py     Settings and the Syncer that applies events and reconciles

Around it: ``handler.py`` (wiring, metrics, retry), ``aws_ports.py`` (S3, ECS),
``efs_writer.py`` and ``plugins_archive.py`` (files on the mount), ``state_store.py``
(bookkeeping on EFS), ``requirements_build.py``, ``dag_feedback.py``, ``metrics.py``.
Names shared with the construct and the containers (bucket keys, metric names) come from
``openmwaa_contracts``.
"""
