"""One pass over every configured repository, each under its lock.

One failing repository never stops the others: its error is logged with ``repo=`` and
recorded in ``sync_status``, and the pass goes on. The exception is a GitHub that does not
answer at all (DNS, a refused or unreachable connection): once one repository has found
that, the rest of the pass is not tried, rather than spending the same retries on each.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import peewee
import requests
import structlog
from github import GithubException

from poller import cache, orgs, shutdown, store, units
from poller.clients import GitHubClients
from poller.config import Config, RepoConfig
from poller.github import GitHub
from poller.github_errors import GitHubError, describe
from poller.governor import Governor
from poller.history import backfill_pending, utcnow
from poller.locks import LockLost
from poller.report import RepoReport
from poller.schedule import RepoSchedule
from poller.sync import HTTP_CACHE_DAYS, PassOptions, RepoSync

log = structlog.get_logger(__name__)


def run_pass(
    config: Config,
    github: GitHub | GitHubClients,
    options: PassOptions | None = None,
    *,
    now: datetime | None = None,
    reports: list[RepoReport] | None = None,
    repos: Sequence[RepoConfig] | None = None,
) -> list[RepoReport]:
    """Sync every configured repository once, as many at once as there are clients. One
    failing repository never stops the rest.

    Returns a report for each repository the pass reached, appended to ``reports`` as
    each one ends, so that a caller that gives up waiting still knows which did. After a
    stop request, the repositories the pass did not reach have none. ``repos`` is the
    list to sync, when the caller has resolved ``[[orgs]]`` already.
    """
    options = options or PassOptions()
    reports = [] if reports is None else reports
    clients = github if isinstance(github, GitHubClients) else GitHubClients([github])
    moment = now or utcnow()
    caller = threading.current_thread()
    unreachable: list[str | None] = []  # the first error that found GitHub unreachable

    def one(repo: RepoConfig) -> None:
        if shutdown.requested.is_set():
            return
        # Each worker thread has its own context, its own connection and its own client;
        # run inline, the caller's connection is the caller's to close.
        structlog.contextvars.bind_contextvars(repo=repo.name)
        own_session = units.session() if threading.current_thread() is not caller else None
        try:
            with own_session or contextlib.nullcontext(), clients.client() as gh:
                schedule = options.schedule
                if schedule is not None and not schedule.claim(repo.name):
                    return  # not due, or another poller has it
                if unreachable:
                    report = not_tried(repo, unreachable[0], moment)
                else:
                    report = sync_repo(config, gh, repo, options, moment)
                if schedule is not None:
                    release(schedule, repo.name, finished=not report.stopped)
            reports.append(report)
            if report.unreachable and not unreachable:
                unreachable.append(report.error)
        finally:
            structlog.contextvars.unbind_contextvars("repo")

    if repos is None:
        repos = resolve_repos(config, clients, reports)
    if options.schedule is not None:
        repos = options.schedule.due(repos)
    if len(clients) == 1:
        for repo in repos:
            one(repo)
    else:
        with ThreadPoolExecutor(len(clients), thread_name_prefix="repo") as executor:
            for future in [executor.submit(one, repo) for repo in repos]:
                future.result()
    with contextlib.suppress(peewee.PeeweeException):
        cache.prune_http_cache(moment - HTTP_CACHE_DAYS)
    return reports


def release(schedule: RepoSchedule, repo: str, *, finished: bool) -> None:
    """End the repository's lease. If the database is gone, or a stop request cuts the
    reconnects short, the lease runs out by itself; that is no reason to fail the pass."""
    try:
        schedule.done(repo, finished=finished)
    except (peewee.PeeweeException, shutdown.Interrupted) as error:
        log.warning("schedule.release_failed", error=str(error))


def resolve_repos(
    config: Config, clients: GitHubClients, reports: list[RepoReport]
) -> list[RepoConfig]:
    """``[[repos]]`` and the matching repositories of ``[[orgs]]``. An organisation that
    cannot be listed is reported as failed, as ``org/*``, so that ``--once`` says so."""
    if not config.orgs:
        return list(config.repos)
    with clients.client() as gh:
        repos, failed = orgs.resolve(config, gh)
    now = utcnow()
    for org in config.orgs:
        # As ``org/*`` in sync_status, so that status shows an organisation that failed.
        report = RepoReport(f"{org.name}/*", error=failed.get(org.name))
        if report.error:
            reports.append(report)
        with contextlib.suppress(peewee.PeeweeException, shutdown.Interrupted):
            store.record_org(report.repo, now, report.error)
    return repos


def connect_github(config: Config, token: str | None) -> GitHubClients:
    """One client per repository synced at once, sharing a governor and the ETags kept
    in the database."""
    governor = Governor(config.github.requests_per_minute, config.github.concurrency)
    clients = []
    for _ in range(config.github.concurrency):
        gh = GitHub(config.github, token, governor)
        gh.cache = cache.HttpCacheStore(gh.identity)
        clients.append(gh)
    pool = GitHubClients(clients)
    if not pool.authenticated:
        log.warning(
            "github.unauthenticated",
            message="GITHUB_TOKEN is not set: running unauthenticated, "
            "which GitHub limits to 60 requests an hour",
        )
    return pool


def not_tried(repo: RepoConfig, reason: str | None, now: datetime) -> RepoReport:
    report = RepoReport(repo.name, error=f"not tried: GitHub is unreachable ({reason})")
    report.unreachable = True
    log.error("sync.repo_failed", error=report.error)
    _record(report, now, None)
    return report


def sync_repo(
    config: Config, gh: GitHub, repo: RepoConfig, options: PassOptions, now: datetime
) -> RepoReport:
    """One repository under its lock; skipped when another process holds the lock."""
    report = RepoReport(repo.name)
    started = time.monotonic()
    sent_before, free_before = gh.stats.sent, gh.stats.not_modified
    try:
        locked = options.locks.acquire(repo.name)
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
        guard = units.write_guard.set(lambda: options.locks.verify(repo.name))
        try:
            RepoSync(gh, config, repo, now, options=options, report=report, progress=progress).run()
        except shutdown.Interrupted:
            report.stopped = True
            log.info("sync.repo_stopped", reason="shutdown requested")
            # Cut short, the sync never decided; the cursors say where the history stands.
            with contextlib.suppress(peewee.PeeweeException, shutdown.Interrupted):
                report.backfill_pending = backfill_pending(repo)
        except peewee.PeeweeException as error:
            report.error, report.database_failed = f"database: {error}", True
            log.error("sync.repo_failed", error=report.error)
        except Exception as error:
            report.error = describe(error)
            report.unreachable = isinstance(error, requests.ConnectionError)
            log.error("sync.repo_failed", error=report.error, exc_info=not _expected(error))
        finally:
            units.write_guard.reset(guard)
            progress.close()
            options.locks.release(repo.name)
    report.requests_not_modified = gh.stats.not_modified - free_before
    report.requests_spent = gh.stats.sent - sent_before - report.requests_not_modified
    report.seconds = round(time.monotonic() - started, 3)
    if not report.stopped:
        _record(report, now, gh.stats.rate_remaining)
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
    return report


def _record(report: RepoReport, now: datetime, rate_remaining: int | None) -> None:
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


def _expected(error: Exception) -> bool:
    """Errors from the outside world, which need no traceback in the log."""
    return isinstance(error, GitHubError | GithubException | requests.RequestException | LockLost)
