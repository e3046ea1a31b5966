"""The ports through which the syncer does every side effect.

``aws_ports.py`` implements ``ObjectStore`` (S3) and ``Roller`` (ECS), ``state_store.py``
the ``StateStore`` and ``efs_writer.py`` the ``FileTree`` on the EFS mount;
``handler.py`` wires them together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from dag_sync.model import Entry, ObjectInfo


class ObjectBody(Protocol):
    @property
    def info(self) -> ObjectInfo: ...

    def chunks(self) -> Iterator[bytes]:
        """The content; raises TransientError if the stream breaks or ends short."""
        ...


class ObjectStore(Protocol):
    def head(self, key: str, version_id: str | None) -> ObjectInfo | None:
        """None when the key (or that version) does not exist."""
        ...

    def open(self, key: str, version_id: str | None) -> ObjectBody | None:
        """None when the key (or that version) does not exist."""
        ...

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]: ...


class ShardTxn(Protocol):
    def get(self, key: str) -> Entry | None: ...

    def put(self, key: str, entry: Entry) -> None: ...


class StateStore(Protocol):
    def shard_of(self, key: str) -> str: ...

    def transaction(self, shard: str) -> AbstractContextManager[ShardTxn]:
        """Exclusive lock on one shard; changes are saved atomically on normal exit."""
        ...

    def roll_lock(self) -> AbstractContextManager[None]: ...

    def add_roll_token(self, key: str) -> None:
        """Record that a rolling file is about to change (caller holds roll_lock)."""
        ...

    def roll_tokens(self) -> list[str]: ...

    def clear_roll_tokens(self, tokens: Sequence[str]) -> None: ...

    def update_dag_ids(
        self, changes: Mapping[str, Sequence[str] | None], keep_only: set[str] | None
    ) -> dict[str, list[str]]:
        """Apply per-file dag_id changes (None = file gone); return every dag_id defined
        in more than one file, with its files."""
        ...

    def dag_id_files(self) -> set[str]: ...


class FileTree(Protocol):
    """The EFS mount. Paths are bucket keys ("dags/a.py", "requirements.txt")."""

    def write_file(
        self,
        path: str,
        chunks: Iterable[bytes],
        *,
        executable: bool = False,
        before_commit: Callable[[], None] | None = None,
    ) -> int: ...

    def remove_file(self, path: str) -> bool: ...

    def file_size(self, path: str) -> int | None: ...

    def read_file(self, path: str, limit: int) -> bytes | None: ...

    def walk_dags(self) -> dict[str, int]: ...

    def clean_stale_temp(self, older_than: float) -> list[str]: ...

    def install_plugins(
        self,
        chunks: Iterable[bytes],
        *,
        label: str,
        before_commit: Callable[[], None] | None = None,
    ) -> str: ...

    def remove_plugins(self) -> bool: ...

    def plugins_current(self) -> str | None: ...


class Roller(Protocol):
    def roll(self) -> list[str]:
        """Force a new deployment of the services; returns the ones rolled."""
        ...
