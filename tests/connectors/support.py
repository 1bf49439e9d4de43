"""Fakes shared by the REST connector tests: a clock that never sleeps, and a sink with a tripwire."""

from __future__ import annotations

import random

from islandbridge.connectors.http import Pacing


class FakeTime:
    """A clock that moves only when slept on: retries cost no wall time and every wait is recorded."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def pacing(self) -> Pacing:
        return Pacing(sleep=self.sleep, clock=lambda: self.now, rng=random.Random(7))


class Tripwire:
    """A sink that runs ``action`` once, when the ``at``-th record of ``stream`` has been read (counted
    as read one by one or a page at a time)."""

    def __init__(self, sink, stream: str, at: int, action) -> None:
        self.sink, self.stream, self.at, self.action, self.seen = sink, stream, at, action, 0

    def __getattr__(self, name):
        return getattr(self.sink, name)

    def read(self, stream: str, n: int = 1) -> None:
        self.sink.read(stream, n)
        if stream == self.stream:
            before, self.seen = self.seen, self.seen + n
            if before < self.at <= self.seen:
                self.action()
