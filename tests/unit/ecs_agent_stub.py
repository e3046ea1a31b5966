"""A local stand-in for the ECS agent's task-protection endpoint, for the runtime's tests."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable


class Agent(http.server.ThreadingHTTPServer):
    """Records PUT bodies; answers with the queued responses, then success."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), AgentHandler)
        self.requests: list[tuple[str, str, dict[str, object]]] = []
        self.times: list[float] = []
        self.responses: list[tuple[int, dict[str, object]]] = []
        self.lock = threading.Lock()
        self.on_request: Callable[[dict[str, object]], None] | None = None
        """Called with each body before the answer (to act "while the call is in flight")."""
        self.truncated_answers = 0
        """Answers to cut short: the headers promise more body than is sent, then the
        connection closes (an agent that drops the connection mid-answer)."""

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/task-id"

    def bodies(self) -> list[dict[str, object]]:
        with self.lock:
            return [body for _, _, body in self.requests]


class AgentHandler(http.server.BaseHTTPRequestHandler):
    server: Agent

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        if self.server.on_request is not None:
            self.server.on_request(body)
        with self.server.lock:
            self.server.requests.append((self.command, self.path, body))
            self.server.times.append(time.monotonic())
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
