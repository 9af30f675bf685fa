"""``python -m poller --once``: one catch-up pass over every repository, on the engine the
daemon uses, that a signal stops within a couple of seconds; its exit status says how
the pass went."""

from __future__ import annotations

import sys

import structlog

from poller import metrics, shutdown
from poller.clock import Clock
from poller.config.settings import (
    Config,
    RepoConfig,
    Secrets,
)
from poller.service.exposition import Exporter
from poller.service.startup import EXIT_OK, EXIT_REPO_FAILED, EXIT_SKIPPED
from poller.shutdown import Stop
from poller.store import units
from poller.sync import progress
from poller.sync.engine import Engine
from poller.sync.options import PassOptions
from poller.sync.report import PassRecord, RepoReport

log = structlog.get_logger("poller")


def run_once(config: Config, secrets: Secrets, clock: Clock, *, full: bool = False) -> int:
    """One catch-up pass over every repository, on the engine the daemon uses. It finishes
    any backfill. Unless ``full``, it reads the share of the sweep due since each
    repository's last pass, and metadata when due, as the daemon would: from the state in
    the database, so cron's cadence, whatever it is, costs what the daemon's would."""
    stop = Stop()
    with Engine.start(config, secrets, clock, stop) as engine:
        options = PassOptions.once(
            config.sync,
            full=full,
            progress=progress.for_terminal(
                sys.stderr.isatty(), config.sync.progress_seconds, clock
            ),
        )
        # The pass runs on a worker; what it has done is read here, even if it is cut short.
        record = PassRecord()

        def work() -> None:
            with units.session(stop):
                engine.run_all(options, record=record)

        stop.install(lambda received: log.info("pass.stopping", signal=received.name))
        finished = stop.run_in_worker(work, "pass")
        reports = list(record.reports)
        if finished:
            # Cron's metrics, for node_exporter. A --once is no daemon: it shares no
            # budget, so it does not say how many daemons do.
            metrics.REGISTRY.unregister(metrics.POLLERS_SEEN)
            Exporter(config, engine.github, clock).write()
        if stop.requested:
            interrupted(record.repos, reports, stop, finished=finished)
            return stop.exit_status()
        return pass_done(reports, engine)


def interrupted(
    repos: list[RepoConfig], reports: list[RepoReport], stop: Stop, *, finished: bool
) -> None:
    """Say what a stopped ``--once`` left undone; exit at once if its unit is hung."""
    done = {report.repo for report in reports if not report.stopped}
    received = stop.received()
    log.warning(
        "pass.interrupted",
        signal=received.name if received else None,
        unfinished=[repo.name for repo in repos if repo.name not in done],
        failed=[report.repo for report in reports if report.error],
        # A unit of work that did not reach its boundary in time rolls back.
        abandoned_unit=not finished,
    )
    if not finished:
        shutdown.abandon(stop.exit_status())


def pass_done(reports: list[RepoReport], engine: Engine) -> int:
    failed = [report.repo for report in reports if report.error]
    skipped = [report.repo for report in reports if report.skipped]
    stats = engine.github.stats
    log.info(
        "pass.done",
        repos=len(reports),
        failed=failed,
        skipped=skipped,
        requests_spent=stats.spent,
        requests_not_modified=stats.not_modified,
        rate_limit_remaining=stats.rate_remaining,
        by_credential=engine.github.summary(),
    )
    if failed:
        return EXIT_REPO_FAILED
    return EXIT_SKIPPED if skipped else EXIT_OK
