"""Run discovery: find the workflow runs that are new or changed, and store them.

The cursors say which stretch of ``created_at`` is fully stored: every run created in
``[runs.oldest, runs.newest]`` is in the database. Each pass, in this order, so that
fresh runs never wait behind history:

* **Live.** Runs created since ``runs.newest`` less an overlap (runs show up in listings a
  little late), from the start of the fixed window that holds that moment, so the URL
  stays put between passes and an unchanged listing answers 304.
* **Windows.** The stored history inside the re-run horizon is cut into fixed ``created``
  windows (``windows``). Those within ``lookback_days`` are re-read every pass; the older
  ones a slice per pass, so the whole horizon is re-read once per ``rerun_sweep_minutes``.
  An unchanged window answers 304 and costs nothing; a changed one shows the re-run,
  cancellation or late completion that changed it.
* **Unfinished.** Runs stored as not completed and older than the every-pass windows are
  fetched by id until they complete.
* **Backfill.** Older history, newest first below ``runs.oldest``, down to the
  repository's ``since``/``max_runs`` bounds, a bounded slice per daemon pass.
* **Priming.** Any window, or next pass's live listing, that has no stored ETag yet (new
  after a backfill, or re-cut as a day filled up) is read now, so the next pass finds it
  primed and an idle repository costs nothing.

Only runs whose status, attempt or ``updated_at`` moved cost a jobs request. GitHub lets
a filtered listing reach 1,000 runs: the backfill restarts each listing at the oldest run
reached, and an oversized live window is halved by ``created``. Rows and the cursor that
covers them commit in one transaction, so a crash resumes where the last commit left off.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from poller import cursors, run_store, shutdown, store, transform, windows
from poller.config import RepoConfig, SyncConfig
from poller.github import PER_PAGE, RESULT_CAP, GitHub, Response
from poller.github_errors import GitHubError
from poller.history import backfill_done, from_cursor, to_cursor
from poller.progress import Progress
from poller.report import RepoReport
from poller.windows import Window

log = structlog.get_logger(__name__)

SECOND = timedelta(seconds=1)
# Events whose runs mean that something was pushed (branches, commits, workflow files).
PUSH_EVENTS = frozenset({"push", "pull_request", "pull_request_target", "merge_group"})


@dataclass(frozen=True)
class Stretch:
    """Where a pass stands: the stored stretch, and how it is cut into listings."""

    oldest: datetime
    live_start: datetime
    recent: list[Window]  # re-read every pass
    older: list[Window]  # re-read a slice per pass


class RunDiscovery:
    """Finds and stores one repository's new and changed runs, for one pass."""

    def __init__(
        self,
        gh: GitHub,
        settings: SyncConfig,
        repo: RepoConfig,
        now: datetime,
        *,
        report: RepoReport,
        progress: Progress,
        backfill_budget: int | None,
        sweep_share: float,
        job_os: transform.JobOs = transform.labels_os,
    ) -> None:
        self.gh = gh
        self.settings = settings
        self.repo = repo
        self.name = repo.name
        self.now = now
        self.report = report
        self.progress = progress
        self.backfill_budget = backfill_budget
        self.sweep_share = sweep_share
        self.job_os = job_os
        # What the backfill may still store in this pass: runs (budget), new runs (room).
        self.budget: int | None = None
        self.room: int | None = None
        # Whether a run new to us shows a push (see sync.RepoSync.run).
        self.pushed = False
        # Runs counted in the report already: listings overlap (the backfill's boundary
        # second, windows primed after the backfill), and a run is counted once a pass.
        self.counted: set[int] = set()

    def run(self, repo_created: datetime) -> None:
        stretch = self.stretch()
        self.sync_live_runs(stretch.live_start, stretch.oldest)
        self.check_windows(stretch.recent + self.sweep_slice(stretch.older))
        first_recent = stretch.recent[-1].low if stretch.recent else stretch.live_start
        self.sync_unfinished_runs(first_recent)
        self.backfill_runs(stretch.oldest, repo_created)
        self.prime()

    # --- where the pass stands ---

    def stretch(self) -> Stretch:
        newest = from_cursor(store.get_cursor(self.name, cursors.RUNS_NEWEST))
        oldest = from_cursor(store.get_cursor(self.name, cursors.RUNS_OLDEST))
        if newest is None or oldest is None:
            # First sight: nothing is stored yet, so the stored stretch is empty at "now".
            newest = oldest = self.now
        # Whole days, so the oldest window does not move as the clock does.
        horizon = windows.floor_day(self.now - timedelta(days=self.settings.rerun_horizon_days))
        counts = run_store.runs_per_day(self.name, min(horizon, oldest))
        overlap = timedelta(minutes=self.settings.overlap_minutes)
        live_start = max(oldest, windows.piece_of(newest - overlap, counts).low)
        lookback = self.now - timedelta(days=self.settings.lookback_days)
        low = max(horizon, oldest)
        cut = windows.partition(
            low, live_start, counts, keep_empty_after=lookback, merge_before=lookback
        )
        recent, older = windows.split(cut, lookback)
        if recent and windows.runs_since(recent[-1].low, counts) <= windows.TARGET_RUNS:
            # A quiet repository: one live listing from the lookback's start holds it all.
            live_start, recent = recent[-1].low, []
        return Stretch(oldest, live_start, recent, older)

    def sweep_slice(self, older: list[Window]) -> list[Window]:
        """This pass's share of the older windows, continuing where the last pass stopped."""
        if not older:
            return []
        saved = store.get_cursor(self.name, cursors.RUNS_SWEEP_CREDIT)
        credit = float(saved) if saved else windows.sweep_phase(self.name)
        count, credit = windows.sweep_count(len(older), self.sweep_share, credit)
        position = from_cursor(store.get_cursor(self.name, cursors.RUNS_SWEEP))
        chosen, following = windows.sweep_slice(older, position, count)
        store.set_cursors(
            self.name,
            {
                cursors.RUNS_SWEEP: to_cursor(following) if following else "",
                cursors.RUNS_SWEEP_CREDIT: f"{credit:.6f}",
            },
            self.now,
        )
        return chosen

    # --- live runs, windows, unfinished runs ---

    def sync_live_runs(self, start: datetime, oldest: datetime) -> None:
        for first, _, high in self.run_windows(start, None):
            for page in self.window_pages(first):
                self.store_runs(page)
            # Everything created up to the window's end is stored; on an open-ended window
            # that is everything created before the listing began.
            covered = high or self.now
            store.set_cursors(
                self.name,
                {cursors.RUNS_NEWEST: to_cursor(covered), cursors.RUNS_OLDEST: to_cursor(oldest)},
                self.now,
            )

    def check_windows(self, chosen: list[Window]) -> None:
        """Re-read fixed windows. An unchanged one answers 304; its stored body is replayed
        through the same diff, which finds nothing to write."""
        for window in chosen:
            shutdown.check()
            first = self.gh.runs_first_page(self.name, window.low, window.high - SECOND)
            if int(first.data.get("total_count", 0)) > RESULT_CAP:
                log.warning("sync.runs_window_capped", low=window.low, high=window.high)
            for page in self.window_pages(first, max_pages=RESULT_CAP // PER_PAGE):
                self.store_runs(page)

    def sync_unfinished_runs(self, created_before: datetime) -> None:
        for gitid in run_store.unfinished_runs(self.name, created_before):
            run = self.gh.run(self.name, gitid)
            if run is None:
                log.info("sync.run_deleted", run_id=gitid)
                run_store.delete_run(gitid)
                self.report.counts["workflowruns"].deleted += 1
                continue
            self.store_runs([run])

    def prime(self) -> None:
        """Read, now, the listings the next pass will re-read but has no ETag for."""
        if self.report.backfill_pending:
            return  # the stretch still grows; prime once it is whole for this pass
        stretch = self.stretch()
        fixed = stretch.recent + stretch.older
        live, *windows_primed = self.gh.runs_listings_primed(
            self.name,
            [(stretch.live_start, None), *((w.low, w.high - SECOND) for w in fixed)],
        )
        if not live:
            self.sync_live_runs(stretch.live_start, stretch.oldest)
        self.check_windows(
            [window for window, primed in zip(fixed, windows_primed, strict=True) if not primed]
        )

    # --- backfill ---

    def backfill_runs(self, oldest: datetime, repo_created: datetime) -> None:
        """Store runs created before ``oldest``, newest first, within the budget and bounds."""
        history_reached = (
            store.get_cursor(self.name, cursors.RUNS_HISTORY_START) == cursors.HISTORY_REACHED
        )
        stored = run_store.count_runs(self.name)
        if backfill_done(self.repo, oldest, history_reached, stored):
            return
        if self.gh.budget_low():
            self.defer_backfill()
            return
        self.budget = self.backfill_budget
        self.room = None if self.repo.max_runs is None else self.repo.max_runs - stored
        low = self.repo.since or repo_created
        for page in self.pages_newest_first(low, oldest):
            if not self.backfill_page(page):
                return
        # The listing is exhausted: the stored stretch now reaches the lower bound.
        bounds = {cursors.RUNS_OLDEST: to_cursor(low)}
        if self.repo.since is None:
            bounds[cursors.RUNS_HISTORY_START] = cursors.HISTORY_REACHED
        store.set_cursors(self.name, bounds, self.now)

    def pages_newest_first(self, low: datetime, high: datetime) -> Iterator[list[dict[str, Any]]]:
        """Every run created in ``[low, high]``, newest first, a page at a time.

        GitHub lets a filtered listing reach its first 1,000 runs only. Since it lists
        newest first, the next listing simply starts at the oldest run reached (that
        second is listed again, for runs that share it). No request is wasted on probes.
        """
        expecting = True
        while True:
            first = self.gh.runs_first_page(self.name, low, high)
            total = int(first.data.get("total_count", 0))
            if expecting:
                # The whole backfill, within the bounds: what a progress bar's total is.
                room = self.room if self.room is not None else total
                self.progress.expect(min(total, room, self.budget or total))
                expecting = False
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
                previous = high - SECOND
            high = previous

    def backfill_page(self, page: list[dict[str, Any]]) -> bool:
        """Store one page of older runs; False once the backfill stops for this pass."""
        if self.gh.budget_low():
            self.defer_backfill()
            return False
        # Runs already stored (the boundary second, legacy rows) cost no jobs request
        # unless they moved, and don't count against max_runs.
        known = run_store.stored_runs([run["id"] for run in page])
        kept = []
        for run in page:
            if run["id"] not in known:
                if self.room is not None and self.room <= 0:
                    break
                self.room = None if self.room is None else self.room - 1
            kept.append(run)
            if self.budget is not None and len(kept) >= self.budget:
                break
        stored_now = (
            self.store_runs(kept, backfill_cursor=cursors.RUNS_OLDEST, stored=known)
            if kept
            else kept
        )
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

    def defer_backfill(self) -> None:
        self.report.backfill_pending = True
        log.info(
            "sync.backfill_deferred",
            reason="rate limit reserve reached",
            remaining=self.gh.stats.rate_remaining,
            resumes_in_seconds=round(self.gh.seconds_to_reset()),
        )

    # --- listings ---

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
        if total <= RESULT_CAP or upper - low < 2 * SECOND:
            if total > RESULT_CAP:
                log.warning("sync.runs_window_capped", total=total, low=low, high=upper)
            yield first, low, high
            return
        middle = low + (upper - low) / 2
        middle = middle.replace(microsecond=0)
        yield from self.run_windows(low, middle)
        yield from self.run_windows(middle + SECOND, upper)

    def window_pages(
        self, first: Response, max_pages: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        pages = self.gh.runs_next_pages(first, max_pages)
        for page in itertools.chain([list(first.data["workflow_runs"])], pages):
            self.progress.advance(listed=len(page))
            yield page

    # --- storing ---

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
            stored = run_store.stored_runs([run["id"] for run in runs])
        run_rows, job_rows, attempt_rows, step_rows = [], [], [], []
        unmoved = 0
        for index, run in enumerate(runs):
            old = stored.get(run["id"])
            if old is not None and not transform.run_moved(old, run):
                unmoved += run["id"] not in self.counted
                continue
            self.pushed = self.pushed or (old is None and run.get("event") in PUSH_EVENTS)
            shutdown.check()
            if backfill_cursor is not None and self.gh.budget_low():
                runs = runs[:index]
                self.defer_backfill()
                break
            jobs = self.gh.jobs(self.name, run["id"])
            self.progress.advance(jobs=1)
            # Rare: an earlier attempt that ran no job leaves no trace in the jobs.
            earlier = {
                number: payload
                for number in transform.attempts_without_jobs(run, jobs)
                if (payload := self.gh.run_attempt(self.name, run["id"], number))
            }
            run_rows.append(transform.run_row(run, jobs, self.name, self.job_os))
            attempt = run.get("run_attempt") or 1
            job_rows += [transform.job_row(job, self.name, attempt, self.job_os) for job in jobs]
            step_rows += [row for job in jobs for row in transform.step_rows(job, self.name)]
            self.report.jobs_os_unknown += sum(
                1 for job in jobs if not transform.skipped(job) and self.job_os(job) is None
            )
            attempt_rows += [
                {**row, "repo": self.name} for row in transform.attempt_rows(run, jobs, earlier)
            ]
        positions: dict[str, str] = {}
        created = [t for run in runs if (t := transform.parse_time(run.get("created_at")))]
        if backfill_cursor is not None and created:
            positions[backfill_cursor] = to_cursor(min(created))
        head_commits = [row for run in runs if (row := transform.head_commit_row(run, self.name))]
        counts = run_store.save_run_page(
            self.name,
            run_store.RunPage(run_rows, job_rows, attempt_rows, step_rows, head_commits),
            positions,
            self.now,
        )
        counts["workflowruns"].unchanged += unmoved
        self.counted.update(run["id"] for run in runs)
        for table, table_counts in counts.items():
            self.report.counts[table].add(table_counts)
        self.progress.advance(stored=len(runs))
        return runs
