"""The long-running service: every repository synced once per ``interval_minutes``.

The daemon wakes every few seconds and syncs the repositories that are due, each
under a lease in the database (``schedule``): a busy repository never waits behind quiet
ones, and several daemons on one database divide the repositories between them.

Shutdown has one path (``shutdown``). SIGTERM or SIGINT sets the stop event, which cuts
every wait short, and shuts the scheduler down. The pass in flight stops at its next unit
boundary (each unit is one transaction, so it either committed or rolled back); if it has
not within ``shutdown.GRACE_SECONDS``, the process exits anyway and the unit rolls back.
Either way nothing is lost, and the exit status is 0, as systemd expects of a stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import peewee
import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from poller import metrics, shutdown
from poller.clock import SYSTEM, Clock
from poller.config.settings import Config, Secrets
from poller.service.exposition import Exporter
from poller.service.schedule import RepoSchedule
from poller.service.startup import StartupError, wait_for_database
from poller.shutdown import Stop
from poller.store import units
from poller.sync import progress
from poller.sync.engine import Engine
from poller.sync.options import PassOptions
from poller.sync.orgs import Followed
from poller.sync.report import RepoReport

log = structlog.get_logger(__name__)

JOB_ID = "pass"
# Wake-ups: at least five per interval, and at least every 15 s, so a repository waits
# little past its due time and the period between its syncs stays near the interval.
WAKE_UPS_PER_INTERVAL = 5
LONGEST_SLEEP = timedelta(seconds=15)
MAX_BACKOFF = timedelta(minutes=30)


def notify_systemd(message: str) -> None:
    """``sd_notify`` without a library: one datagram to ``$NOTIFY_SOCKET``, if set."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    # Like sd_notify(3), a manager that is not listening (gone, or restarting) is not
    # this process's failure: the message is dropped.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        sock.sendto(message.encode(), address)


class Daemon:
    """The service: wakes on APScheduler's interval trigger, decides what is due, and
    hands it to the engine. ``wake`` is one wake-up, on the clock it was given, so tests
    drive it without the scheduler and without sleeps."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        *,
        clock: Clock = SYSTEM,
        schedule: RepoSchedule | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.clock = clock
        self.stop = engine.stop
        self.in_pass = threading.Lock()
        self.failures = 0
        self.last_pass: list[RepoReport] = []  # the last wake-up's reports, as they ended
        self.waited = False  # for the database, at start: READY=1 was sent then
        self.opening_database = False  # at start: a stop interrupts the connect
        self.interval = timedelta(minutes=config.schedule.interval_minutes)
        # Waking more often than the interval lets a repository be synced soon after it
        # is due, and lets a second poller pick up what falls due between our passes.
        self.tick = max(
            min(self.interval / WAKE_UPS_PER_INTERVAL, LONGEST_SLEEP), timedelta(seconds=0.2)
        )
        self.schedule = schedule or RepoSchedule(self.interval, clock=clock)
        self.exporter = Exporter(config, engine.github, clock)
        self.options = PassOptions(
            backfill_budget=config.sync.backfill_runs_per_pass,
            sweep_minutes=config.schedule.interval_minutes,
            metadata_minutes=config.sync.metadata_minutes,
            progress=progress.for_terminal(False, config.sync.progress_seconds, clock),
        )
        # [[orgs]]' repositories, with when they were listed: listed again each interval.
        self.org_repos: tuple[float, Followed] | None = None
        self.pollers = 1  # daemons sharing the database, and so the request budget
        self.scheduler = BlockingScheduler(
            timezone=UTC,
            job_defaults={
                # A pass that overruns the interval never overlaps the next one, and
                # passes missed while the machine slept collapse into one.
                "max_instances": 1,
                "coalesce": True,
                # APScheduler's default of 1 s silently drops a pass that starts late.
                "misfire_grace_time": max(1, int(self.tick.total_seconds())),
            },
        )
        self.scheduler.add_listener(
            self.on_scheduler_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )

    def wake(self) -> timedelta | None:
        """One wake-up: sync the repositories that are due. Returns how long to back off
        when everything failed, else None."""
        if self.stop.requested:
            return None
        with self.in_pass:
            structlog.contextvars.clear_contextvars()
            started = self.clock.monotonic()
            spent_before = self.engine.github.summary()
            try:
                with units.session(self.stop):
                    followed, unlisted = self.repos_to_sync()
                    # What listing the organisations cost, apart: no repo_done counts it.
                    listing = self.engine.github.summary(since=spent_before)
                    due = self.schedule.due(followed.repos)
                    passed = self.engine.run_pass(
                        due, self.options, gate=self.schedule, pushed_at=followed.pushed_at
                    )
                    self.last_pass = passed
                    reports = unlisted + [r for r in passed if not r.skipped]
                failed = bool(reports) and all(report.error for report in reports)
                on_database = failed and all(report.database_failed for report in reports)
            except peewee.PeeweeException as error:
                log.error("daemon.pass_failed", error=f"database: {error}")
                reports, failed, on_database, listing = [], True, True, {}
            except shutdown.Interrupted:
                return None  # stopping while the schedule's database was being reconnected
            if not reports and not failed:
                return None  # nothing was due
            log.info(
                "daemon.pass_done",
                seconds=round(self.clock.monotonic() - started, 3),
                ok=not failed,
                repos=len(reports),
                rate_limit_remaining=self.engine.github.stats.rate_remaining,
                by_credential=self.engine.github.summary(since=spent_before),
                listing_orgs_spent=sum(c["spent"] or 0 for c in listing.values()),
            )
            return self.after_pass(failed, on_database=on_database)

    def on_wake(self) -> None:
        """APScheduler's job: a wake-up, and the backoff it asks for. The textfile is
        rewritten at every wake-up, so that its freshness is never older than a tick."""
        delay = self.wake()
        self.exporter.write()
        if delay is not None:
            self.scheduler.modify_job(JOB_ID, next_run_time=self.wall_clock() + delay)

    def wall_clock(self) -> datetime:
        return self.clock.now().replace(tzinfo=UTC)

    def share_budget(self) -> int:
        """Pollers on one database spend one installation's request budget: record this
        one's heartbeat, count the live ones (a killed one counts until its leases would
        have run out), and take a part. Returns the count."""
        try:
            with units.session(self.stop):
                # Heartbeats come every wake-up whatever the passes do, so a poller
                # silent for four of them is gone, and its share comes back.
                pollers = self.schedule.heartbeat(4 * self.tick)
        except (peewee.PeeweeException, shutdown.Interrupted) as error:
            log.warning("daemon.heartbeat_failed", error=str(error))
            return self.pollers
        metrics.POLLERS_SEEN.set(pollers)
        if pollers != self.pollers:
            self.pollers = pollers
            self.engine.github.share(pollers)
            log.info(
                "daemon.budget_shared",
                pollers=pollers,
                requests_per_minute=round(self.config.github.requests_per_minute / pollers, 1),
            )
        return pollers

    def beat(self) -> None:
        """The heartbeat, on a thread of its own: a long pass never delays it, so the
        other pollers see this one, and it sees them join, within a wake-up."""
        while not self.stop.wait(self.tick.total_seconds()):
            self.share_budget()

    def repos_to_sync(self) -> tuple[Followed, list[RepoReport]]:
        """``[[repos]]`` and the repositories of ``[[orgs]]``, and a report for each
        organisation that could not be listed. Organisations are listed once an interval,
        not at every tick: a new repository is picked up within an interval, at a fifth of
        the requests. After a failed listing, the next tick lists again."""
        if not self.config.orgs:
            return Followed(list(self.config.repos)), []
        now = self.clock.monotonic()
        if self.org_repos is not None and now - self.org_repos[0] < self.interval.total_seconds():
            return self.org_repos[1], []
        followed, unlisted = self.engine.repositories()
        self.org_repos = None if unlisted else (now, followed)
        return followed, unlisted

    def after_pass(self, failed: bool, *, on_database: bool = False) -> timedelta | None:
        """Back off after passes where everything failed. GitHub down: from an interval,
        doubling. The database down (a restart outlasted the units' reconnects): from the
        next wake-up, doubling up to an interval, so that it costs little more than the
        time it was down."""
        if not failed:
            self.failures = 0
            return None
        self.failures += 1
        delay: timedelta
        if on_database:
            delay = min(self.tick * 2 ** (self.failures - 1), self.interval)
        else:
            delay = min(self.interval * 2 ** (self.failures - 1), max(MAX_BACKOFF, self.interval))
        if self.stop.requested:
            return None
        log.warning("daemon.backing_off", failures=self.failures, retry_in=delay.total_seconds())
        return delay

    def first_wake(self) -> datetime:
        """Now; or, joining running pollers, two wake-ups from now: they take their
        smaller share of the budget at their next heartbeat, and claiming nothing until
        then keeps the sum within the budget."""
        joining = self.share_budget() > 1
        return self.wall_clock() + (2 * self.tick if joining else timedelta())

    def on_scheduler_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            # Expected: wake-ups are frequent, and a pass over many repositories is long.
            log.debug("daemon.pass_skipped", reason="the previous pass is still running")
        elif event.code == EVENT_JOB_MISSED:
            log.warning("daemon.pass_missed", scheduled=str(event.scheduled_run_time))
        elif event.code == EVENT_JOB_ERROR:
            # The engine contains its errors, so this is a bug; the daemon keeps going.
            log.error("daemon.pass_crashed", error=repr(getattr(event, "exception", None)))

    def on_stop(self, received: signal.Signals) -> None:
        log.info("daemon.stopping", signal=received.name)
        notify_systemd("STOPPING=1")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.opening_database:
            # Still opening the database: a connect blocks for its whole timeout in a
            # system call that Python retries after a signal (PEP 475) unless the
            # handler raises. This runs in the main thread, where the connect is.
            raise shutdown.Interrupted("stopped while opening the database")

    def run(self, open_database: Callable[[Callable[[StartupError], None]], None]) -> int:
        """Open the database and serve until stopped. The metrics listen first, so that
        a daemon waiting for its database says so (``database_readable`` 0). Raises
        MetricsError if they cannot listen, StartupError for a database that waiting
        cannot fix."""
        self.stop.install(self.on_stop)
        self.exporter.start()
        try:
            try:
                self.opening_database = True
                open_database(self.waiting_for_database)
                self.opening_database = False
            except shutdown.Interrupted:
                log.info("daemon.stopped", clean=True, waiting_for_database=True)
                return 0
            if self.waited:
                notify_systemd("STATUS=")
            return self.serve()
        finally:
            self.exporter.close()

    def waiting_for_database(self, error: StartupError) -> None:
        """The database cannot be reached yet: the service is up, and waits. Telling
        systemd READY=1 now keeps its start timeout from failing a unit that boots
        before its database; STATUS= says why it waits (``systemctl status``)."""
        if not self.waited:
            notify_systemd("READY=1")
            self.waited = True
        notify_systemd(f"STATUS=Waiting for the database: {error}")
        self.exporter.write()

    def serve(self) -> int:
        first_pass = self.first_wake()
        threading.Thread(target=self.beat, name="heartbeat", daemon=True).start()
        self.scheduler.add_job(
            self.on_wake,
            IntervalTrigger(
                seconds=self.tick.total_seconds(),
                jitter=min(self.config.schedule.jitter_seconds, self.tick.total_seconds() / 2),
            ),
            next_run_time=first_pass,
            id=JOB_ID,
        )
        log.info(
            "daemon.started",
            interval_minutes=self.config.schedule.interval_minutes,
            repos=[repo.name for repo in self.config.repos],
        )
        if not self.waited:
            notify_systemd("READY=1")
        self.scheduler.start()
        # The scheduler has stopped; let the pass in flight reach its next unit boundary.
        finished = self.in_pass.acquire(timeout=shutdown.GRACE_SECONDS)
        # A unit that did not reach its boundary in time rolls back when we exit. Before
        # that, on this thread's own connection (the hung one is the worker's), hand back
        # the leases and the heartbeat. Best effort: with the database gone, they run out.
        with (
            units.session(self.stop),
            contextlib.suppress(peewee.PeeweeException, shutdown.Interrupted),
        ):
            self.schedule.leave()
        log.info("daemon.stopped", clean=finished)
        if not finished:
            shutdown.abandon(0)
        return 0


def run_daemon(config: Config, secrets: Secrets, clock: Clock) -> int:
    stop = Stop()
    with Engine.start(config, secrets, clock, stop) as engine:
        daemon = Daemon(config, engine, clock=clock)
        return daemon.run(lambda waiting: wait_for_database(config, secrets, stop, waiting))
