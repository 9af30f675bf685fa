"""The run sync: reads the listings a plan names (``plan``), and stores the runs
that changed, with their jobs, steps and attempts.

Only a run that ``transform.run_changed`` says is new or moved costs a jobs request and a
write. GitHub lets a filtered listing reach 1,000 runs: the backfill restarts each
listing at the oldest run reached, and an oversized live window is halved by
``created``. Rows and the cursor that covers them commit in one transaction, so a crash
resumes where the last commit left off. A sync returns what it did (``RunsSynced``);
it writes into no shared report.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import structlog

from poller import metrics
from poller.config.settings import RepoConfig, SyncConfig
from poller.github.client import GitHub
from poller.github.errors import GitHubError
from poller.github.types import RunItem, RunListing
from poller.rules import cicd, cursors, plan, transform
from poller.rules.cursors import to_cursor
from poller.rules.plan import SECOND, Backfill, BackfillRoom, RunCursors
from poller.rules.windows import Window
from poller.store import runs as run_store
from poller.store.models import WorkflowRun
from poller.store.state import RepoState
from poller.sync.progress import Progress
from poller.sync.report import RunsSynced

log = structlog.get_logger(__name__)

# Events whose runs mean that something was pushed (branches, commits, workflow files).
PUSH_EVENTS = frozenset({"push", "pull_request", "pull_request_target", "merge_group"})
# The states of a run that a re-run passes through on its way to a runner and back. A
# re-run waiting for an approval or a concurrency group is seen once queued, or by a sweep.
ACTIVE = ("queued", "in_progress")


class RunSync:
    """Finds and stores one repository's new and changed runs, for one pass."""

    def __init__(
        self,
        gh: GitHub,
        repo: RepoConfig,
        settings: SyncConfig,
        now: datetime,
        *,
        job_os: transform.JobOs,
        progress: Progress,
        state: RepoState,
        ci_per_repository: bool | None = None,
    ) -> None:
        self.gh = gh
        # The opt-in CI metrics: None, off; else whether they name the repository.
        self.ci_per_repository = ci_per_repository
        self.repo_state = state  # its cursors: where each listing stands
        self.repo = repo
        self.name = repo.name
        self.settings = settings
        self.now = now
        self.job_os = job_os
        self.progress = progress
        self.done = RunsSynced()
        # Runs counted already: listings overlap (the backfill's boundary second, windows
        # primed after the backfill), and a run is counted once a pass.
        self.counted: set[int] = set()
        self.listed: set[int] = set()  # runs listed this pass, for the progress

    def sync(self, *, backfill_budget: int | None, sweep_minutes: float) -> RunsSynced:
        state = self.state()
        counts = self.runs_per_day(state)
        planned = plan.plan_runs(self.name, state, counts, self.settings, self.now, sweep_minutes)
        where = planned.stretch
        self.sync_live(where)
        if planned.sweep_positions:
            self.repo_state.save(planned.sweep_positions, self.now)
        self.check_windows(planned.windows)
        self.sync_active(plan.active_span(where, counts, self.settings, self.now))
        self.sync_unfinished(where.unfinished_before)
        stored = run_store.count_runs_up_to(self.name, self.repo.max_runs)
        backfill = plan.plan_backfill(
            self.repo, where.oldest, self.state(), stored, backfill_budget
        )
        if backfill is not None:
            self.backfill(backfill)
        if not self.done.backfill_pending:
            # The stretch is whole for this pass: prime what the next pass re-reads.
            self.prime()
        return self.done

    def state(self) -> RunCursors:
        return RunCursors.parse(self.repo_state.cursors)

    def runs_per_day(self, state: RunCursors) -> dict[date, int]:
        """The stored runs per day that size this state's windows."""
        return run_store.runs_per_day(self.name, plan.counts_from(state, self.settings, self.now))

    # --- live runs, windows, unfinished runs ---

    def sync_live(self, where: plan.Stretch) -> None:
        for listing, low, high in self.split_windows(where.live_start, None):
            self.read_listing(listing, low, high)
            # Everything created up to the window's end is stored; on an open-ended window
            # that is everything created before the listing began.
            covered = high or self.now
            self.repo_state.save(
                {
                    cursors.RUNS_NEWEST: to_cursor(covered),
                    cursors.RUNS_OLDEST: to_cursor(where.oldest),
                },
                self.now,
            )

    def check_windows(self, chosen: list[Window]) -> None:
        """Re-read fixed windows. An unchanged one answers 304; its stored body is replayed
        through the same diff, which finds nothing to write. A window that has grown past
        GitHub's 1,000-result cap (an outage's backlog in one hour) is halved like a live
        one, so every run in it is read."""
        for window in chosen:
            self.gh.stop.check()
            for listing, low, high in self.split_windows(window.low, window.high - SECOND):
                self.read_listing(listing, low, high)

    def sync_active(self, span: tuple[datetime, datetime] | None) -> None:
        """Runs of ``span`` that are queued or running now: a re-run of an old run shows
        here at the next pass, with its new attempt, and its completion is fetched by id
        at the pass after (``sync_unfinished``). The sweeps stay what finds a re-run that
        started and finished between two passes."""
        if span is None:
            return
        for status in ACTIVE:
            listing = self.gh.runs(self.name, *span, status=status)
            if not listing.whole:
                log.warning("sync.runs_active_capped", status=status, total=listing.total_count)
            for page in self.pages(listing):
                self.store_runs(page)

    def read_listing(self, listing: RunListing, low: datetime, high: datetime | None) -> None:
        """Store the runs of a listing of ``created`` in ``[low, high]`` (no upper bound:
        None). Read whole, it holds every run GitHub has there, so a stored run it lacks
        was deleted on GitHub. (A run deleted while the pages are read can shift another
        past a page boundary; a run marked so is unmarked when next listed.)"""
        listed: set[int] = set()
        for page in self.pages(listing):
            self.store_runs(page)
            listed.update(run["id"] for run in page)
        if listing.whole:
            self.mark_deleted(run_store.runs_created_between(self.name, low, high) - listed)

    def sync_unfinished(self, created_before: datetime) -> None:
        for gitid in run_store.unfinished_runs_of(self.name, created_before):
            if gitid in self.counted:
                continue  # a listing of this pass held it already: nothing to revisit
            run = self.gh.run(self.name, gitid)
            if run is None:
                self.mark_deleted({gitid})
                continue
            self.store_runs([run])

    def mark_deleted(self, gone: set[int]) -> None:
        """Mark runs GitHub no longer has (a 404 by id, or missing from a window that must
        list them). Deleting a run on GitHub never deletes its history here."""
        if not gone:
            return
        marked = run_store.mark_deleted(sorted(gone), self.now)
        if marked:
            log.info("sync.runs_deleted_on_github", runs=marked, run_ids=sorted(gone)[:20])
            self.done.counts[WorkflowRun].deleted += marked

    def prime(self) -> None:
        """Read, now, the listings the next pass will re-read but has no ETag for."""
        state = self.state()
        counts = self.runs_per_day(state)
        where = plan.stretch(state, counts, self.settings, self.now)
        live, fixed = plan.unprimed(where, self.gh.runs_listings_primed(self.name, where.ranges()))
        if live:
            self.sync_live(where)
        self.check_windows(fixed)
        span = plan.active_span(where, counts, self.settings, self.now)
        if span is not None and not all(
            self.gh.runs_listings_primed(self.name, [span], status)[0] for status in ACTIVE
        ):
            self.sync_active(span)

    # --- backfill ---

    def backfill(self, planned: Backfill) -> None:
        """Store runs created before the stretch, newest first, within budget and bounds."""
        if self.gh.limit.low():
            self.defer_backfill()
            return
        room = BackfillRoom(planned.budget, planned.room)
        for page in self.pages_newest_first(planned.low, planned.high, room):
            if not self.backfill_page(page, room):
                return
        self.repo_state.save(plan.backfill_reached(planned), self.now)

    def pages_newest_first(
        self, low: datetime, high: datetime, room: BackfillRoom
    ) -> Iterator[list[RunItem]]:
        """Every run created in ``[low, high]``, newest first, a page at a time.

        GitHub lets a filtered listing reach its first 1,000 runs only. Since it lists
        newest first, the next listing simply starts at the oldest run reached (that
        second is listed again, for runs that share it). No request is wasted on probes.
        """
        expecting = True
        while True:
            listing = self.gh.runs(self.name, low, high)
            total = listing.total_count
            if expecting:
                # The whole backfill, within the bounds: what a progress bar's total is.
                within = room.room if room.room is not None else total
                self.progress.expect(min(total, within, room.budget or total))
                expecting = False
            previous: datetime | None = None
            for page in self.pages(listing):
                for run in page:
                    created = transform.parse_time(run.get("created_at")) or low
                    if previous is not None and created > previous:
                        raise GitHubError(
                            "the runs listing is not newest first; the "
                            "backfill cannot resume from a cursor"
                        )
                    previous = created
                yield page
            if listing.whole or previous is None:
                return
            if previous >= high:
                # 1,000 runs in one second: step past it rather than loop forever.
                log.warning("sync.runs_second_capped", second=high)
                previous = high - SECOND
            high = previous

    def backfill_page(self, page: list[RunItem], room: BackfillRoom) -> bool:
        """Store one page of older runs; False once the backfill stops for this pass."""
        if self.gh.limit.low():
            self.defer_backfill()
            return False
        # Runs already stored (the boundary second, legacy rows) cost no jobs request
        # unless they moved, and don't count against max_runs.
        known = run_store.stored_runs([run["id"] for run in page])
        kept = page[: room.take([run["id"] for run in page], known)]
        stored_now = self.store_runs(kept, backfill=True, stored=known) if kept else kept
        if len(stored_now) < len(kept):
            return False  # deferred: the rate-limit reserve is reached
        ends = room.spend(len(kept))
        if ends == "budget":
            self.done.backfill_pending = True
        return ends is None

    def defer_backfill(self) -> None:
        self.done.backfill_pending = True
        log.info(
            "sync.backfill_deferred",
            reason="rate limit reserve reached",
            remaining=self.gh.stats.rate_remaining,
            resumes_in_seconds=round(self.gh.limit.seconds_to_reset()),
        )

    # --- listings ---

    def split_windows(
        self, low: datetime, high: datetime | None
    ) -> Iterator[tuple[RunListing, datetime, datetime | None]]:
        """``created`` windows, oldest first, that each hold at most 1,000 runs, with their
        first page. An oversized window is halved; its first page, spent to learn
        ``total_count``, is the only request a split wastes. (The live window needs them
        oldest first, so that ``runs.newest`` can advance window by window.)
        """
        listing = self.gh.runs(self.name, low, high)
        upper = high or self.now
        if listing.whole or upper - low < 2 * SECOND:
            if not listing.whole:
                log.warning(
                    "sync.runs_window_capped", total=listing.total_count, low=low, high=upper
                )
            yield listing, low, high
            return
        middle = (low + (upper - low) / 2).replace(microsecond=0)
        yield from self.split_windows(low, middle)
        yield from self.split_windows(middle + SECOND, upper)

    def pages(self, listing: RunListing) -> Iterator[list[RunItem]]:
        for page in self.gh.run_pages(listing):
            # Listings overlap (windows primed after a backfill re-list its runs): the
            # progress counts each run once.
            fresh = {run["id"] for run in page} - self.listed
            self.listed |= fresh
            self.progress.advance(listed=len(fresh))
            yield page

    # --- storing ---

    def store_runs(
        self,
        runs: list[RunItem],
        *,
        backfill: bool = False,
        stored: dict[int, transform.Row] | None = None,
    ) -> list[RunItem]:
        """Fetch the jobs of the runs that changed since we stored them, then write the
        page in one go. In the backfill the page is cut short when the rate-limit reserve
        is reached, and the backfill's cursor covers only the runs stored. Returns the runs
        stored. ``stored`` saves a query when the caller has read them."""
        if stored is None:
            stored = run_store.stored_runs([run["id"] for run in runs])
        changed: list[transform.RunDetails] = []
        unchanged = 0
        for index, run in enumerate(runs):
            old = stored.get(run["id"])
            if not transform.run_changed(old, run):
                unchanged += run["id"] not in self.counted
                continue
            self.done.pushed = self.done.pushed or (old is None and run.get("event") in PUSH_EVENTS)
            self.gh.stop.check()
            if backfill and self.gh.limit.low():
                runs = runs[:index]
                self.defer_backfill()
                break
            changed.append(self.details(run))
        positions: dict[str, str] = {}
        created = [t for run in runs if (t := transform.parse_time(run.get("created_at")))]
        if backfill and created:
            positions[cursors.RUNS_OLDEST] = to_cursor(min(created))
        page = transform.run_page(changed, runs, self.name, self.job_os)
        counts = run_store.save_run_page(self.name, page, stored, positions, self.now)
        self.repo_state.saved(positions)
        if self.ci_per_repository is not None:
            self.observe_completions(page, stored)
        counts[WorkflowRun].unchanged += unchanged
        first_time = sum(1 for run in runs if run["id"] not in self.counted)
        self.counted.update(run["id"] for run in runs)
        for model, table_counts in counts.items():
            self.done.counts[model].add(table_counts)
        self.done.jobs_os_unknown += sum(
            transform.os_unknown(details.jobs, self.job_os) for details in changed
        )
        self.progress.advance(stored=first_time)
        return runs

    def observe_completions(
        self, page: transform.RunPage, stored: dict[int, transform.Row]
    ) -> None:
        """The CI metrics of each attempt this page saw complete (``cicd``): once each,
        after its rows are stored."""
        owner, repository = self.name.split("/", 1) if self.ci_per_repository else ("", "")
        completed = [
            run
            for run in page.runs
            if cicd.completion_observed(stored.get(run["gitid"]), run, self.now)
        ]
        for run in completed:
            name = run["workflowname"] or ""
            result, error = cicd.result_of(run["conclusion"]), cicd.error_type(run["conclusion"])
            # The result is set in the state the run ended in: executing if a job ran,
            # else pending (cancelled or skipped before any runner took it).
            executed = run["runtime"] is not None
            if run["queuetime"] is not None:
                pending = ("", "") if executed else (result, error)
                metrics.CI_RUN_SECONDS.labels(name, "pending", *pending, owner, repository).observe(
                    run["queuetime"]
                )
            if executed:
                metrics.CI_RUN_SECONDS.labels(
                    name, "executing", result, error, owner, repository
                ).observe(run["runtime"])
        # The jobs of those attempts, in one walk of the page's jobs.
        attempts = {(run["gitid"], run["runattempt"]) for run in completed}
        for job in page.jobs:
            shown = (job["runid"], job["runattempt"]) in attempts
            if shown and job["starttime"] is not None and job["queuetime"] is not None:
                metrics.JOB_QUEUE_SECONDS.labels(job["labels"] or "").observe(job["queuetime"])

    def details(self, run: RunItem) -> transform.RunDetails:
        """A changed run's jobs, and the rare earlier attempt that ran no job."""
        jobs = self.gh.jobs(self.name, run["id"])
        self.progress.advance(jobs=1)
        earlier = {
            number: payload
            for number in transform.attempts_without_jobs(run, jobs)
            if (payload := self.gh.run_attempt(self.name, run["id"], number))
        }
        return transform.RunDetails(run, jobs, earlier)
