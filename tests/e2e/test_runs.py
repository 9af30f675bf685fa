"""Run discovery, end to end: re-runs anywhere in the 30-day horizon, found by re-reading
fixed windows that cost nothing while unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fake_github import FakeGitHub
from poller.store.models import Job, WorkflowRun, WorkflowRunAttempt
from support import PollerSetup, mirror, scratch_sync

NOW = datetime.now(UTC).replace(microsecond=0)


def test_quick_reruns_of_old_runs_are_mirrored_with_their_attempts(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    """Runs 3, 10 and 29 days old fail, are re-run and succeed between two passes: no
    pass ever sees them active. `--once` reads its share of the sweep since the last
    pass, as the daemon does, so one a moment later owes nothing yet; `--once --full`
    re-reads the whole horizon and mirrors each, with both attempts."""
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", when=NOW - timedelta(days=40))
    old = {}
    for days in (3, 10, 29):
        for hour in range(0, 24, 2):  # a little history around each
            fake.add_run(repo, ci, created=NOW - timedelta(days=days, hours=hour, minutes=7))
        old[days] = fake.add_run(repo, ci, created=NOW - timedelta(days=days), conclusion="failure")
    poller.repos = [{"name": "octo/demo"}]
    first = poller.run()
    assert first.returncode == 0, first.stderr

    fake.reset_counts()
    idle = poller.run()  # the first pass after the backfill: every listing is primed
    assert idle.returncode == 0, idle.stderr
    assert fake.count() == 0

    for days, run in old.items():
        fake.rerun(repo, run, at=NOW - timedelta(minutes=days), labels=[["macos-14"]])
    fake.reset_counts()
    paced = poller.run()
    assert paced.returncode == 0, paced.stderr
    assert fake.count() == 0  # seconds after the last pass, no window of the sweep is due
    second = poller.run("--once", "--full")
    assert second.returncode == 0, second.stderr
    # Three changed windows, and one jobs request per re-run: nothing else is spent.
    assert fake.count("/jobs") == 3
    assert fake.count() == 6

    with poller.database.open():
        for days, run in old.items():
            row = WorkflowRun.get(WorkflowRun.gitid == run)
            assert (row.runattempt, row.conclusion, row.os) == (2, "success", "macOS")
            # The re-run's own wait (its job started 10 s after it was asked for), not
            # the days since the run was created; createtime stays the creation.
            assert row.queuetime == 10
            assert row.createtime == (NOW - timedelta(days=days)).replace(tzinfo=None)
            attempts = {
                a.attempt: a.conclusion
                for a in WorkflowRunAttempt.select().where(WorkflowRunAttempt.runid == run)
            }
            assert attempts == {1: "failure", 2: "success"}
            assert {j.runattempt for j in Job.select().where(Job.runid == run)} == {1, 2}

    scratch = scratch_sync(poller, make_database(), tmp_path / "scratch")
    assert mirror(poller.database) == mirror(scratch.database)


@pytest.mark.sqlite_only
def test_runs_beyond_the_horizon_are_not_re_read(fake: FakeGitHub, poller: PollerSetup):
    """GitHub allows re-runs for 30 days; older history is never listed again."""
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", when=NOW - timedelta(days=90))
    for days in (35, 50, 80):
        fake.add_run(repo, ci, created=NOW - timedelta(days=days))
    fake.add_run(repo, ci, created=NOW - timedelta(days=12))
    poller.repos = [{"name": "octo/demo"}]
    poller.sync = {"rerun_horizon_days": 14}
    assert poller.run().returncode == 0
    fake.reset_counts()
    assert poller.run().returncode == 0
    created = [r.query["created"] for r in fake.requests if "created" in r.query]
    horizon = (NOW - timedelta(days=15)).strftime("%Y-%m-%d")
    assert created and all(value[:10] >= horizon for value in created)


@pytest.mark.sqlite_only
def test_an_earlier_attempt_that_ran_no_job_is_asked_for(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    """`filter=all` jobs show no trace of an attempt that ran no job; one request to
    .../attempts/1 tells its outcome, so a from-scratch sync agrees with the incremental
    one (a case the property test found)."""
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    run = fake.add_run(repo, ci, created=NOW - timedelta(hours=3), labels=[], conclusion="failure")
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    fake.rerun(repo, run, at=NOW - timedelta(hours=1))
    fake.reset_counts()
    assert poller.run().returncode == 0
    assert fake.count(f"/runs/{run}/attempts/1") == 1

    scratch = scratch_sync(poller, make_database(), tmp_path / "scratch")
    assert mirror(poller.database) == mirror(scratch.database)
    with scratch.database.open():
        attempts = WorkflowRunAttempt.select().where(WorkflowRunAttempt.runid == run)
        assert {(a.attempt, a.conclusion) for a in attempts} == {(1, "failure"), (2, "success")}


def test_a_re_read_window_past_1000_runs_is_split_so_no_run_is_missed(
    fake: FakeGitHub, sqlite_poller: PollerSetup
):
    """An outage's backlog: 1,150 runs created in one hour yesterday, inside the windows
    re-read every pass. GitHub lets a filtered listing reach 1,000 of them, so that hour's
    window is halved until each piece is under the cap, and re-runs of its oldest runs
    are mirrored by the next pass."""
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", when=NOW - timedelta(days=3))
    hour = (NOW - timedelta(days=1)).replace(minute=0, second=0)
    burst = [
        fake.add_run(repo, ci, created=hour + timedelta(seconds=3 * n), conclusion="failure")
        for n in range(1150)
    ]
    sqlite_poller.repos = [{"name": "octo/demo"}]
    first = sqlite_poller.run()
    assert first.returncode == 0, first.stderr

    oldest = burst[:5]
    for run in oldest:
        fake.rerun(repo, run, at=NOW - timedelta(minutes=2))
    second = sqlite_poller.run()
    assert second.returncode == 0, second.stderr
    assert "sync.runs_window_capped" not in second.stderr
    with sqlite_poller.database.open():
        assert WorkflowRun.select().count() == 1150
        rows = WorkflowRun.select().where(WorkflowRun.gitid.in_(oldest))
        assert sorted((r.runattempt, r.conclusion) for r in rows) == [(2, "success")] * 5


def test_runs_deleted_on_github_are_kept_and_marked_never_left_live(
    fake: FakeGitHub, poller: PollerSetup
):
    """The database is the dashboard's long-term record. A run deleted on GitHub keeps its
    row, with the time the poller found out, whether the next pass misses it in a window
    it re-reads or gets a 404 for it by id; a run that can no longer finish is no longer
    live. Legacy columns of a completed run do not change, and runs past the re-run
    horizon, which no listing is expected to hold, are never marked."""
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", when=NOW - timedelta(days=60))
    done = fake.add_run(repo, ci, created=NOW - timedelta(hours=5))
    finishing = fake.add_run(repo, ci, created=NOW - timedelta(hours=3), status="in_progress")
    stuck = fake.add_run(repo, ci, created=NOW - timedelta(days=16), status="in_progress")
    ancient = fake.add_run(repo, ci, created=NOW - timedelta(days=45))
    kept = fake.add_run(repo, ci, created=NOW - timedelta(hours=4))
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    legacy = [c for c in WorkflowRun._meta.sorted_field_names if c not in ("id", "deletetime")]
    with poller.database.open():
        before = {r.gitid: [getattr(r, c) for c in legacy] for r in WorkflowRun.select()}

    fake.complete_run(repo, finishing)  # finishes, and is deleted before the next pass
    for run in (done, finishing, stuck, ancient):
        fake.delete_run(repo, run)
    result = poller.run()
    assert result.returncode == 0, result.stderr
    with poller.database.open():
        rows = {r.gitid: r for r in WorkflowRun.select()}
        assert set(rows) == {done, finishing, stuck, ancient, kept}  # no row lost
        marked = {gitid for gitid, r in rows.items() if r.deletetime is not None}
        assert marked == {done, finishing, stuck}
        assert all(r.status == "completed" for r in rows.values())  # none left live
        assert [getattr(rows[done], c) for c in legacy] == before[done]
        assert [getattr(rows[kept], c) for c in legacy] == before[kept]
        assert Job.select().where(Job.runid == finishing).count() == 1

    again = poller.run("--once", "--full")
    assert again.returncode == 0, again.stderr
    with poller.database.open():
        assert WorkflowRun.select().where(WorkflowRun.deletetime.is_null(False)).count() == 3
        assert WorkflowRun.select().count() == 5


@pytest.mark.sqlite_only
def test_re_runs_of_old_runs_are_seen_while_they_run(fake: FakeGitHub, poller: PollerSetup):
    """A re-run of IREE's CI takes 10 to 60 minutes, so it is queued or running at the
    next pass. GitHub's runs listing filters by a run's current status whatever its
    age, so the next pass stores the re-run of a 10- and a 29-day-old run with its new
    attempt, though no sweep is due; the pass after stores their completion. An idle
    pass still costs nothing: the status listings answer 304."""
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", when=NOW - timedelta(days=40))
    old = {}
    for days in (3, 10, 29):
        for hour in range(0, 24, 4):
            fake.add_run(repo, ci, created=NOW - timedelta(days=days, hours=hour, minutes=7))
        old[days] = fake.add_run(repo, ci, created=NOW - timedelta(days=days), conclusion="failure")
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    fake.reset_counts()
    assert poller.run().returncode == 0
    assert fake.count() == 0

    for days in (10, 29):
        fake.rerun(repo, old[days], at=NOW - timedelta(minutes=3), conclusion=None)
    fake.reset_counts()
    seen = poller.run()  # seconds later: no window of the sweep is due
    assert seen.returncode == 0, seen.stderr
    # The listing of runs in progress, and one jobs request per re-run.
    assert fake.count("/jobs") == 2
    assert fake.count() == 3
    with poller.database.open():
        for days in (10, 29):
            row = WorkflowRun.get(WorkflowRun.gitid == old[days])
            assert (row.runattempt, row.status, row.conclusion) == (2, "in_progress", None)

    for days in (10, 29):
        fake.complete_run(repo, old[days])
    done = poller.run()
    assert done.returncode == 0, done.stderr
    with poller.database.open():
        for days in (10, 29):
            row = WorkflowRun.get(WorkflowRun.gitid == old[days])
            assert (row.runattempt, row.status, row.conclusion) == (2, "completed", "success")


def test_jobs_retention_prunes_old_jobs_and_their_steps_and_keeps_every_run(
    fake: FakeGitHub, poller: PollerSetup
):
    """`[sync] jobs_retention_days`, run as a user would: `--once`, then the runs of
    40 days ago keep their row, OS and times, without their jobs and steps."""
    from poller.store.models import Step

    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    old = fake.add_run(repo, ci, created=NOW - timedelta(days=40))
    new = fake.add_run(repo, ci, created=NOW - timedelta(days=1))
    poller.repos = [{"name": "octo/demo"}]
    poller.sync = {"jobs_retention_days": 30}
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert "sync.jobs_pruned" in result.stderr
    with poller.database.open():
        runs = {run.gitid: run for run in WorkflowRun.select()}
        assert set(runs) == {old, new}
        assert runs[old].os == runs[new].os is not None
        assert runs[old].runtime == runs[new].runtime is not None
        assert {job.runid for job in Job.select()} == {new}
        assert {step.runid for step in Step.select()} == {new}
