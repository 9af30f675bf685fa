"""Renamed and transferred repositories, end to end: GitHub answers the old name's URLs
with 301 to ``/repositories/{id}/...``, query included. Real ``python -m poller``
processes against the fake GitHub, on SQLite and on MariaDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fake_github import FakeGitHub, FakeRepo, JobSpec
from poller.store.models import Branch, Commit, Job, SyncCursor, Workflow, WorkflowRun
from support import PollerSetup

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(days=10)


def history(fake: FakeGitHub, name: str) -> tuple[FakeRepo, int]:
    """80 runs from before ``since``, and 10 of the last hours."""
    repo = fake.add_repo(name)
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", when=NOW - timedelta(days=30))
    for n in range(80):
        fake.add_run(repo, ci, created=NOW - timedelta(days=20, minutes=n))
    for n in range(10):
        fake.add_run(repo, ci, created=NOW - timedelta(hours=8, minutes=10 * n))
    return repo, ci


def activity(fake: FakeGitHub, repo: FakeRepo, ci: int) -> int:
    """New runs, one of which is first seen at attempt 2 of "re-run failed jobs"."""
    for n in range(5):
        fake.add_run(repo, ci, created=NOW - timedelta(minutes=30 + n))
    flaky = fake.add_run(
        repo, ci, created=NOW - timedelta(minutes=20), conclusion="failure",
        labels=[JobSpec(["ubuntu-22.04"], conclusion="success"), JobSpec(["windows-2022"])],
    )  # fmt: skip
    fake.rerun_failed_jobs(repo, flaky, at=NOW - timedelta(minutes=10))
    return flaky


def events(stderr: str, name: str) -> list[dict]:
    return [e for e in map(json.loads, stderr.splitlines()) if e.get("event") == name]


def spent(fake: FakeGitHub, since: int) -> tuple[int, int]:
    """Rate-limited requests and redirects since the ``since``-th request."""
    with fake.lock:
        recent = fake.requests[since:]
    return sum(r.rate_limited for r in recent), sum(r.status == 301 for r in recent)


def test_a_moved_repository_is_mirrored_exactly_at_the_cost_of_an_unmoved_one(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    moved, ci = history(fake, "octo/demo")
    twin, twin_ci = history(fake, "octo/twin")  # never moves: what the same passes cost
    poller.repos = [{"name": "octo/demo", "since": SINCE.date().isoformat()}]
    unmoved = PollerSetup(tmp_path / "twin", fake.url, make_database())
    unmoved.tmp_path.mkdir()
    unmoved.repos = [{"name": "octo/twin", "since": SINCE.date().isoformat()}]
    assert poller.run().returncode == 0
    assert unmoved.run().returncode == 0

    fake.move_repo(moved, "octo-org/renamed")  # transferred and renamed
    flaky = activity(fake, moved, ci)
    activity(fake, twin, twin_ci)
    costs = []
    for _ in range(2):  # config.toml still names octo/demo
        mark = len(fake.requests)
        result = poller.run()
        assert result.returncode == 0, result.stderr
        moved_cost = spent(fake, mark)
        mark = len(fake.requests)
        assert unmoved.run().returncode == 0
        costs.append((moved_cost, spent(fake, mark)))
        [said] = events(result.stderr, "sync.repo_moved")  # once, in one line
        assert (said["old"], said["new"]) == ("octo/demo", "octo-org/renamed")
        assert 'set name = "octo-org/renamed" in config.toml' in said["hint"]

    # The pass that finds the move spends one redirect and one request for the new
    # name, and re-reads the repository, its workflows and its branches, whose bodies
    # now name it anew (their ETags changed on GitHub as in the fake). The passes after
    # it cost exactly what the unmoved twin's do.
    (first, twin_first), (second, twin_second) = costs
    assert first == (twin_first[0] + 1 + 3, 1)
    assert second == (twin_second[0], 0)

    with poller.database.open():
        for model in (WorkflowRun, Job, Branch, Commit, Workflow):
            assert model.select().where(model.repo == "octo/demo").count() == 0, model
        # The config entry keeps one cursor: where its repository went.
        left = SyncCursor.select().where(SyncCursor.repo == "octo/demo")
        assert [(c.resource, c.position) for c in left] == [("repo.moved_to", "octo-org/renamed")]
        runs = WorkflowRun.select().where(WorkflowRun.repo == "octo-org/renamed")
        assert runs.count() == 16  # none from before since: the created filter was kept
        jobs = {(j.runattempt, j.name) for j in Job.select().where(Job.runid == flaky)}
        assert jobs == {(1, "build-1"), (1, "build-2"), (2, "build-2")}  # filter=all kept

    status = poller.run("status", "--json")  # the entry's history, where it moved
    assert status.returncode == 0, status.stderr
    [entry] = json.loads(status.stdout)["repos"]
    assert (entry["repo"], entry["moved_to"], entry["runs_last_week"]) == (
        "octo/demo",
        "octo-org/renamed",
        16,
    )

    poller.repos = [{"name": "octo-org/renamed", "since": SINCE.date().isoformat()}]
    mark = len(fake.requests)
    result = poller.run()  # the operator followed the hint: nothing is read again
    assert result.returncode == 0, result.stderr
    assert not events(result.stderr, "sync.repo_moved")
    assert spent(fake, mark)[1] == 0
    with poller.database.open():
        assert WorkflowRun.select().count() == 16


def test_an_organisations_repository_keeps_its_history_as_it_is_renamed_and_transferred(
    fake: FakeGitHub, poller: PollerSetup
):
    """Renamed within the organisation, the repository is listed under its new name, and
    its history follows it by GitHub's repository id: nothing is read again. Transferred
    out, it is no longer followed, and its history is kept; a ``[[repos]]`` entry for its
    new home takes the history up where it was."""
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", when=NOW - timedelta(days=3))
    for n in range(10):
        fake.add_run(repo, ci, created=NOW - timedelta(hours=5, minutes=n))
    fake.add_commit(fake.add_repo("octo/other"), "main")  # the organisation stays
    poller.orgs = [{"name": "octo"}]
    assert poller.run().returncode == 0

    fake.move_repo(repo, "octo/renamed")
    for n in range(2):
        fake.add_run(repo, ci, created=NOW - timedelta(minutes=20 + n), sha="a" * 40)
    fake.reset_counts()
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert fake.count("/jobs") == 2  # the new runs only: no backfill from scratch
    [moved] = events(result.stderr, "sync.repo_history_moved")
    assert (moved["old"], moved["new"]) == ("octo/demo", "octo/renamed")
    with poller.database.open():
        assert WorkflowRun.select().where(WorkflowRun.repo == "octo/renamed").count() == 12
        assert WorkflowRun.select().where(WorkflowRun.repo == "octo/demo").count() == 0

    fake.move_repo(repo, "elsewhere/renamed")
    fake.add_run(repo, ci, created=NOW - timedelta(minutes=5))
    result = poller.run()
    assert result.returncode == 0, result.stderr
    with poller.database.open():  # no longer in the organisation: kept, not followed
        assert WorkflowRun.select().where(WorkflowRun.repo == "octo/renamed").count() == 12

    poller.repos = [{"name": "elsewhere/renamed"}]
    fake.reset_counts()
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert fake.count("/jobs") == 1
    with poller.database.open():
        assert WorkflowRun.select().where(WorkflowRun.repo == "elsewhere/renamed").count() == 13
        assert WorkflowRun.select().count() == 13  # nothing left under an old name
