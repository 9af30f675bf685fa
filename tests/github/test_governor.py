"""The request governor, on a fake clock: a budget per minute and a bound on requests in
flight, shared by every thread of the process."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from fake_github import FakeGitHub, SecondaryLimit
from poller.clock import SYSTEM
from poller.config import loader as config_module
from poller.github.governor import Governor
from poller.github.pool import connect
from poller.shutdown import Stop
from support import TOKEN, PollerSetup

# What the poller asks GitHub does not depend on the database.
pytestmark = pytest.mark.sqlite_only


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class WaitsOnClock(Stop):
    """A stop whose waits pass on the test's clock, at once."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def sleep(self, seconds: float) -> None:
        self.clock.now += seconds
        self.check()


def test_no_minute_sees_more_than_the_budget():
    clock = Clock()
    governor = Governor(per_minute=120, concurrency=4, stop=WaitsOnClock(clock), clock=clock)
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
    governor = Governor(per_minute=10**6, concurrency=3, stop=Stop())
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


def test_the_fake_enforces_the_secondary_limit():
    """The limit the scale benchmark holds the poller to is real: a client that ignores it
    is refused, by the rolling window and by the bound on requests in flight."""
    fake = FakeGitHub(token=TOKEN).start()
    try:
        fake.add_repo("octo/api")
        fake.latency = 0.05
        fake.secondary = SecondaryLimit(10, window=5.0, concurrency=3, retry_after=7)

        def get() -> requests.Response:
            return requests.get(
                f"{fake.url}/repos/octo/api", headers={"Authorization": f"token {TOKEN}"}
            )

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: get(), range(6)))
        crowded = [a for a in answers if a.status_code == 403]
        assert crowded and all(a.headers["retry-after"] == "7" for a in crowded)
        assert fake.secondary.answers == len(crowded)
        serial = [get().status_code for _ in range(10)]
        assert serial.count(403) >= 6  # 16 requests in 5 s where 10 are allowed
    finally:
        fake.stop()


def test_a_pass_paced_by_the_governor_is_never_refused(fake: FakeGitHub, poller: PollerSetup):
    """A real ``--once`` over several repositories, four at a time, against a fake GitHub
    that refuses more than 20 requests in 2 s or more than 4 in flight: the governor's
    budget (480 a minute, so at most 4 + 2 x 7.9 in any 2 s) keeps every answer a 200/304."""
    now = datetime.now(UTC).replace(microsecond=0)
    for index in range(8):
        repo = fake.add_repo(f"octo/repo-{index}")
        ci = fake.add_workflow(repo, "CI")
        fake.add_commit(repo, "main", when=now - timedelta(days=3))
        for hour in range(2):
            fake.add_run(repo, ci, created=now - timedelta(hours=hour + 1))
        poller.repos.append({"name": f"octo/repo-{index}"})
    fake.latency = 0.02
    fake.secondary = SecondaryLimit(20, window=2.0, concurrency=4, retry_after=1)
    poller.github = {"requests_per_minute": 480, "concurrency": 4}
    result = poller.run("--once")
    assert result.returncode == 0, result.stderr
    assert fake.count() > 40  # enough requests that an unpaced pass would be refused
    assert fake.secondary.answers == 0


def test_pollers_sharing_a_budget_each_take_their_part():
    clock = Clock()
    governor = Governor(per_minute=900, concurrency=4, stop=WaitsOnClock(clock), clock=clock)
    governor.share(3)
    starts = []
    for _ in range(1000):
        with governor.request():
            starts.append(clock.now)
    # Three such pollers together stay within 900 in any minute.
    busiest = max(sum(1 for s in starts[i:] if s < start + 60) for i, start in enumerate(starts))
    assert busiest <= 300
    governor.share(1)
    clock.now += 60
    again = []
    for _ in range(100):
        with governor.request():
            again.append(clock.now)
    assert again[-1] - again[0] < 60 * 100 / 800  # the whole budget back


def test_a_hold_delays_every_request_until_it_ends():
    clock = Clock()
    governor = Governor(per_minute=800, concurrency=4, stop=WaitsOnClock(clock), clock=clock)
    governor.hold(30)
    with governor.request():
        assert clock.now == 30.0
    governor.hold(5)
    clock.now += 10  # the hold ran out meanwhile
    with governor.request():
        assert clock.now == 40.0


def test_a_secondary_limit_answer_holds_every_thread(fake: FakeGitHub, poller: PollerSetup):
    """GitHub said "retry after 2 s" to one thread: the others wait too, rather than keep
    sending while the installation is limited."""
    for name in ("octo/a", "octo/b"):
        fake.add_repo(name)
    fake.secondary_limit("/repos/octo/a", retry_after=2)
    poller.repos = [{"name": "octo/a"}, {"name": "octo/b"}]
    settings = config_module.load(poller.write())
    github = connect(settings, poller.token, SYSTEM, Stop())
    clients = github.credential("octo")
    for client in clients.clients:
        client.cache = None  # the ETag cache is not what this is about
    refused_at = time.time()
    with contextlib.closing(github), ThreadPoolExecutor(2) as pool:
        first = pool.submit(lambda: clients.clients[0].repository("octo/a"))
        time.sleep(0.3)  # the refusal is in; now another thread asks
        second = pool.submit(lambda: clients.clients[1].repository("octo/b"))
        assert first.result()["full_name"] == "octo/a"
        assert second.result()["full_name"] == "octo/b"
    [b] = [r for r in fake.requests if r.path == "/repos/octo/b"]
    assert b.at - refused_at >= 1.9
