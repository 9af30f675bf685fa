"""``python -m poller status``: where each repository stands, read from the database.

It opens the database read-only, and spends at most one request per credential (the
token, or each App installation that covers a followed repository), ``GET /rate_limit``,
which GitHub does not count and which may fail without failing the command.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import peewee

from poller.config.settings import Config, RepoConfig
from poller.github.client import GitHub
from poller.github.errors import GitHubError, describe
from poller.github.pool import GitHubPool
from poller.rules.cursors import to_cursor
from poller.rules.plan import RunCursors
from poller.store.models import Job, SyncStatus, WorkflowRun, database
from poller.store.moves import current_name
from poller.store.rows import all_cursors
from poller.store.runs import count_runs_up_to, unfinished_runs

RECENT = timedelta(days=7)


def backfill_state(repo: RepoConfig, cursors: Mapping[str, str | None], stored: int) -> str:
    state = RunCursors.parse(cursors)
    if state.oldest is None:
        return "not started"
    done = state.backfill_done(repo, stored)
    if done:
        return f"done ({done})"
    target = f"{repo.since.date()}" if repo.since else "the first run"
    return f"pending: reached {to_cursor(state.oldest)}, going back to {target}"


@dataclass(frozen=True)
class RepoStatus:
    """One repository's line of ``status``, and its object in ``status --json``."""

    repo: str
    freshness_seconds: int | None
    last_pass_ok: bool
    last_pass: str | None
    last_success: str | None
    last_error: str | None
    # The last pass's requests: those the rate limit counted, and the free 304s.
    requests_spent: int | None
    requests_not_modified: int | None
    runs_last_week: int  # created in the last 7 days: what shows it is mirroring
    runs_unfinished: int
    backfill: str
    cursors: dict[str, str]
    moved_to: str | None
    labels_without_os: dict[str, int]


@dataclass(frozen=True)
class Status:
    """What ``status`` reports: each repository, the stalest first, and the rate limit
    of each credential (``rate_limit``: the first of them, as older readers expect)."""

    repos: list[RepoStatus]
    rate_limit: dict[str, Any]
    rate_limits: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Snapshot:
    """What status reads once for every repository, not once per repository: at 1,000
    repositories each query a repository is another second."""

    statuses: Mapping[str, SyncStatus]
    cursors: Mapping[str, Mapping[str, str]]  # every repository's, by resource
    unfinished: Counter[str]  # runs not completed, through the index on status
    # Runs created in the last week, through the index on createtime: how much it
    # mirrors now, read as fast at a year of history as on the first day.
    last_week: Counter[str]

    @classmethod
    def read(cls, now: datetime) -> Snapshot:
        recent: list[tuple[str, int]] = list(
            WorkflowRun.select(WorkflowRun.repo, peewee.fn.COUNT(WorkflowRun.id))
            .where(WorkflowRun.createtime >= now - RECENT)
            .group_by(WorkflowRun.repo)
            .tuples()  # type: ignore[arg-type]
        )
        return cls(
            statuses={row.repo: row for row in SyncStatus.select()},
            cursors=all_cursors(),
            unfinished=Counter(run["repo"] for run in unfinished_runs()),
            last_week=Counter({repo: int(count) for repo, count in recent}),
        )


def repo_status(repo: RepoConfig, now: datetime, config: Config, read: Snapshot) -> RepoStatus:
    """One repository's line."""
    # The entry's own name keeps its status row; its history is stored under the name
    # GitHub gave the repository when it moved.
    stored_as = current_name(repo.name, read.cursors.get(repo.name, {}))
    cursors = read.cursors.get(stored_as, {})
    status = read.statuses.get(repo.name)
    stored = count_runs_up_to(stored_as, repo.max_runs)
    return RepoStatus(
        repo=repo.name,
        freshness_seconds=freshness(status, now),
        last_pass_ok=RepoHealth.of(status, now, config).last_pass_ok,
        last_pass=_iso(status.lastpass) if status else None,
        last_success=_iso(status.lastsuccess) if status else None,
        last_error=status.lasterror if status else None,
        requests_spent=status.requests if status else None,
        requests_not_modified=status.notmodified if status else None,
        runs_last_week=read.last_week[stored_as],
        runs_unfinished=read.unfinished[stored_as],
        backfill=backfill_state(repo, cursors, stored),
        cursors=dict(sorted(cursors.items())),
        moved_to=stored_as if stored_as != repo.name else None,
        labels_without_os=labels_without_os(stored_as, now - RECENT),
    )


def freshness(status: SyncStatus | None, now: datetime) -> int | None:
    """How old the state held for a repository is, in seconds: everything up to its last
    successful sync is in. None if none succeeded yet."""
    if status is None or status.lastsuccess is None:
        return None
    return int((now - status.lastsuccess).total_seconds())


@dataclass(frozen=True)
class RepoHealth:
    """The one rule of a repository's health, which ``status``'s exit status, ``status
    --check`` and the metrics' ``last_pass_ok`` all apply: its last sync succeeded, and
    one has, no longer ago than ``stale_after_minutes``."""

    freshness: int | None  # seconds since its last successful sync; None: none yet
    error: str | None  # its last sync's error, if that sync failed
    stale: bool

    @classmethod
    def of(cls, status: SyncStatus | None, now: datetime, config: Config) -> RepoHealth:
        seconds = freshness(status, now)
        return cls(
            freshness=seconds,
            error=status.lasterror if status else None,
            stale=seconds is not None and seconds > config.stale_after_minutes * 60,
        )

    @property
    def last_pass_ok(self) -> bool:
        return self.freshness is not None and self.error is None

    @property
    def healthy(self) -> bool:
        return self.last_pass_ok and not self.stale


def last_syncs(config: Config) -> list[tuple[RepoConfig, SyncStatus | None]]:
    """Each followed repository with its sync status, if it has one, in one query (on
    the caller's connection)."""
    rows = {row.repo: row for row in SyncStatus.select()}
    return [(repo, rows.get(repo.name)) for repo in followed(config)]


def labels_without_os(repo: str, since: datetime) -> dict[str, int]:
    """The label sets of the jobs created ``since`` whose OS nothing told (skipped jobs
    never ran), with how many jobs asked for each: what to map in ``[runner_os]``. A
    label mapped since is resolved in stored jobs by the next pass."""
    jobs = peewee.fn.COUNT(Job.id)
    query = (
        Job.select(Job.labels, jobs.alias("jobs"))
        .where(
            (Job.repo == repo)
            & Job.os.is_null()
            & (Job.createtime >= since)
            & ((Job.conclusion != "skipped") | Job.conclusion.is_null())
        )
        .group_by(Job.labels)
        .order_by(jobs.desc())
        .tuples()
    )
    rows: list[tuple[str | None, int]] = list(query)  # type: ignore[arg-type]
    return {labels or "(no labels)": int(count) for labels, count in rows}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def rate_limit(gh: GitHub) -> dict[str, Any]:
    try:
        limit = gh.rate_limit()
    except Exception as error:
        return {"error": describe(error)}
    if limit is None:
        return {"error": "GitHub's /rate_limit gave no core limit"}
    return {"remaining": limit.remaining, "limit": limit.limit, "reset": _iso(limit.reset)}


def followed(config: Config) -> list[RepoConfig]:
    """``[[repos]]``, and the repositories of ``[[orgs]]`` that a pass has synced (status
    reads the database, and does not ask GitHub which repositories an organisation has)."""
    repos = list(config.repos)
    named = {repo.name.lower() for repo in repos}
    for org in config.orgs:
        synced = SyncStatus.select(SyncStatus.repo).where(
            SyncStatus.repo.startswith(f"{org.name}/")
        )
        for row in synced.order_by(SyncStatus.repo):
            if row.repo.lower() not in named:
                repos.append(dataclasses.replace(org.template, name=row.repo))
                named.add(row.repo.lower())
    return repos


def rate_limits(pool: GitHubPool, repos: list[RepoConfig]) -> dict[str, dict[str, Any]]:
    """The rate limit of each credential that reads a followed repository: each App
    installation has its own."""
    limits: dict[str, dict[str, Any]] = {}
    for owner in dict.fromkeys(repo.name.split("/", 1)[0].lower() for repo in repos):
        try:
            credential = pool.credential(owner)
        except GitHubError as error:  # the App is not installed there, or unlistable
            limits[owner] = {"error": describe(error)}
            continue
        if credential.name not in limits:
            with credential.lend() as gh:
                limits[credential.name] = rate_limit(gh)
    return limits


def read_status(config: Config, pool: GitHubPool, now: datetime) -> Status:
    """Each repository's state, the stalest first (never synced counts as stalest)."""
    repos_followed, repos = stored_status(config, now)
    limits = rate_limits(pool, repos_followed)
    first = next(iter(limits.values()), {"error": "no repository followed"})
    return Status(repos, first, limits)


def stored_status(config: Config, now: datetime) -> tuple[list[RepoConfig], list[RepoStatus]]:
    """What the database says of each followed repository, the stalest first: every
    read ``status`` makes, on one connection."""
    with database.connection_context():
        repos_followed = followed(config)
        read = Snapshot.read(now)
        repos = [repo_status(repo, now, config, read) for repo in repos_followed]
    repos.sort(
        key=lambda repo: -(repo.freshness_seconds if repo.freshness_seconds is not None else 2**62)
    )
    return repos_followed, repos


def health(config: Config, now: datetime) -> tuple[bool, str]:
    """``status --check``: whether every followed repository is fresher than
    ``stale_after_minutes`` and its last sync succeeded, and one line that says so."""
    limit = int(config.stale_after_minutes * 60)
    with database.connection_context():
        repos = last_syncs(config)
    problems: dict[str, list[str]] = {"stale": [], "failed": [], "never synced": []}
    stalest = 0
    for repo, row in repos:
        verdict = RepoHealth.of(row, now, config)
        if verdict.error:
            problems["failed"].append(f"{repo.name}: {verdict.error}")
        if verdict.freshness is None:
            problems["never synced"].append(repo.name)
            continue
        stalest = max(stalest, verdict.freshness)
        if verdict.stale:
            problems["stale"].append(f"{repo.name} {age(verdict.freshness)}")
    if not repos:
        return False, "CRITICAL: no repository synced yet"
    found = [f"{len(names)} {kind} ({'; '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
             for kind, names in problems.items() if names]  # fmt: skip
    if found:
        return (
            False,
            f"CRITICAL: of {repositories(len(repos))}, {', '.join(found)}; limit {age(limit)}",
        )
    return True, (
        f"OK: {repositories(len(repos))} fresh, the stalest {age(stalest)} old (limit {age(limit)})"
    )


def repositories(count: int) -> str:
    return f"{count} repositor{'y' if count == 1 else 'ies'}"


def age(seconds: int | None) -> str:
    """``3d4h``, ``2h05m``, ``4m12s``: how long ago, for the table."""
    if seconds is None:
        return "never"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s"


def cell(repo: RepoStatus, key: str) -> object:
    """A column of the table: a field of the repository's status, or its age."""
    return age(repo.freshness_seconds) if key == "age" else getattr(repo, key)


def render_json(report: Status) -> str:
    return json.dumps(dataclasses.asdict(report), indent=2)


def render_table(report: Status) -> str:
    columns = [
        ("repo", "REPO"),
        ("age", "AGE"),
        ("last_success", "LAST SUCCESS"),
        ("runs_last_week", "RUNS 7D"),
        ("runs_unfinished", "UNFINISHED"),
        ("requests_spent", "SPENT"),
        ("requests_not_modified", "304s"),
        ("backfill", "BACKFILL"),
        ("last_error", "LAST ERROR"),
    ]
    rows = [
        [str(value if (value := cell(repo, key)) is not None else "-") for key, _ in columns]
        for repo in report.repos
    ]
    header = [title for _, title in columns]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]
    lines.append("")
    for repo in report.repos:
        cursors = ", ".join(f"{k}={v}" for k, v in repo.cursors.items()) or "none"
        lines.append(f"{repo.repo} cursors: {cursors}")
        if repo.moved_to:
            lines.append(
                f"{repo.repo} moved on GitHub to {repo.moved_to}, where its history is: "
                f'set name = "{repo.moved_to}" in config.toml'
            )
        unknown = ", ".join(f"{k} ({v} jobs)" for k, v in repo.labels_without_os.items())
        if unknown:
            lines.append(
                f"{repo.repo} labels that named no OS (map them in config.toml "
                f"[runner_os]): {unknown}"
            )
    for name, limit in report.rate_limits.items():
        whose = "" if name == "token" else f" ({name})"
        if "error" in limit:
            lines.append(f"GitHub rate limit{whose}: unknown ({limit['error']})")
        else:
            lines.append(
                f"GitHub rate limit{whose}: {limit['remaining']} of {limit['limit']} left, "
                f"resets {limit['reset']}"
            )
    return "\n".join(lines)
