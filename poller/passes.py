"""One pass over every configured repository, each under its lock.

One failing repository never stops the others: its error is logged with ``repo=`` and
recorded in ``sync_status``, and the pass goes on.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

import peewee
import requests
import structlog
from github import GithubException

from poller import store, units
from poller.config import Config, RepoConfig
from poller.github import GitHub, GitHubError, Interrupted, describe
from poller.locks import LockLost
from poller.sync import HTTP_CACHE_DAYS, PassOptions, RepoReport, RepoSync, Stopping, utcnow

log = structlog.get_logger(__name__)


def run_pass(
    config: Config,
    gh: GitHub,
    options: PassOptions | None = None,
    *,
    now: datetime | None = None,
) -> list[RepoReport]:
    """Sync every configured repository once. One failing repository never stops the rest."""
    options = options or PassOptions()
    reports = []
    for repo in config.repos:
        if options.should_stop():
            break
        structlog.contextvars.bind_contextvars(repo=repo.name)
        try:
            report = sync_repo(config, gh, repo, options, now or utcnow())
        finally:
            structlog.contextvars.unbind_contextvars("repo")
        if report is not None:
            reports.append(report)
    with contextlib.suppress(peewee.PeeweeException):
        store.prune_http_cache((now or utcnow()) - HTTP_CACHE_DAYS)
    return reports


def connect_github(config: Config, token: str | None) -> GitHub:
    """The GitHub client, with its ETags kept in the database."""
    gh = GitHub(config.github, token)
    gh.cache = store.HttpCacheStore(gh.identity)
    return gh


def sync_repo(
    config: Config, gh: GitHub, repo: RepoConfig, options: PassOptions, now: datetime
) -> RepoReport | None:
    """One repository under its lock; None when another process holds the lock."""
    report = RepoReport(repo.name)
    started, sent_before = time.monotonic(), gh.stats.sent
    try:
        locked = options.locks.acquire(repo.name)
    except Exception as error:
        locked, report.error = False, f"could not take the repository lock: {error}"
    if not locked and report.error is None:
        log.warning("sync.repo_skipped", reason="another shark-poller process holds its lock")
        return None
    progress = options.progress(repo.name)
    stopped = False
    if locked:
        guard = units.write_guard.set(lambda: options.locks.verify(repo.name))
        try:
            RepoSync(gh, config, repo, now, options=options, report=report, progress=progress).run()
        except (Stopping, Interrupted):
            stopped = True
            log.info("sync.repo_stopped", reason="shutdown requested")
        except peewee.PeeweeException as error:
            report.error = f"database: {error}"
            log.error("sync.repo_failed", error=report.error)
        except Exception as error:
            report.error = describe(error)
            log.error("sync.repo_failed", error=report.error, exc_info=not _expected(error))
        finally:
            units.write_guard.reset(guard)
            progress.close()
            options.locks.release(repo.name)
    report.requests = gh.stats.sent - sent_before
    report.seconds = round(time.monotonic() - started, 3)
    if not stopped:
        try:
            store.record_pass(
                repo.name,
                now,
                error=report.error,
                requests=report.requests,
                rate_remaining=gh.stats.rate_remaining,
            )
        except peewee.PeeweeException as error:
            log.error("sync.status_not_saved", error=str(error))
    log.info(
        "sync.repo_done",
        ok=report.error is None and not stopped,
        counts=report.summary(),
        requests=report.requests,
        rate_limit_remaining=gh.stats.rate_remaining,
        seconds=report.seconds,
        backfill_pending=report.backfill_pending,
    )
    return report


def _expected(error: Exception) -> bool:
    """Errors from the outside world, which need no traceback in the log."""
    return isinstance(error, GitHubError | GithubException | requests.RequestException | LockLost)
