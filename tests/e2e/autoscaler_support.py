"""Helpers of the autoscaler end-to-end test: the worker's real process tree and a watcher of
the broker queue's counts (the stand-in for the ECS agent is ``tests/ecs_agent_stub.py``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from openmwaa.runtime import protection_policy as policy
from openmwaa.runtime import task_protection as tp


def process_tree(root_pid: int) -> list[policy.ProcessInfo]:
    """The processes at and below ``root_pid``, read by task_protection's own /proc reader."""
    processes = tp.read_processes()
    children: dict[int, list[policy.ProcessInfo]] = {}
    for process in processes:
        children.setdefault(process.ppid, []).append(process)
    tree = [p for p in processes if p.pid == root_pid]
    stack = [root_pid]
    while stack:
        for child in children.get(stack.pop(), []):
            tree.append(child)
            stack.append(child.pid)
    return tree


@dataclass
class QueueWatcher:
    """Polls the queue's approximate counts every ``interval`` s in a thread."""

    sqs: Any
    queue_url: str
    interval: float = 0.2
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def read(self) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                queued, in_flight = self.read()
                self.samples.append((time.time(), queued, in_flight))
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def first(self, predicate: Any) -> float | None:
        """Time of the first sample whose (queued, in flight) satisfies ``predicate``."""
        for at, queued, in_flight in self.samples:
            if predicate(queued, in_flight):
                return at
        return None
