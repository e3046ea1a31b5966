"""Fixtures shared by the unit tests of the container runtime."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ecs_agent_stub import FakeEcsAgent


@pytest.fixture
def agent() -> Iterator[FakeEcsAgent]:
    with FakeEcsAgent() as server:
        yield server
