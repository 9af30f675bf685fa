"""Sync one repository: workflows, branches and commits here, runs in ``runs``.

Workflows and branches are mirrored as a set; a branch's commits are read newest first
down to the head stored last time. ``passes`` runs this for every repository.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from poller import shutdown, store, transform
from poller.config import Config, RepoConfig
from poller.github import GitHub
from poller.locks import NoLocks, RepoLocks
from poller.progress import NoProgress, Progress
from poller.runs import RunDiscovery
from poller.store import Counts

log = structlog.get_logger(__name__)

HTTP_CACHE_DAYS = timedelta(days=7)
TABLES = ("workflows", "branches", "commits", "workflowruns", "jobs", "workflowrun_attempts")


@dataclass
class RepoReport:
    repo: str
    counts: dict[str, Counts] = field(default_factory=lambda: {t: Counts() for t in TABLES})
    error: str | None = None
    # Requests that counted against the rate limit, and free 304 answers.
    requests_spent: int = 0
    requests_not_modified: int = 0
    seconds: float = 0.0
    backfill_pending: bool = False
    # Why the repository was not synced at all this pass (another process's lock).
    skipped: str | None = None
    # A stop request ended its sync part-way.
    stopped: bool = False
    # GitHub could not be reached (no answer at all, unlike an error status).
    unreachable: bool = False

    def summary(self) -> dict[str, dict[str, int]]:
        return {
            table: {
                "inserted": c.inserted,
                "updated": c.updated,
                "unchanged": c.unchanged,
                "deleted": c.deleted,
            }
            for table, c in self.counts.items()
        }


ProgressFactory = Callable[[str, Callable[[], int]], Progress]


@dataclass
class PassOptions:
    """How a pass runs. ``backfill_budget`` of None means: finish the backfill.
    ``sweep_share`` is the share of the re-run horizon's older windows re-read this pass
    (1: all of it, as ``--once`` does; the daemon spreads it over ``rerun_sweep_minutes``).
    ``progress`` makes a repository's progress report from its name and a count of the
    requests it has sent."""

    backfill_budget: int | None = None
    sweep_share: float = 1.0
    progress: ProgressFactory = lambda repo, requests: NoProgress()
    locks: RepoLocks = field(default_factory=NoLocks)


class RepoSync:
    """Syncs one repository."""

    def __init__(
        self,
        gh: GitHub,
        config: Config,
        repo: RepoConfig,
        now: datetime,
        *,
        options: PassOptions,
        report: RepoReport,
        progress: Progress,
    ) -> None:
        self.gh = gh
        self.sync = config.sync
        self.repo = repo
        self.name = repo.name
        self.now = now
        self.options = options
        self.report = report
        self.progress = progress

    def check_stop(self) -> None:
        """Between units of work: a stop request ends the sync here, never inside one."""
        shutdown.check()

    def count(self, table: str, counts: Counts) -> None:
        self.report.counts[table].add(counts)

    def run(self) -> None:
        info = self.gh.repository(self.name)
        self.repo_created = transform.parse_time(info.get("created_at")) or datetime(2008, 1, 1)
        store.ensure_repo(self.name)
        self.sync_workflows()
        heads = self.sync_branches()
        default_branch = info.get("default_branch")
        for branch in dict.fromkeys([default_branch, *self.repo.branches]):
            if branch is None:
                continue
            if branch not in heads:
                log.warning("sync.branch_missing", branch=branch)
                continue
            self.sync_commits(branch, heads[branch])
        RunDiscovery(
            self.gh,
            self.sync,
            self.repo,
            self.now,
            report=self.report,
            progress=self.progress,
            backfill_budget=self.options.backfill_budget,
            sweep_share=self.options.sweep_share,
        ).run(self.repo_created)

    # --- workflows, branches, commits ---

    def sync_workflows(self) -> None:
        patterns = self.repo.docker_workflows
        rows = [
            transform.workflow_row(item, self.name, patterns)
            for item in self.gh.workflows(self.name)
        ]
        self.count("workflows", store.mirror_workflows(self.name, rows))

    def sync_branches(self) -> dict[str, str | None]:
        rows = [transform.branch_row(item, self.name) for item in self.gh.branches(self.name)]
        self.count("branches", store.mirror_branches(self.name, rows))
        return {row["name"]: row["commithash"] for row in rows}

    def sync_commits(self, branch: str, head: str | None) -> None:
        """New commits of ``branch``, newest first, down to the head we saw last time."""
        resource = f"commits:{branch}"
        last_head = store.get_cursor(self.name, resource)
        if head is not None and head == last_head:
            return
        taken = 0
        new_head: str | None = None
        for page in self.gh.commit_pages(self.name, branch):
            self.check_stop()
            rows = []
            done = not page
            for item in page:
                new_head = new_head or item["sha"]
                row = transform.commit_row(item, self.name)
                done = (
                    item["sha"] == last_head
                    or taken >= self.repo.max_commits
                    or bool(self.repo.since and row["time"] and row["time"] < self.repo.since)
                )
                if done:
                    break
                rows.append(row)
                taken += 1
            # The branch's cursor moves only with its last page: until then, a crash
            # means the next pass walks the same commits again, which writes nothing.
            cursors = {resource: new_head} if done and new_head else {}
            self.count("commits", store.save_branch_commits(self.name, rows, cursors, self.now))
            if done:
                return
        if new_head is not None:
            store.set_cursors(self.name, {resource: new_head}, self.now)
