"""Sync one repository: fetch, diff, write, advance the cursors.

Workflow runs are the hard part. Their cursors say which stretch of ``created_at`` is
fully stored: every run created in ``[runs.oldest, runs.newest]`` is in the database.

* **Live.** Each pass lists runs created since ``runs.newest`` less an overlap (runs show
  up in listings a little late), reaching back at least ``lookback_days`` because a
  re-run keeps its ``created_at``. Only runs whose status, attempt or ``updated_at``
  moved cost a jobs request.
* **Unfinished.** Runs stored as not completed and older than the live window are
  fetched one by one until they complete.
* **Backfill.** Older history is listed newest first below ``runs.oldest``, down to the
  repository's ``since``/``max_runs`` bounds, a bounded slice per daemon pass.

GitHub lets a filtered listing reach 1,000 runs: the backfill restarts each listing at
the oldest run reached, and an oversized live window is halved by ``created``. Rows and
the cursor that covers them commit in one transaction, so a crash resumes exactly where
the last commit left off. ``passes`` runs this for every repository.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from poller import shutdown, store, transform
from poller.config import Config, RepoConfig
from poller.github import PER_PAGE, RESULT_CAP, GitHub, GitHubError, Response
from poller.locks import NoLocks, RepoLocks
from poller.progress import NoProgress, Progress
from poller.store import Counts

log = structlog.get_logger(__name__)

NEWEST = "runs.newest"
OLDEST = "runs.oldest"
HISTORY_START = "runs.history_start"
REACHED = "reached"
HTTP_CACHE_DAYS = timedelta(days=7)
ACTIVE_STATUSES = ("queued", "in_progress", "waiting", "requested", "pending")
TABLES = ("workflows", "branches", "commits", "workflowruns", "jobs", "workflowrun_attempts")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def to_cursor(moment: datetime) -> str:
    return moment.isoformat()


def from_cursor(position: str | None) -> datetime | None:
    return datetime.fromisoformat(position) if position else None


def floor_day(moment: datetime) -> datetime:
    # A live window that starts at midnight keeps the listing's URL the same from one pass
    # to the next all day, which is what lets a conditional request answer 304.
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def backfill_done(
    repo: RepoConfig, oldest: datetime, history_reached: bool, stored: int
) -> str | None:
    """Why the backfill has nothing left to do under the repository's bounds, or None."""
    if history_reached:
        return "whole history"
    if repo.since is not None and oldest <= repo.since:
        return f"since {repo.since.date()}"
    if repo.max_runs is not None and stored >= repo.max_runs:
        return f"{repo.max_runs} runs"
    return None


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
    ``progress`` makes a repository's progress report from its name and a count of the
    requests it has sent."""

    backfill_budget: int | None = None
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
        self.backfill_budget = options.backfill_budget
        # What the backfill may still store in this pass: runs (budget), new runs (room).
        self.budget: int | None = None
        self.room: int | None = None
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
        self.sync_runs()

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

    # --- workflow runs ---

    def sync_runs(self) -> None:
        newest = from_cursor(store.get_cursor(self.name, NEWEST))
        oldest = from_cursor(store.get_cursor(self.name, OLDEST))
        if newest is None or oldest is None:
            # First sight: nothing is stored yet, so the stored stretch is empty at "now".
            newest = oldest = self.now
        lookback = self.now - timedelta(days=self.sync.lookback_days)
        overlap = timedelta(minutes=self.sync.overlap_minutes)
        live_start = max(oldest, floor_day(min(newest - overlap, lookback)))

        self.sync_live_runs(live_start, oldest)
        if oldest < self.now:  # not on first sight: then nothing is stored to re-run
            self.sync_active_runs(oldest)
        self.sync_unfinished_runs(live_start)
        self.backfill_runs(oldest)

    def sync_live_runs(self, start: datetime, oldest: datetime) -> None:
        for first, _, high in self.run_windows(start, None):
            for page in self.window_pages(first):
                self.store_runs(page)
            # Everything created up to the window's end is stored; on an open-ended window
            # that is everything created before the listing began.
            covered = high or self.now
            store.set_cursors(
                self.name, {NEWEST: to_cursor(covered), OLDEST: to_cursor(oldest)}, self.now
            )

    def sync_active_runs(self, oldest: datetime) -> None:
        """Runs GitHub lists as active, whatever their age: this is how a re-run of a run
        older than the lookback is seen (a re-run keeps its created_at). Runs older than
        the stored stretch are the backfill's business, and bounded by max_runs."""
        for status in ACTIVE_STATUSES:
            for page in self.gh.run_pages_by_status(self.name, status):
                self.progress.advance(listed=len(page))
                covered = [
                    run
                    for run in page
                    if (transform.parse_time(run.get("created_at")) or oldest) >= oldest
                ]
                if covered:
                    self.store_runs(covered)

    def sync_unfinished_runs(self, live_start: datetime) -> None:
        for gitid in store.unfinished_runs(self.name, live_start):
            run = self.gh.run(self.name, gitid)
            if run is None:
                log.info("sync.run_deleted", run_id=gitid)
                store.delete_run(gitid)
                self.report.counts["workflowruns"].deleted += 1
                continue
            self.store_runs([run])

    def backfill_runs(self, oldest: datetime) -> None:
        """Store runs created before ``oldest``, newest first, within the budget and bounds."""
        history_reached = store.get_cursor(self.name, HISTORY_START) == REACHED
        stored = store.count_runs(self.name)
        if backfill_done(self.repo, oldest, history_reached, stored):
            return
        if self.gh.budget_low():
            self.defer_backfill()
            return
        self.budget = self.backfill_budget
        self.room = None if self.repo.max_runs is None else self.repo.max_runs - stored
        low = self.repo.since or self.repo_created
        for page in self.pages_newest_first(low, oldest):
            if not self.backfill_page(page):
                return
        # The listing is exhausted: the stored stretch now reaches the lower bound.
        bounds = {OLDEST: to_cursor(low)}
        if self.repo.since is None:
            bounds[HISTORY_START] = REACHED
        store.set_cursors(self.name, bounds, self.now)

    def pages_newest_first(self, low: datetime, high: datetime) -> Iterator[list[dict[str, Any]]]:
        """Every run created in ``[low, high]``, newest first, a page at a time.

        GitHub lets a filtered listing reach its first 1,000 runs only. Since it lists
        newest first, the next listing simply starts at the oldest run reached (that
        second is listed again, for runs that share it). No request is wasted on probes.
        """
        while True:
            first = self.gh.runs_first_page(self.name, low, high)
            total = int(first.data.get("total_count", 0))
            previous: datetime | None = None
            for page in self.window_pages(first, max_pages=RESULT_CAP // PER_PAGE):
                for run in page:
                    created = transform.parse_time(run.get("created_at")) or low
                    if previous is not None and created > previous:
                        raise GitHubError(
                            "the runs listing is not newest first; the "
                            "backfill cannot resume from a cursor"
                        )
                    previous = created
                yield page
            if total <= RESULT_CAP or previous is None:
                return
            if previous >= high:
                # 1,000 runs in one second: step past it rather than loop forever.
                log.warning("sync.runs_second_capped", second=high)
                previous = high - timedelta(seconds=1)
            high = previous

    def backfill_page(self, page: list[dict[str, Any]]) -> bool:
        """Store one page of older runs; False once the backfill stops for this pass."""
        if self.gh.budget_low():
            self.defer_backfill()
            return False
        # Runs already stored (the boundary second, legacy rows) cost no jobs request
        # unless they moved, and don't count against max_runs.
        known = store.stored_runs([run["id"] for run in page])
        kept = []
        for run in page:
            if run["id"] not in known:
                if self.room is not None and self.room <= 0:
                    break
                self.room = None if self.room is None else self.room - 1
            kept.append(run)
            if self.budget is not None and len(kept) >= self.budget:
                break
        stored_now = self.store_runs(kept, backfill_cursor=OLDEST, stored=known) if kept else kept
        if len(stored_now) < len(kept):
            return False  # deferred: the rate-limit reserve is reached
        if self.room is not None and self.room <= 0:
            return False
        if self.budget is not None:
            self.budget -= len(kept)
            if self.budget <= 0:
                self.report.backfill_pending = True
                return False
        return True

    def run_windows(
        self, low: datetime, high: datetime | None
    ) -> Iterator[tuple[Response, datetime, datetime | None]]:
        """``created`` windows, oldest first, that each hold at most 1,000 runs, with their
        first page. An oversized window is halved; its first page, spent to learn
        ``total_count``, is the only request a split wastes. (The live window needs them
        oldest first, so that ``runs.newest`` can advance window by window.)
        """
        first = self.gh.runs_first_page(self.name, low, high)
        total = int(first.data.get("total_count", 0))
        upper = high or self.now
        if total <= RESULT_CAP or upper - low < timedelta(seconds=2):
            if total > RESULT_CAP:
                log.warning("sync.runs_window_capped", total=total, low=low, high=upper)
            yield first, low, high
            return
        middle = low + (upper - low) / 2
        middle = middle.replace(microsecond=0)
        yield from self.run_windows(low, middle)
        yield from self.run_windows(middle + timedelta(seconds=1), upper)

    def window_pages(
        self, first: Response, max_pages: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        pages = self.gh.runs_next_pages(first, max_pages)
        for page in itertools.chain([list(first.data["workflow_runs"])], pages):
            self.progress.advance(listed=len(page))
            yield page

    def store_runs(
        self,
        runs: list[dict[str, Any]],
        *,
        backfill_cursor: str | None = None,
        stored: dict[int, dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Fetch jobs for runs that moved since we stored them, then write in one go.

        For the backfill (``backfill_cursor`` names its cursor), the page is cut short when
        the rate-limit reserve is reached; the cursor then covers only the runs stored.
        Returns the runs stored. ``stored`` saves a query when the caller has read them.
        """
        if stored is None:
            stored = store.stored_runs([run["id"] for run in runs])
        run_rows, job_rows, attempt_rows = [], [], []
        for index, run in enumerate(runs):
            old = stored.get(run["id"])
            if old is not None and not run_moved(old, run):
                continue
            self.check_stop()
            if backfill_cursor is not None and self.gh.budget_low():
                runs = runs[:index]
                self.defer_backfill()
                break
            jobs = self.gh.jobs(self.name, run["id"])
            self.progress.advance(jobs=1)
            run_rows.append(transform.run_row(run, jobs, self.name))
            attempt = run.get("run_attempt") or 1
            job_rows += [transform.job_row(job, self.name, attempt) for job in jobs]
            attempt_rows += [
                {**row, "repo": self.name} for row in transform.attempt_rows(run, jobs)
            ]
        cursors = {}
        created = [t for run in runs if (t := transform.parse_time(run.get("created_at")))]
        if backfill_cursor is not None and created:
            cursors[backfill_cursor] = to_cursor(min(created))
        head_commits = [row for run in runs if (row := transform.head_commit_row(run, self.name))]
        counts = store.save_run_page(
            self.name,
            run_rows,
            job_rows,
            attempt_rows,
            head_commits,
            cursors,
            self.now,
        )
        counts["workflowruns"].unchanged += len(runs) - len(run_rows)
        for table, table_counts in counts.items():
            self.count(table, table_counts)
        self.progress.advance(stored=len(runs))
        return runs

    def defer_backfill(self) -> None:
        self.report.backfill_pending = True
        log.info(
            "sync.backfill_deferred",
            reason="rate limit reserve reached",
            remaining=self.gh.stats.rate_remaining,
            resumes_in_seconds=round(self.gh.seconds_to_reset()),
        )


def run_moved(stored: dict[str, Any], run: dict[str, Any]) -> bool:
    """Whether a listed run differs from its row in what a new attempt or status changes."""
    return bool(
        stored["updatetime"] != transform.parse_time(run.get("updated_at"))
        or stored["runattempt"] != (run.get("run_attempt") or 1)
        or stored["status"] != run.get("status")
        or stored["conclusion"] != run.get("conclusion")
    )
