"""Sync one repository: workflows, branches and commits here, runs in ``runs``.

Workflows and branches are mirrored as a set; a branch's commits are read newest first
down to the head stored last time. ``passes`` runs this for every repository.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from poller import cursors, run_store, runner_os, shutdown, store, transform
from poller.config import Config, RepoConfig
from poller.github import GitHub
from poller.history import from_cursor, to_cursor
from poller.locks import NoLocks, RepoLocks
from poller.progress import NoProgress, Progress
from poller.report import RepoReport
from poller.runners import RunnerDirectory
from poller.runs import RunDiscovery
from poller.schedule import RepoSchedule
from poller.store import Counts

log = structlog.get_logger(__name__)

HTTP_CACHE_DAYS = timedelta(days=7)
METADATA_AT_LEAST = timedelta(days=1)  # how often, when pushed_at tells what changed
ProgressFactory = Callable[[str, Callable[[], int]], Progress]


@dataclass
class PassOptions:
    """How a pass runs. ``backfill_budget`` of None means: finish the backfill.
    ``sweep_share`` is the share of the re-run horizon's older windows re-read this pass
    (1: all of it, as ``--once`` does; the daemon spreads it over ``rerun_sweep_minutes``).
    ``metadata_minutes`` is how stale repository metadata may be before it is re-read.
    ``progress`` makes a repository's progress report from its name and a count of the
    requests it has sent."""

    backfill_budget: int | None = None
    sweep_share: float = 1.0
    # None: re-read repository, workflows and branches every pass (``--once``).
    metadata_minutes: float | None = None
    # The daemon's: sync only the repositories due, under a lease. None: all (--once).
    schedule: RepoSchedule | None = None
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
        self.config = config
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
        store.ensure_repo(self.name)
        self.apply_label_map()
        metadata_due = self.metadata_due()
        if metadata_due:
            self.sync_metadata()
        discovery = RunDiscovery(
            self.gh,
            self.sync,
            self.repo,
            self.now,
            report=self.report,
            progress=self.progress,
            backfill_budget=self.options.backfill_budget,
            sweep_share=self.options.sweep_share,
            job_os=RunnerDirectory(
                self.gh, self.name, self.config.label_map(self.repo), self.now
            ).job_os,
        )
        created = from_cursor(store.get_cursor(self.name, cursors.REPO_CREATED))
        discovery.run(created or datetime(2008, 1, 1))
        if discovery.pushed and not metadata_due:
            # A new run of a push or a pull request: something was pushed, so branches,
            # commits and perhaps workflow files moved. Nothing else would tell us.
            self.sync_metadata()

    def apply_label_map(self) -> None:
        """When ``runner_os`` changed since the last pass, stored jobs it now resolves get
        their OS, so the operator's map fixes history too, at no GitHub request."""
        label_map = self.config.label_map(self.repo)
        fingerprint = json.dumps(label_map.rules)
        if store.get_cursor(self.name, cursors.RUNNER_OS_MAP) == fingerprint:
            return
        fixed = run_store.resolve_unknown_oses(
            self.name, lambda labels: runner_os.labels_os(labels, label_map)
        )
        if fixed:
            log.info("sync.jobs_os_resolved", jobs=fixed, by="runner_os")
        store.set_cursors(self.name, {cursors.RUNNER_OS_MAP: fingerprint}, self.now)

    def metadata_due(self) -> bool:
        """Repository, workflows and branches change only with a push: the daemon re-reads
        them when a run shows one, and at least every ``metadata_minutes``. For a
        repository of an ``[[orgs]]`` listing, whose ``pushed_at`` tells when anything was
        pushed, it re-reads them when that moved, and at least daily."""
        every = self.options.metadata_minutes
        last = from_cursor(store.get_cursor(self.name, cursors.REPO_METADATA))
        if every is None or last is None:
            return True
        if self.repo.pushed_at is not None:
            moved = self.repo.pushed_at != store.get_cursor(self.name, cursors.REPO_PUSHED_AT)
            return moved or self.now - last >= METADATA_AT_LEAST
        return self.now - last >= timedelta(minutes=every)

    def sync_metadata(self) -> None:
        info = self.gh.repository(self.name)
        created = transform.parse_time(info.get("created_at")) or datetime(2008, 1, 1)
        store.set_cursors(self.name, {cursors.REPO_CREATED: to_cursor(created)}, self.now)
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
        read = {cursors.REPO_METADATA: to_cursor(self.now)}
        if self.repo.pushed_at is not None:
            read[cursors.REPO_PUSHED_AT] = self.repo.pushed_at
        store.set_cursors(self.name, read, self.now)

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
        resource = cursors.branch_commits(branch)
        last_head = store.get_cursor(self.name, resource)
        if head is not None and head == last_head:
            return
        taken = 0
        new_head: str | None = None
        # How the walk ended: at the last head (a fast-forward), at a bound, or at the
        # root of the history without meeting the last head (a force-push).
        met_last_head = cut_short = False
        for page in self.gh.commit_pages(self.name, branch):
            self.check_stop()
            rows = []
            done = not page
            for item in page:
                new_head = new_head or item["sha"]
                row = transform.commit_row(item, self.name)
                met_last_head = item["sha"] == last_head
                cut_short = taken >= self.repo.max_commits or bool(
                    self.repo.since and row["time"] and row["time"] < self.repo.since
                )
                done = met_last_head or cut_short
                if done:
                    break
                rows.append(row)
                taken += 1
            # The branch's cursor moves only with its last page: until then, a crash
            # means the next pass walks the same commits again, which writes nothing.
            positions = {resource: new_head} if done and new_head else {}
            self.count("commits", store.save_branch_commits(self.name, rows, positions, self.now))
            if done:
                break
        else:
            if new_head is not None:
                store.set_cursors(self.name, {resource: new_head}, self.now)
        if last_head is not None and new_head is not None and not met_last_head:
            self.mark_force_push(branch, last_head, new_head, cut_short=cut_short)

    def mark_force_push(
        self, branch: str, last_head: str, new_head: str, *, cut_short: bool
    ) -> None:
        """``commits.forced`` on the new head when it does not descend from the last one.
        A walk that reached the root without meeting the last head proves it; one cut
        short by ``max_commits`` or ``since`` asks GitHub's compare (one request)."""
        descends = self.gh.descends(self.name, last_head, new_head) if cut_short else False
        if descends is False:
            log.info("sync.branch_force_pushed", branch=branch, was=last_head, now=new_head)
            store.mark_forced(self.name, new_head)
