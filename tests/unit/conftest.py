"""Fixtures shared by the unit tests of the container runtime."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.unit.ecs_agent_stub import Agent


@pytest.fixture
def agent() -> Iterator[Agent]:
    server = Agent()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
