"""Sync one repository under its lock, and say how it went (``RepoReport``).

In order: the repository's row, stored jobs that a changed ``runner_os`` map now
resolves, the metadata when it is due (``metadata``), and the runs (``RunSync``). A run
new to us that shows a push means branches and commits moved: the metadata is read then
too. Every error is contained here: it is logged with ``repo=`` and recorded in
``sync_status``, and the pass goes on with the next repository.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from datetime import datetime, timedelta

import peewee
import requests
import structlog
from github import GithubException

from poller import shutdown
from poller.clock import SYSTEM, Clock
from poller.config.settings import Config, RepoConfig
from poller.github.client import GitHub
from poller.github.errors import GitHubError, describe
from poller.rules import cursors, runner_os
from poller.rules.cursors import from_cursor
from poller.store import moves as repo_moves
from poller.store import rows as store
from poller.store import runs as run_store
from poller.store import units
from poller.store.history import backfill_pending
from poller.store.locks import LockLost, RepoLocks
from poller.store.state import load_state
from poller.sync.metadata import MetadataSync, settings_fingerprint
from poller.sync.options import PassOptions
from poller.sync.progress import Progress
from poller.sync.report import RepoReport, RunsSynced, no_counts
from poller.sync.runners import RunnerDirectory
from poller.sync.runs import RunSync

log = structlog.get_logger(__name__)

METADATA_AT_LEAST = timedelta(days=1)  # how often, when pushed_at tells what changed


def sync_repository(
    config: Config,
    gh: GitHub,
    repo: RepoConfig,
    *,
    options: PassOptions,
    locks: RepoLocks,
    now: datetime,
    clock: Clock = SYSTEM,
    pushed_at: str | None = None,
) -> RepoReport:
    """One repository under its lock; skipped when another process holds the lock.
    ``pushed_at``: its organisation's listing's, if it has one (``orgs.Followed``)."""
    report = RepoReport(repo.name)
    started = clock.monotonic()
    sent_before, free_before = gh.stats.sent, gh.stats.not_modified
    try:
        locked = locks.acquire(repo.name)
    except shutdown.Interrupted:
        locked, report.stopped = False, True
    except Exception as error:
        locked, report.error = False, f"could not take the repository lock: {error}"
        report.database_failed = True
        log.error("sync.repo_failed", error=report.error)
    if not locked and report.error is None:
        report.skipped = "another shark-poller process holds its lock"
        log.warning("sync.repo_skipped", reason=report.skipped)
        return report
    if locked:
        progress = options.progress(repo.name, lambda: gh.stats.sent - sent_before)
        try:
            with units.guarded(lambda: locks.verify(repo.name)):
                sync = RepoSync(gh, config, repo, now, options, progress, pushed_at)
                sync_locked(sync, report)
        finally:
            progress.close()
            locks.release(repo.name)
    report.requests_not_modified = gh.stats.not_modified - free_before
    report.requests_spent = gh.stats.sent - sent_before - report.requests_not_modified
    report.seconds = round(clock.monotonic() - started, 3)
    if not report.stopped:
        record(report, now, gh.stats.rate_remaining)
    log_done(report, gh)
    return report


def sync_locked(sync: RepoSync, report: RepoReport) -> None:
    """The sync itself, its errors turned into the report's outcome."""
    try:
        sync.run()
    except shutdown.Interrupted:
        report.stopped = True
        log.info("sync.repo_stopped", reason="shutdown requested")
    except peewee.PeeweeException as error:
        report.error, report.database_failed = f"database: {error}", True
        log.error("sync.repo_failed", error=report.error)
    except Exception as error:
        report.error = describe(error)
        report.unreachable = isinstance(error, requests.ConnectionError)
        log.error("sync.repo_failed", error=report.error, exc_info=not expected(error))
    # What was stored before an error or a stop counts too.
    report.take(sync.counts_so_far())
    if report.stopped:
        # Cut short, the sync never decided; the cursors say where the history stands.
        with contextlib.suppress(peewee.PeeweeException, shutdown.Interrupted):
            report.backfill_pending = backfill_pending(sync.repo)


class RepoSync:
    """The steps of one repository's sync, in order."""

    def __init__(
        self,
        gh: GitHub,
        config: Config,
        repo: RepoConfig,
        now: datetime,
        options: PassOptions,
        progress: Progress,
        pushed_at: str | None = None,
    ) -> None:
        self.gh = gh
        self.config = config
        self.pushed_at = pushed_at  # its organisation's listing's; None for [[repos]]
        self.entry = repo.name  # as config.toml names it
        # Where GitHub moved it, if a pass found it moved: its rows are stored there.
        repo = dataclasses.replace(repo, name=repo_moves.current_name(repo.name))
        self.repo = repo
        self.name = repo.name
        self.now = now
        self.options = options
        self.progress = progress
        # Loaded once: the steps below read their cursors here, and save through it.
        self.state = load_state(self.name)
        self.metadata = MetadataSync(gh, repo, now, self.state, pushed_at)
        label_map = config.label_map(repo)
        self.runs = RunSync(
            gh,
            repo,
            config.sync,
            now,
            job_os=RunnerDirectory(gh, self.name, label_map, now, self.state).job_os,
            progress=progress,
            state=self.state,
            ci_per_repository=config.metrics.ci_per_repository if config.metrics.ci else None,
        )

    def run(self) -> None:
        if self.name != self.entry:
            self.say_moved()
        store.ensure_repo(self.name)
        self.apply_label_map()
        metadata_due = self.metadata_due()
        if metadata_due:
            self.metadata.sync()
        synced = self.runs.sync(
            backfill_budget=self.options.backfill_budget, sweep_minutes=self.sweep_minutes()
        )
        if synced.pushed and not metadata_due:
            # A new run of a push or a pull request: something was pushed, so branches,
            # commits and perhaps workflow files moved. Nothing else would tell us.
            self.metadata.sync()
        self.follow_move()

    def follow_move(self) -> None:
        """When GitHub redirected this repository's URLs (it was renamed or transferred),
        its history moves to the new name, and later passes ask for it by that name."""
        repository_id = self.gh.moves.moved_id(self.name)
        if repository_id is None:
            return
        new = str(self.gh.repository_by_id(repository_id)["full_name"])
        if new == self.name:
            return
        rows = repo_moves.move_repository(self.name, new, entry=self.entry, now=self.now)
        self.gh.settle_move(self.name, new)
        log.info("sync.repo_history_moved", old=self.name, new=new, rows=rows)
        self.name = new
        self.say_moved()

    def say_moved(self) -> None:
        log.warning(
            "sync.repo_moved",
            old=self.entry,
            new=self.name,
            hint=f"GitHub moved {self.entry} to {self.name}, and its history is stored "
            f'under the new name: set name = "{self.name}" in config.toml',
        )

    def counts_so_far(self) -> RunsSynced:
        """What the sync stored, so far or in all: the runs' and the metadata's counts
        added up into a new ``RunsSynced``; neither is changed, so asking twice is safe."""
        done = self.runs.done
        merged = no_counts()
        for source in (done.counts, self.metadata.counts):
            for model, counts in source.items():
                merged[model].add(counts)
        return dataclasses.replace(done, counts=merged)

    def apply_label_map(self) -> None:
        """When ``runner_os`` changed since the last pass, stored jobs it now resolves get
        their OS, so the operator's map fixes history too, at no GitHub request."""
        label_map = self.config.label_map(self.repo)
        fingerprint = json.dumps(label_map.rules)
        if self.state.get(cursors.RUNNER_OS_MAP) == fingerprint:
            return
        fixed = run_store.resolve_unknown_oses(
            self.name, lambda labels: runner_os.labels_os(labels, label_map)
        )
        if fixed:
            log.info("sync.jobs_os_resolved", jobs=fixed, by="runner_os")
        self.state.save({cursors.RUNNER_OS_MAP: fingerprint}, self.now)

    def sweep_minutes(self) -> float:
        """This pass's minutes of the sweeps: the options', or, paced, the minutes since
        the repository's last pass (all of it on the first)."""
        if self.options.sweep_minutes is not None:
            return self.options.sweep_minutes
        last = self.state.last_pass
        if last is None:
            return math.inf
        return max(0.0, (self.now - last) / timedelta(minutes=1))

    def metadata_due(self) -> bool:
        """Repository, workflows and branches change only with a push: the daemon re-reads
        them when a run shows one, and at least every ``metadata_minutes``. For a
        repository of an ``[[orgs]]`` listing, whose ``pushed_at`` tells when anything was
        pushed, it re-reads them when that moved, and at least daily."""
        every = self.options.metadata_minutes
        positions = self.state.cursors
        last = from_cursor(positions.get(cursors.REPO_METADATA))
        if every is None or last is None:
            return True
        if positions.get(cursors.REPO_SETTINGS) != settings_fingerprint(self.repo):
            return True  # config.toml changed what the metadata holds
        if self.pushed_at is not None:
            moved = self.pushed_at != positions.get(cursors.REPO_PUSHED_AT)
            return moved or self.now - last >= METADATA_AT_LEAST
        return self.now - last >= timedelta(minutes=every)


def failed(repo: RepoConfig, error: str, now: datetime) -> RepoReport:
    """The report of a repository that could not be started, for ``error``."""
    report = RepoReport(repo.name, error=error)
    log.error("sync.repo_failed", error=error)
    record(report, now, None)
    return report


def not_tried(repo: RepoConfig, reason: str | None, now: datetime) -> RepoReport:
    """The report of a repository the pass did not try: GitHub did not answer another."""
    report = failed(repo, f"not tried: GitHub is unreachable ({reason})", now)
    report.unreachable = True
    return report


def log_done(report: RepoReport, gh: GitHub) -> None:
    log.debug("sync.repo_counts", counts=report.summary())
    log.info(
        "sync.repo_done",
        ok=report.error is None and not report.stopped,
        error=report.error,
        counts=report.summary(),
        requests_spent=report.requests_spent,
        requests_not_modified=report.requests_not_modified,
        rate_limit_remaining=gh.stats.rate_remaining,
        seconds=report.seconds,
        backfill_pending=report.backfill_pending,
        jobs_os_unknown=report.jobs_os_unknown,
    )


def record(report: RepoReport, now: datetime, rate_remaining: int | None) -> None:
    """The outcome in ``sync_status``, where ``status`` reads it."""
    try:
        store.record_pass(
            report.repo,
            now,
            error=report.error,
            requests_spent=report.requests_spent,
            requests_not_modified=report.requests_not_modified,
            rate_remaining=rate_remaining,
        )
    except peewee.PeeweeException as error:
        log.error("sync.status_not_saved", error=str(error))


def expected(error: Exception) -> bool:
    """Errors from the outside world, which need no traceback in the log."""
    return isinstance(error, GitHubError | GithubException | requests.RequestException | LockLost)
