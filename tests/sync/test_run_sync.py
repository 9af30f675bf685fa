"""The run sync's arithmetic, in the process: the backfill's budget and room page by
page, and the restart of a listing that GitHub caps at 1,000 runs. No subprocess: the
rule is driven table by table, and the cap against the fake GitHub over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import structlog.testing

from fake_github import FakeGitHub
from poller.config.settings import GitHubConfig, RepoConfig, SyncConfig
from poller.github.client import GitHub
from poller.rules.plan import BackfillRoom
from poller.store.state import RepoState
from poller.sync.progress import NoProgress
from poller.sync.runs import RunSync

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PAGE = list(range(100, 90, -1))  # ten run ids, newest first


@pytest.mark.parametrize(
    ("budget", "room", "known", "kept", "room_after", "ends"),
    [
        # No bounds: the whole page, and the backfill goes on.
        (None, None, set(), 10, None, None),
        # The pass's budget ends inside the page: the rest waits for the next pass.
        (4, None, set(), 4, None, "budget"),
        # The budget is spent by exactly this page.
        (10, None, set(), 10, None, "budget"),
        # max_runs leaves room for 3 new runs: the repository is full, and done.
        (None, 3, set(), 3, 0, "max_runs"),
        # Runs already stored take no room: 3 new ones fit among 5 known.
        (None, 3, {100, 99, 97, 95, 93}, 8, 0, "max_runs"),
        # Known runs still count against the budget: reading them costs requests.
        (6, 5, {100, 99, 98}, 6, 2, "budget"),
        # Room to spare and no budget: the page, and on to the next.
        (None, 50, {100}, 10, 41, None),
        # No room at all: nothing new is stored, the known run at the top is re-read.
        (None, 0, {100}, 1, 0, "max_runs"),
    ],
)
def test_the_backfill_takes_what_its_budget_and_room_allow(
    budget: int | None,
    room: int | None,
    known: set[int],
    kept: int,
    room_after: int | None,
    ends: str | None,
):
    bounds = BackfillRoom(budget, room)
    assert bounds.take(PAGE, known) == kept
    assert bounds.room == room_after
    assert bounds.spend(kept) == ends


def test_a_budget_spread_over_pages_ends_on_the_page_that_spends_it():
    bounds = BackfillRoom(budget=25, room=None)
    taken = []
    for _ in range(4):
        kept = bounds.take(PAGE, set())
        taken.append(kept)
        if bounds.spend(kept) is not None:
            break
    assert taken == [10, 10, 5]  # the third page is cut where the budget ends
    assert bounds.budget == 0


@pytest.fixture
def github(fake: FakeGitHub) -> GitHub:
    return GitHub(GitHubConfig(api_url=fake.url, max_retries=0), None)


def run_sync(gh: GitHub, name: str) -> RunSync:
    return RunSync(
        gh,
        RepoConfig(name),
        SyncConfig(),
        NOW.replace(tzinfo=None),
        job_os=lambda labels: None,
        progress=NoProgress(),
        state=RepoState(name),  # listing pages reads no cursor
    )


@pytest.mark.parametrize(
    ("runs", "seconds_apart", "listings", "pages"),
    [
        # Within the cap: one listing, read to its end.
        (950, 60, 1, 10),
        # Past it: each listing restarts at the oldest run reached, whose second is
        # listed again; no request is spent on probes.
        (2_300, 60, 3, 10 + 10 + 4),
        (1_000, 60, 1, 10),
        (1_001, 60, 2, 10 + 1),
    ],
)
def test_a_capped_backfill_listing_restarts_at_the_oldest_run_reached(
    fake: FakeGitHub, github: GitHub, runs: int, seconds_apart: int, listings: int, pages: int
):
    repo = fake.add_repo("octo/busy")
    ci = fake.add_workflow(repo, "CI")
    oldest = NOW - timedelta(days=30)
    for i in range(runs):
        fake.add_run(repo, ci, created=oldest + timedelta(seconds=i * seconds_apart))
    fake.reset_counts()
    low, high = oldest.replace(tzinfo=None), NOW.replace(tzinfo=None)
    seen: list[int] = []
    for page in run_sync(github, "octo/busy").pages_newest_first(
        low, high, BackfillRoom(None, None)
    ):
        seen.extend(run["id"] for run in page)
    assert len(set(seen)) == runs  # every run, newest first, none skipped
    assert len(seen) - runs == listings - 1  # only each restart's boundary second twice
    assert fake.count("/actions/runs") == pages


def test_a_thousand_runs_in_one_second_are_stepped_past_not_looped_on(
    fake: FakeGitHub, github: GitHub
):
    repo = fake.add_repo("octo/burst")
    ci = fake.add_workflow(repo, "CI")
    burst = NOW - timedelta(hours=2)
    for _ in range(1_050):
        fake.add_run(repo, ci, created=burst)
    fake.add_run(repo, ci, created=burst - timedelta(minutes=5))
    low = (burst - timedelta(hours=1)).replace(tzinfo=None)
    with structlog.testing.capture_logs() as logs:
        seen = [
            run["id"]
            for page in run_sync(github, "octo/burst").pages_newest_first(
                low, NOW.replace(tzinfo=None), BackfillRoom(None, None)
            )
            for run in page
        ]
    # GitHub shows 1,000 of the second's 1,050; the restart steps past that second and
    # finds the older run, rather than asking for the same second forever.
    assert len(set(seen)) == 1_001
    assert [event["event"] for event in logs].count("sync.runs_second_capped") == 1
