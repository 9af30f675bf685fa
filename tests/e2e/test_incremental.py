"""Incremental passes never miss a change: changes, downtime, crashes, any sequence."""

from __future__ import annotations

import contextlib
import signal
from datetime import UTC, datetime, timedelta

import peewee
import pytest

from fake_github import FakeGitHub
from poller.clock import SYSTEM
from poller.config import loader as config_module
from poller.github.pool import connect
from poller.shutdown import Stop
from poller.store.locks import NoLocks
from poller.store.models import Commit, Job, SyncCursor, WorkflowRun, WorkflowRunAttempt
from poller.store.schema import ensure_schema
from poller.sync.engine import Engine
from poller.sync.options import PassOptions
from support import PollerSetup, mirror, repo_done_events, scratch_sync

NOW = datetime.now(UTC).replace(microsecond=0)


def test_changes_between_passes_give_an_exact_mirror(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", message="one", when=NOW - timedelta(hours=9))
    fake.create_branch(repo, "doomed")
    done = fake.add_run(repo, ci, created=NOW - timedelta(hours=8), labels=[["windows-2022"]])
    running = fake.add_run(repo, ci, created=NOW - timedelta(hours=1), status="in_progress")
    old_running = fake.add_run(repo, ci, created=NOW - timedelta(days=9), status="in_progress")
    poller.repos = [{"name": "octo/demo"}]
    poller.sync = {"lookback_days": 1}
    assert poller.run().returncode == 0

    fake.complete_run(repo, running, conclusion="failure")
    fake.complete_run(repo, old_running)  # older than the lookback: revisited by id
    fake.rerun(repo, done, at=NOW - timedelta(minutes=30), labels=[["macos-14"]])
    fresh = fake.add_run(repo, ci, created=NOW - timedelta(minutes=5), labels=[["ubuntu-22.04"]])
    new_sha = fake.add_commit(repo, "main", message="two", when=NOW - timedelta(minutes=6))
    fake.delete_branch(repo, "doomed")
    second = poller.run()
    assert second.returncode == 0, second.stderr

    with poller.database.open():
        assert WorkflowRun.get(WorkflowRun.gitid == running).conclusion == "failure"
        assert WorkflowRun.get(WorkflowRun.gitid == old_running).status == "completed"
        rerun = WorkflowRun.get(WorkflowRun.gitid == done)
        assert (rerun.runattempt, rerun.os) == (2, "macOS")
        attempts = WorkflowRunAttempt.select().where(WorkflowRunAttempt.runid == done)
        assert sorted(a.attempt for a in attempts) == [1, 2]
        assert Job.select().where(Job.runid == done).count() == 2  # jobs of both attempts
        assert WorkflowRun.get(WorkflowRun.gitid == fresh).os == "Linux"
        assert Commit.get(Commit.hash == new_sha).message == "two"
    counts = repo_done_events(second.stderr)[0]["counts"]
    assert counts["branches"]["deleted"] == 1
    assert counts["workflowruns"]["inserted"] == 1
    assert counts["workflowruns"]["updated"] == 3

    scratch = scratch_sync(poller, make_database(), tmp_path / "scratch")
    assert mirror(poller.database) == mirror(scratch.database)


def rewind_cursor(poller: PollerSetup, to: datetime) -> None:
    """Make the database look as if the last pass ran at ``to``: the daemon was down since."""
    with poller.database.open():
        updated = (
            SyncCursor.update(position=to.replace(tzinfo=None).isoformat())
            .where(SyncCursor.resource == "runs.newest")
            .execute()
        )
        assert updated == 1


@pytest.mark.sqlite_only
def test_downtime_with_over_1000_new_runs_is_caught_up_in_one_pass(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path, report
):
    repo = fake.add_repo("octo/busy")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    fake.add_run(repo, ci, created=NOW - timedelta(days=6))
    poller.repos = [{"name": "octo/busy"}]
    poller.sync = {"lookback_days": 0, "overlap_minutes": 10}
    assert poller.run().returncode == 0

    # Five days down: 1,500 runs were created meanwhile, more than one listing can reach.
    rewind_cursor(poller, NOW - timedelta(days=5))
    created = [
        fake.add_run(repo, ci, created=NOW - timedelta(days=5) + timedelta(minutes=4 * i))
        for i in range(1500)
    ]
    fake.reset_counts()
    result = poller.run()
    assert result.returncode == 0, result.stderr
    with poller.database.open():
        stored = {run.gitid for run in WorkflowRun.select(WorkflowRun.gitid)}
    assert set(created) <= stored
    assert len(stored) == 1501
    # No page past GitHub's cap was ever asked for.
    assert all(r.status != 422 for r in fake.requests)
    report(f"catch-up after downtime: {len(created)} runs in one pass, {fake.count()} requests")

    scratch = scratch_sync(poller, make_database(), tmp_path / "scratch")
    assert mirror(poller.database) == mirror(scratch.database)


def test_sigkill_mid_backfill_resumes_without_loss_or_duplicates(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path, report
):
    repo = fake.add_repo("octo/history")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    for i in range(300):
        fake.add_run(repo, ci, created=NOW - timedelta(days=3, minutes=7 * i))
    poller.repos = [{"name": "octo/history"}]

    # The cost of an uninterrupted backfill, into a database of its own.
    scratch = scratch_sync(poller, make_database(), tmp_path / "scratch")
    uninterrupted = fake.count()
    fake.reset_counts()

    # Killed in the middle of the second page of runs: its 20th jobs request is held.
    held = fake.hold("/jobs", after=120)
    process = poller.popen("--once")
    assert held.reached.wait(timeout=60)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    held.release.set()
    fake.holds.clear()
    assert process.returncode == -signal.SIGKILL
    killed_after = fake.count()
    result = poller.run()
    assert result.returncode == 0, result.stderr
    ratio = fake.count() / uninterrupted
    report(
        f"crash-resume: {killed_after} requests before SIGKILL, {fake.count()} in all, "
        f"{uninterrupted} uninterrupted: ratio {ratio:.3f}"
    )
    assert ratio <= 1.25

    assert mirror(poller.database) == mirror(scratch.database)
    with poller.database.open():
        count = peewee.fn.COUNT(WorkflowRun.id)
        dupes = (
            WorkflowRun.select(WorkflowRun.gitid, count)
            .group_by(WorkflowRun.gitid)
            .having(count > 1)
        )
        assert list(dupes) == []
        assert WorkflowRun.select().count() == 300


@pytest.mark.sqlite_only
def test_backfill_is_sliced_and_never_delays_fresh_runs(fake: FakeGitHub, poller: PollerSetup):
    """The daemon's passes: fresh runs first, then a bounded slice of history."""
    repo = fake.add_repo("octo/slices")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    for i in range(250):
        fake.add_run(repo, ci, created=NOW - timedelta(days=4, minutes=5 * i))
    poller.repos = [{"name": "octo/slices"}]
    poller.sync = {"backfill_runs_per_pass": 100}
    settings = config_module.load(poller.write())
    engine = Engine(settings, connect(settings, poller.token, SYSTEM, Stop()), NoLocks())
    with poller.database.open() as db, contextlib.closing(engine):
        ensure_schema(db)
        totals, pending = [], []
        for _ in range(3):
            fresh = fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(seconds=5))
            [report] = engine.run_all(PassOptions(backfill_budget=100))
            assert report.error is None
            assert WorkflowRun.select().where(WorkflowRun.gitid == fresh).exists()
            totals.append(WorkflowRun.select().count())
            pending.append(report.backfill_pending)
        # Each pass stores the fresh run and a slice of about 100 older ones (the run on
        # the slice's boundary second is listed again, at no request, and takes a slot).
        assert 99 <= totals[0] <= 101 and 198 <= totals[1] <= 202
        assert totals[2] == 253
        assert pending == [True, True, False]
