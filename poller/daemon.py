"""The long-running service: one pass at start, then one every ``interval_minutes``."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType

import peewee
import structlog
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from poller.config import Config, Secrets
from poller.github import GitHub
from poller.sync import run_pass

log = structlog.get_logger(__name__)


def run_daemon(config: Config, secrets: Secrets, db: peewee.Database) -> int:
    stop = threading.Event()
    gh = GitHub(config.github, secrets.github_token)
    interval_seconds = config.schedule.interval_minutes * 60
    scheduler = BlockingScheduler(
        timezone=UTC,
        job_defaults={
            # A pass that overruns the interval is never run twice at once, and runs that
            # were missed while the machine slept collapse into one.
            "max_instances": 1,
            "coalesce": True,
            # APScheduler's default of 1 s silently drops a run that starts late.
            "misfire_grace_time": int(interval_seconds),
        },
    )

    def one_pass() -> None:
        structlog.contextvars.clear_contextvars()
        with db.connection_context():
            run_pass(
                config,
                gh,
                backfill_budget=config.sync.backfill_runs_per_pass,
                should_stop=stop.is_set,
            )

    def on_signal(signum: int, _: FrameType | None) -> None:
        log.info("daemon.stopping", signal=signal.Signals(signum).name)
        stop.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler.add_job(
        one_pass,
        IntervalTrigger(seconds=interval_seconds, jitter=config.schedule.jitter_seconds),
        next_run_time=datetime.now(UTC),
        id="pass",
    )
    log.info(
        "daemon.started",
        interval_minutes=config.schedule.interval_minutes,
        repos=[repo.name for repo in config.repos],
    )
    scheduler.start()
    gh.close()
    log.info("daemon.stopped")
    return 0
