"""Helpers of the autoscaler end-to-end test: the worker's real process tree, a stand-in for
the ECS agent's task-protection endpoint, and a watcher of the broker queue's counts."""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from openmwaa.runtime import task_protection as tp


def process_tree(root_pid: int) -> list[tp.ProcessInfo]:
    """The processes at and below ``root_pid``, read by task_protection's own /proc reader."""
    processes = tp.read_processes()
    children: dict[int, list[tp.ProcessInfo]] = {}
    for process in processes:
        children.setdefault(process.ppid, []).append(process)
    tree = [p for p in processes if p.pid == root_pid]
    stack = [root_pid]
    while stack:
        for child in children.get(stack.pop(), []):
            tree.append(child)
            stack.append(child.pid)
    return tree


class FakeEcsAgent(http.server.ThreadingHTTPServer):
    """Answers ``PUT <uri>/task-protection/v1/state`` as the ECS agent does; records calls."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _AgentHandler)
        self.calls: list[tuple[float, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v4/e2e-task"

    def __enter__(self) -> FakeEcsAgent:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()
        self.server_close()


class _AgentHandler(http.server.BaseHTTPRequestHandler):
    server: FakeEcsAgent

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with self.server.lock:
            self.server.calls.append((time.time(), self.path, body))
        answer = json.dumps(
            {"protection": {"ProtectionEnabled": body["ProtectionEnabled"], "TaskArn": "arn"}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


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
