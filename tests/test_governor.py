"""The request governor, on a fake clock: a budget per minute and a bound on requests in
flight, shared by every thread of the process."""

from __future__ import annotations

import threading
import time

import pytest

from poller import shutdown
from poller.governor import Governor


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_no_minute_sees_more_than_the_budget(monkeypatch):
    clock = Clock()
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the governor's only wait, on the fake clock
        waits.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(shutdown, "sleep", sleep)
    governor = Governor(per_minute=120, concurrency=4, clock=clock)
    starts = []
    for _ in range(400):
        with governor.request():
            starts.append(clock.now)
    # A burst of `concurrency`, then an even pace; any 60 s holds at most 120 starts.
    assert starts[:4] == [0.0] * 4
    for i, start in enumerate(starts):
        in_minute = sum(1 for s in starts[i:] if s < start + 60)
        assert in_minute <= 120
    assert starts[-1] == pytest.approx((400 - 4) * 60 / (120 - 4), rel=1e-6)


def test_requests_in_flight_are_bounded():
    governor = Governor(per_minute=10**6, concurrency=3)
    inside, peak, lock = 0, 0, threading.Lock()

    def work() -> None:
        nonlocal inside, peak
        with governor.request():
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3
