"""Several pollers on one MariaDB database divide the repositories through leases and due
times: none is synced twice within an interval, and a killed poller's repositories are
taken over. The schedule runs on the test's clock, so hours pass in no wall time."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from mariadb import MariaDB
from poller.config.settings import RepoConfig
from poller.service.schedule import RepoSchedule
from poller.shutdown import Stop
from poller.store import units
from poller.store.models import PollerHeartbeat, SyncSchedule
from poller.store.schema import ensure_schema
from support import FakeClock


class Poller:
    """A poller as the schedule sees it, on the test's clock: it wakes each tick at its
    own phase, and each wake-up syncs one due repository (a sync lasts a tick)."""

    def __init__(self, clock: FakeClock, phase: timedelta) -> None:
        self.schedule = RepoSchedule(INTERVAL, clock=clock)
        self.clock = clock
        self.next_wake = clock.now() + phase
        self.synced: list[tuple[str, datetime]] = []
        self.pollers_seen: list[int] = []

    def wake(self, repos: list[RepoConfig], *, killed: bool = False) -> str | None:
        """The repository synced, if any; ``killed``: the poller dies during its sync."""
        self.next_wake = self.clock.now() + TICK
        self.pollers_seen.append(self.schedule.heartbeat(4 * TICK))
        for repo in self.schedule.due(repos):
            if self.schedule.claim(repo.name):
                self.synced.append((repo.name, self.clock.now()))
                if not killed:  # a killed poller never releases its lease
                    self.schedule.done(repo.name, finished=True)
                return repo.name
        return None


INTERVAL = timedelta(minutes=5)
TICK = INTERVAL / 5


@pytest.mark.mariadb
def test_pollers_divide_the_work_and_take_over_a_killed_one(mariadb_server: MariaDB):
    """Two pollers on one database, hours on the test's clock: they divide the
    repositories, none is synced twice within an interval, and when one is killed
    holding a lease, the other takes everything over within two intervals."""
    database = mariadb_server.create_database("divide")
    repos = [RepoConfig(f"octo/r{i}") for i in range(8)]
    clock = FakeClock(datetime(2026, 12, 1, 8))
    start = clock.now()
    a, b = Poller(clock, timedelta()), Poller(clock, TICK / 2)
    # After six intervals, a dies in the middle of its next sync, holding that lease.
    killed_at: datetime | None = None
    held = None
    with database.open() as db:
        ensure_schema(db)
        while clock.now() < start + 12 * INTERVAL:
            for poller in (a, b) if killed_at is None else (b,):
                if poller.next_wake > clock.now():
                    continue
                dying = poller is a and clock.now() >= start + 6 * INTERVAL
                synced = poller.wake(repos, killed=dying)
                if dying and synced:
                    killed_at, held = clock.now(), synced
            clock.advance(timedelta(seconds=1))
        # A clean stop hands back the leases and leaves; the killed one's heartbeat stays
        # until it is a day old.
        b.schedule.leave()
        assert PollerHeartbeat.select().count() == 1

    assert killed_at is not None and held is not None
    before = [(repo, at) for repo, at in a.synced + b.synced if at < killed_at]
    # Both pollers took a share of the repositories, and between them covered them all.
    assert {repo for repo, _ in a.synced} and {repo for repo, at in b.synced if at < killed_at}
    assert {repo for repo, _ in before} == {repo.name for repo in repos}
    by_repo: dict[str, list[datetime]] = defaultdict(list)
    for repo, at in sorted(a.synced + b.synced, key=lambda sync: sync[1]):
        by_repo[repo].append(at)
    for repo, moments in by_repo.items():
        gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
        assert all(gap >= INTERVAL for gap in gaps), (repo, gaps)
    # After the kill, the survivor syncs every repository within two intervals: the
    # lease the dead poller holds runs out after two, and not before.
    for repo in repos:
        after = [at for name, at in b.synced if name == repo.name and at >= killed_at]
        assert after and after[0] - killed_at <= 2 * INTERVAL + TICK, (repo.name, after)
    taken_over = min(at for name, at in b.synced if name == held and at > killed_at)
    assert 2 * INTERVAL < taken_over - killed_at <= 2 * INTERVAL + TICK
    # They counted each other while both were alive, and the survivor counts itself
    # alone once the killed one missed four heartbeats.
    assert 2 in b.pollers_seen[: len(a.pollers_seen)]
    assert b.pollers_seen[-1] == 1


@pytest.mark.mariadb
def test_racing_claims_have_one_winner_and_no_error(mariadb_server: MariaDB):
    """Six pollers claim the same 40 repositories at once, twice over (new rows, then
    existing ones). Each repository goes to exactly one of them, and no claim raises."""
    database = mariadb_server.create_database("racing_claims")
    names = [f"octo/r{i}" for i in range(40)]

    def claim_all(schedule: RepoSchedule, start: threading.Barrier) -> list[str]:
        with units.session(Stop()):
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
