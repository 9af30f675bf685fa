"""The engine: one object that owns a pass's resources, for ``--once`` and the daemon alike.

It holds the GitHub client pool and the repository locks, and runs a pass: every
repository it is handed, as many at once as there are clients, each on its own
database session, through ``repo_sync``. One failing repository never stops the others.
The exception is a GitHub that does not answer at all (DNS, a refused or unreachable
connection): once one repository has found that, the rest of the pass is not tried,
rather than spending the same retries on each.

A pass knows no scheduler. The daemon decides which repositories are due and hands
them over with a ``Gate`` that claims each one just before its sync and releases it
after, so that a lease lasts as long as a sync, not as long as a pass.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol

import peewee
import structlog

from poller import metrics, shutdown
from poller.clock import SYSTEM, Clock, whole_seconds
from poller.config.settings import Config, RepoConfig, Secrets
from poller.github import pool
from poller.github.errors import GitHubError
from poller.github.pool import GitHubPool
from poller.shutdown import Stop
from poller.store import http_cache, locks, retention, units
from poller.store import rows as store
from poller.store.locks import RepoLocks
from poller.sync import orgs
from poller.sync.options import PassOptions
from poller.sync.orgs import Followed
from poller.sync.report import PassRecord, RepoReport
from poller.sync.repository import failed, not_tried, sync_repository

log = structlog.get_logger(__name__)

HTTP_CACHE_DAYS = timedelta(days=7)


class Gate(Protocol):
    """Whether this pass may sync a repository now (``claim``), and its release after."""

    def claim(self, repo: str) -> bool: ...
    def done(self, repo: str, *, finished: bool) -> None: ...


class Open:
    """``--once``: every repository handed over is synced; nothing to release."""

    def claim(self, repo: str) -> bool:
        return True

    def done(self, repo: str, *, finished: bool) -> None:
        return None


class Engine:
    def __init__(
        self, config: Config, github: GitHubPool, repo_locks: RepoLocks, clock: Clock = SYSTEM
    ) -> None:
        self.config = config
        self.github = github
        self.locks = repo_locks
        self.clock = clock
        self.stop = github.stop  # the process's: every wait of the pass ends on it

    @classmethod
    def start(cls, config: Config, secrets: Secrets, clock: Clock, stop: Stop) -> Engine:
        return cls(
            config,
            pool.connect(config, secrets.github_token, clock, stop),
            locks.for_database(config.database.url, secrets.db_password, stop),
            clock,
        )

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.github.close()
        self.locks.close()

    def now(self) -> datetime:
        return whole_seconds(self.clock.now())

    def repositories(self) -> tuple[Followed, list[RepoReport]]:
        """``[[repos]]`` and the matching repositories of ``[[orgs]]``, and a report for each
        organisation that cannot be listed, as ``org/*``, so that ``--once`` and ``status``
        say so."""
        if not self.config.orgs:
            return Followed(list(self.config.repos)), []
        followed = orgs.resolve(self.config, self.github)
        now, reports = self.now(), []
        for org in self.config.orgs:
            report = RepoReport(f"{org.name}/*", error=followed.failed.get(org.name))
            if report.error:
                reports.append(report)
            with contextlib.suppress(peewee.PeeweeException, shutdown.Interrupted):
                store.record_org(report.repo, now, report.error)
        return followed, reports

    def run_all(
        self,
        options: PassOptions | None = None,
        *,
        now: datetime | None = None,
        record: PassRecord | None = None,
    ) -> list[RepoReport]:
        """Every configured repository, the ``[[orgs]]`` listed first: what ``--once``
        syncs. Organisations that cannot be listed are reported first, in ``record``
        too."""
        record = record or PassRecord()
        followed, unlisted = self.repositories()
        record.repos.extend(followed.repos)
        record.reports.extend(unlisted)
        passed = self.run_pass(
            followed.repos, options, now=now, record=record, pushed_at=followed.pushed_at
        )
        return unlisted + passed

    def run_pass(
        self,
        repos: Sequence[RepoConfig],
        options: PassOptions | None = None,
        *,
        gate: Gate | None = None,
        now: datetime | None = None,
        record: PassRecord | None = None,
        pushed_at: Mapping[str, str] | None = None,
    ) -> list[RepoReport]:
        """Sync each of ``repos`` once (``pushed_at``: what the organisations' listings
        said of them, ``orgs.Followed``). Returns a report for each repository the pass
        reached (also in ``record`` as each one ends); after a stop request, the
        repositories it did not reach have none. Worker threads open database sessions
        of their own; the caller's thread uses, and closes, the caller's."""
        run = _Pass(
            self, options or PassOptions(), gate or Open(), now or self.now(), record, pushed_at
        )
        started = self.clock.monotonic()
        run.sync_all(repos)
        if run.reports:
            metrics.PASS_SECONDS.observe(self.clock.monotonic() - started)
        with contextlib.suppress(peewee.PeeweeException):
            http_cache.prune_http_cache(run.now - HTTP_CACHE_DAYS)
        self.prune_jobs(run.now)
        return run.reports

    def prune_jobs(self, now: datetime) -> None:
        days = self.config.sync.jobs_retention_days
        if not days:
            return
        try:
            pruned = retention.prune_jobs(now - timedelta(days=days))
        except peewee.PeeweeException as error:  # the next pass tries again
            log.warning("sync.prune_failed", error=str(error))
            return
        if pruned:
            log.info("sync.jobs_pruned", jobs=pruned, older_than_days=days)


class _Pass:
    """One pass's state: its reports, and whether GitHub has been found unreachable."""

    def __init__(
        self,
        engine: Engine,
        options: PassOptions,
        gate: Gate,
        now: datetime,
        record: PassRecord | None,
        pushed_at: Mapping[str, str] | None,
    ) -> None:
        self.engine = engine
        self.record = record
        self.pushed_at: Mapping[str, str] = pushed_at or {}
        self.options = options
        self.gate = gate
        self.now = now
        self.reports: list[RepoReport] = []  # this pass's, in the order they ended
        self.unreachable: str | None = None  # the first error that found GitHub unreachable
        self.caller = threading.current_thread()

    def sync_all(self, repos: Sequence[RepoConfig]) -> None:
        workers = self.engine.github.concurrency
        if workers == 1:
            for repo in repos:
                self.sync_one(repo)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="repo") as executor:
            for future in [executor.submit(self.sync_one, repo) for repo in repos]:
                future.result()

    def sync_claimed(self, repo: RepoConfig) -> RepoReport:
        try:
            lent = self.engine.github.for_repo(repo.name)
        except GitHubError as error:  # no credential reads it: the App is not installed
            return failed(repo, str(error), self.now)
        with lent as gh:
            if self.unreachable is not None:
                return not_tried(repo, self.unreachable, self.now)
            return sync_repository(
                self.engine.config,
                gh,
                repo,
                options=self.options,
                locks=self.engine.locks,
                now=self.now,
                clock=self.engine.clock,
                pushed_at=self.pushed_at.get(repo.name),
            )

    def sync_one(self, repo: RepoConfig) -> None:
        if self.engine.stop.requested:
            return
        # Each worker thread has its own context, its own connection and its own client;
        # run inline, the caller's connection is the caller's to close.
        structlog.contextvars.bind_contextvars(repo=repo.name)
        own = threading.current_thread() is not self.caller
        own_session = units.session(self.engine.stop) if own else None
        try:
            with own_session or contextlib.nullcontext():
                if not self.gate.claim(repo.name):
                    return  # not due, or another poller has it
                report = self.sync_claimed(repo)
                self.gate.done(repo.name, finished=not report.stopped)
            self.reports.append(report)
            if self.record is not None:
                self.record.reports.append(report)
            metrics.REPO_SYNCS.labels(outcome_of(report)).inc()
            metrics.BACKFILL_PENDING.labels(report.repo).set(int(report.backfill_pending))
            if report.unreachable and self.unreachable is None:
                self.unreachable = report.error
        finally:
            structlog.contextvars.unbind_contextvars("repo")


def outcome_of(report: RepoReport) -> str:
    """A sync's outcome, as ``shark_poller_repo_syncs_total`` counts it."""
    if report.skipped:
        return "skipped"
    if report.stopped:
        return "stopped"
    return "failed" if report.error else "ok"
