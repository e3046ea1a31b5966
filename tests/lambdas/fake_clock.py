"""Virtual time for the autoscaler's tests: nothing sleeps, nothing reads the wall clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FakeClock:
    """Injected time: sleep() advances now() instantly and fires scheduled callbacks."""

    t: float = 0.0
    slept: list[float] = field(default_factory=list)
    events: list[tuple[float, Callable[[], None]]] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        """Advance to now + seconds, firing each due callback once, at its own time."""
        self.slept.append(seconds)
        target = self.t + seconds
        while due := [e for e in self.events if e[0] <= target]:
            event = min(due, key=lambda e: e[0])
            self.events.remove(event)
            self.t = max(self.t, event[0])
            event[1]()
        self.t = max(self.t, target)

    def at(self, offset: float, action: Callable[[], None]) -> None:
        self.events.append((self.t + offset, action))
