"""Several daemons on one MariaDB database divide the repositories through leases and due
times: none is synced twice within an interval, and a killed poller's repositories are
taken over. Real processes, a real SIGKILL."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from fake_github import FakeGitHub
from mariadb import MariaDB
from poller import units
from poller.config import RepoConfig
from poller.models import PollerHeartbeat, SyncSchedule
from poller.schedule import RepoSchedule
from poller.schema import ensure_schema
from support import LogTail, PollerSetup
from test_daemon import small_repo

INTERVAL = 3.0  # seconds


def syncs(daemon: LogTail) -> list[tuple[str, float]]:
    return [
        (event["repo"], datetime.fromisoformat(event["timestamp"]).timestamp())
        for event in daemon.events("sync.repo_done")
    ]


@pytest.mark.mariadb
def test_pollers_divide_the_work_and_take_over_a_killed_one(
    fake: FakeGitHub, tmp_path, mariadb_server: MariaDB
):
    names = [f"octo/r{i}" for i in range(8)]
    for name in names:
        small_repo(fake, name, runs=2)
    database = mariadb_server.create_database("divide")
    daemons = []
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        setup = PollerSetup(
            tmp_path / label, fake.url, database, repos=[{"name": n} for n in names]
        )
        setup.schedule = {"interval_minutes": INTERVAL / 60, "jitter_seconds": 0}
        daemons.append(LogTail(setup.popen()))
        time.sleep(INTERVAL / 2)  # different phases, as two VMs would have
    a, b = daemons
    time.sleep(4 * INTERVAL)
    with database.open():
        assert PollerHeartbeat.select().count() == 2
    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=10)
    killed = time.time()
    time.sleep(3 * INTERVAL)
    b.process.send_signal(signal.SIGTERM)
    assert b.process.wait(timeout=30) == 0
    # The two shared the request budget, and the survivor took all of it back once the
    # killed one's heartbeat ran out; a clean stop removes the poller's own heartbeat.
    shared = [event["pollers"] for event in b.events("daemon.budget_shared")]
    assert shared[-2:] == [2, 1], shared
    # The one that joined claimed nothing before the one running had taken its half.
    [halved, *_] = [e for e in a.events("daemon.budget_shared") if e["pollers"] == 2]
    first_claim = min(moment - s["seconds"] for s, (_, moment) in zip(
        b.events("sync.repo_done"), syncs(b), strict=True))  # fmt: skip
    assert first_claim >= datetime.fromisoformat(halved["timestamp"]).timestamp()
    with database.open():
        assert PollerHeartbeat.select().count() == 1  # the killed one's, until it expires

    by_repo: dict[str, list[float]] = defaultdict(list)
    for repo, moment in syncs(a) + syncs(b):
        by_repo[repo].append(moment)
    # Both pollers took a share of the repositories, and between them covered them all.
    share_a = {repo for repo, _ in syncs(a)}
    share_b = {repo for repo, moment in syncs(b) if moment < killed}
    assert share_a and share_b and share_a | share_b == set(names)
    for repo, moments in by_repo.items():
        moments.sort()
        gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
        # Claims are an interval apart at least; the logged end of a sync may vary a bit.
        assert all(gap >= INTERVAL - 0.5 for gap in gaps), (repo, gaps)
    # After the kill, the survivor syncs every repository within two intervals (a lease
    # held by the dead poller runs out after two).
    for name in names:
        after = [moment for repo, moment in syncs(b) if repo == name and moment > killed]
        assert after and after[0] - killed <= 2 * INTERVAL + 1.5, (name, after)


@pytest.mark.mariadb
def test_racing_claims_have_one_winner_and_no_error(mariadb_server: MariaDB):
    """Six pollers claim the same 40 repositories at once, twice over (new rows, then
    existing ones). Each repository goes to exactly one of them, and no claim raises."""
    database = mariadb_server.create_database("racing_claims")
    names = [f"octo/r{i}" for i in range(40)]

    def claim_all(schedule: RepoSchedule, start: threading.Barrier) -> list[str]:
        with units.session():
            start.wait()
            return [name for name in names if schedule.claim(name)]

    with database.open() as db:
        ensure_schema(db)
        for round_ in range(2):
            schedules = [RepoSchedule(timedelta(seconds=1)) for _ in range(6)]
            for schedule in schedules:
                schedule.due([RepoConfig(name) for name in names])
            start = threading.Barrier(len(schedules))
            with ThreadPoolExecutor(len(schedules)) as pool:
                won = list(pool.map(claim_all, schedules, [start] * len(schedules)))
            assert sorted(itertools.chain(*won)) == sorted(names), round_
            past = datetime(2000, 1, 1)
            SyncSchedule.update(due=past, leaseowner=None, leaseuntil=None).execute()
