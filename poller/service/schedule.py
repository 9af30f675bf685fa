"""Per-repository schedule and leases: when each repository is due, and which poller is
syncing it, kept in the database the pollers already share (``sync_schedule``).

The daemon wakes several times per interval and syncs only the repositories that are due,
so a busy repository never waits behind a thousand quiet ones, and pollers on one
database divide the repositories among themselves: a repository is claimed by one
conditional ``UPDATE`` (due, and no live lease), which exactly one poller can win on
MariaDB, MySQL and SQLite alike. A claim holds a lease of two intervals; after a sync the
repository is due again one interval after the claim, so no repository is synced twice
within an interval. A poller that dies leaves its leases to expire, and the others take
its repositories over within about two intervals.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import peewee
import structlog

from poller import metrics, shutdown
from poller.clock import SYSTEM, Clock, whole_seconds
from poller.config.settings import RepoConfig
from poller.store import mysql
from poller.store.models import PollerHeartbeat, SyncSchedule
from poller.store.units import bookkeeping

log = structlog.get_logger(__name__)


def ceil_second(moment: datetime) -> datetime:
    """Databases keep whole seconds; rounding up keeps "not before" true."""
    floor = moment.replace(microsecond=0)
    return floor if floor == moment else floor + timedelta(seconds=1)


class RepoSchedule:
    """This poller's view of the schedule: what is due, and the leases it holds. It is
    the engine's ``Gate``: ``claim`` before a repository's sync, ``done`` after."""

    def __init__(
        self, interval: timedelta, owner: str | None = None, clock: Clock = SYSTEM
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.lease = max(2 * interval, timedelta(seconds=2))
        # Whose leases these are: unique per process, readable in the table.
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.claimed: dict[str, datetime] = {}
        self.scheduled: set[str] = set()  # repositories with a row (lower case)

    def due(self, repos: Sequence[RepoConfig]) -> list[RepoConfig]:
        """The repositories worth claiming now: due and not leased, new ones first, then
        the longest overdue. One read, so that a tick over a thousand repositories that
        are not due costs the database one query rather than a thousand claims."""
        now = self.clock.now()
        schedule = scheduled()
        self.scheduled = set(schedule)
        never = datetime.min
        waiting = []
        for repo in repos:
            due, lease_until = schedule.get(repo.name.lower(), (never, None))
            if due <= now and (lease_until is None or lease_until < now):
                waiting.append((due, repo))
        return [repo for _, repo in sorted(waiting, key=lambda pair: pair[0])]

    def heartbeat(self, alive_for: timedelta) -> int:
        """Record that this poller is alive; how many pollers are, counting those seen
        within ``alive_for`` (this one included)."""
        return beat(self.owner, whole_seconds(self.clock.now()), alive_for)

    def leave(self) -> None:
        """On a stop: hand back the leases still held (a sync abandoned mid-request),
        due at once, and leave, so the other pollers take the repositories and their
        share of the budget back now rather than when the lease and heartbeat run out."""
        release_all(self.owner, whole_seconds(self.clock.now()))
        remove_poller(self.owner)

    def claim(self, repo: str) -> bool:
        """Take the repository if it is due and nobody holds it. Losing a row lock to
        another poller's claim of the same repository (a deadlock or a lock wait on
        MySQL, a busy SQLite) means it is theirs: that is no error."""
        now = self.clock.now()
        try:
            if repo.lower() not in self.scheduled:
                add_repo(repo, now)
            won = claim_repo(repo, self.owner, now, ceil_second(now + self.lease))
        except peewee.OperationalError as error:
            if not lost_to_another(error):
                raise
            log.info("schedule.claim_lost", repo=repo, error=str(error))
            return False
        if won:
            self.claimed[repo] = now
            metrics.LEASES_HELD.set(len(self.claimed))
        return won

    def done(self, repo: str, *, finished: bool) -> None:
        """Release the repository: due an interval after its claim, or at once when a
        stop request cut its sync short. If the database is gone, or a stop request cuts
        the reconnects short, the lease runs out by itself: no reason to fail the pass."""
        claimed_at = self.claimed.pop(repo)
        metrics.LEASES_HELD.set(len(self.claimed))
        due = ceil_second(claimed_at + self.interval) if finished else claimed_at
        try:
            release_repo(repo, self.owner, due)
        except (peewee.PeeweeException, shutdown.Interrupted) as error:
            log.warning("schedule.release_failed", error=str(error))


def lost_to_another(error: peewee.OperationalError) -> bool:
    code = mysql.error_code(error)
    return code in (mysql.LOCK_WAIT_TIMEOUT, mysql.DEADLOCK) or "locked" in str(error)


@bookkeeping
def add_repo(repo: str, now: datetime) -> None:
    """A row for a repository first seen, due now. Its own transaction: an ``INSERT
    IGNORE`` that meets an existing row holds a shared lock on it, and two pollers each
    holding one and then updating the row would deadlock."""
    # Whole seconds: MySQL 8 would round a fraction up, into the future.
    SyncSchedule.insert(repo=repo, due=now.replace(microsecond=0)).on_conflict_ignore().execute()


@bookkeeping
def claim_repo(repo: str, owner: str, now: datetime, lease_until: datetime) -> bool:
    """Lease ``repo`` to ``owner`` if it is due and unleased; True if this call won."""
    claimed = (
        SyncSchedule.update(leaseowner=owner, leaseuntil=lease_until)
        .where(
            (SyncSchedule.repo == repo)
            & (SyncSchedule.due <= now)
            & (SyncSchedule.leaseuntil.is_null() | (SyncSchedule.leaseuntil < now))
        )
        .execute()
    )
    return bool(claimed == 1)


@bookkeeping
def release_repo(repo: str, owner: str, due: datetime) -> None:
    SyncSchedule.update(due=due, leaseowner=None, leaseuntil=None).where(
        (SyncSchedule.repo == repo) & (SyncSchedule.leaseowner == owner)
    ).execute()


@bookkeeping
def scheduled() -> dict[str, tuple[datetime, datetime | None]]:
    """Every scheduled repository (lower case) with its due time and lease end."""
    query = SyncSchedule.select(SyncSchedule.repo, SyncSchedule.due, SyncSchedule.leaseuntil)
    return {row.repo.lower(): (row.due, row.leaseuntil) for row in query}


@bookkeeping
def beat(owner: str, now: datetime, alive_for: timedelta) -> int:
    PollerHeartbeat.insert(owner=owner, seen=now).on_conflict_ignore().execute()
    PollerHeartbeat.update(seen=now).where(PollerHeartbeat.owner == owner).execute()
    # A poller not seen for a day is gone for good; its row goes, rather than pile up.
    PollerHeartbeat.delete().where(PollerHeartbeat.seen < now - timedelta(days=1)).execute()
    alive = PollerHeartbeat.select().where(PollerHeartbeat.seen >= now - alive_for).count()
    return max(1, int(alive))


@bookkeeping
def release_all(owner: str, due: datetime) -> None:
    SyncSchedule.update(due=due, leaseowner=None, leaseuntil=None).where(
        SyncSchedule.leaseowner == owner
    ).execute()


@bookkeeping
def remove_poller(owner: str) -> None:
    PollerHeartbeat.delete().where(PollerHeartbeat.owner == owner).execute()
