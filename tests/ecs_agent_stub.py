"""A local stand-in for the ECS agent's task scale-in protection endpoint.

One for the runtime's unit tests (``tests/unit/conftest.py``'s ``agent`` fixture) and the
autoscaler end-to-end test: it answers ``PUT <uri>/task-protection/v1/state`` as the ECS agent
does and records every call.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from typing import Any

TASK_PATH = "/v4/e2e-task"
"""The path of :attr:`FakeEcsAgent.uri` (ECS gives ``$ECS_AGENT_URI`` with a task's id)."""


class FakeEcsAgent(http.server.ThreadingHTTPServer):
    """Records the PUT calls; answers with the queued :attr:`responses`, then success.

    Use it as a context manager (it serves in a daemon thread until the block ends).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(("127.0.0.1", 0), _AgentHandler)
        self.clock = clock
        """Read at each call, into :attr:`times` (a test's fake clock, or the real one)."""
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        """(method, path, body) of each call."""
        self.times: list[float] = []
        """:attr:`clock` at each call."""
        self.calls: list[tuple[float, str, dict[str, Any]]] = []
        """(wall-clock time, path, body) of each call."""
        self.responses: list[tuple[int, dict[str, Any]]] = []
        """(status, answer) to give, in order, before the default success."""
        self.lock = threading.Lock()
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        """Called with each body before the answer (to act "while the call is in flight")."""
        self.truncated_answers = 0
        """Answers to cut short: the headers promise more body than is sent, then the
        connection closes (an agent that drops the connection mid-answer)."""
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def uri(self) -> str:
        """The value of ``$ECS_AGENT_URI``."""
        return f"http://127.0.0.1:{self.server_address[1]}{TASK_PATH}"

    @property
    def protection_path(self) -> str:
        """The path the protection calls PUT to."""
        return f"{TASK_PATH}/task-protection/v1/state"

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _, _, body in self.requests]

    def __enter__(self) -> FakeEcsAgent:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()
        self.server_close()


class _AgentHandler(http.server.BaseHTTPRequestHandler):
    server: FakeEcsAgent

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        if self.server.on_request is not None:
            self.server.on_request(body)
        with self.server.lock:
            self.server.requests.append((self.command, self.path, body))
            self.server.times.append(self.server.clock())
            self.server.calls.append((time.time(), self.path, body))
            status, answer = (
                self.server.responses.pop(0)
                if self.server.responses
                else (
                    200,
                    {
                        "protection": {
                            "ProtectionEnabled": body["ProtectionEnabled"],
                            "TaskArn": "arn:aws:ecs:us-east-1:1:task/c/abc",
                        }
                    },
                )
            )
            truncated = self.server.truncated_answers > 0
            if truncated:
                self.server.truncated_answers -= 1
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if truncated else data)
        if truncated:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass
