"""``python -m poller --once`` as a subprocess against the fake GitHub, on SQLite and MariaDB."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from fake_github import FakeGitHub, FakeRepo
from poller.store.models import Branch, Commit, Job, Repo, Workflow, WorkflowRun
from support import PollerSetup, repo_done_events, snapshot

NOW = datetime.now(UTC).replace(microsecond=0)
LONG_BRANCH = "feature/" + "b" * 247  # GitHub's maximum: 255 characters


@dataclass
class Scenario:
    repo: FakeRepo
    ci: int
    nightly: int
    multi_os: int
    failed_mac: int
    in_progress: int
    bare: int
    on_long_branch: int
    emoji_sha: str


def build(fake: FakeGitHub, name: str = "octo/demo") -> Scenario:
    repo = fake.add_repo(name)
    ci = fake.add_workflow(repo, "CI")
    nightly = fake.add_workflow(repo, "Nightly")
    fake.add_commit(repo, "main", message="first", when=NOW - timedelta(days=2))
    emoji_sha = fake.add_commit(
        repo,
        "main",
        message="Fix the build 🚀✨",
        author="Zoë Ünicode",
        when=NOW - timedelta(days=1),
    )
    fake.create_branch(repo, LONG_BRANCH)
    fake.add_commit(repo, LONG_BRANCH, message="on a long branch", when=NOW - timedelta(hours=5))
    fake.create_branch(repo, "release")
    multi_os = fake.add_run(
        repo,
        ci,
        created=NOW - timedelta(hours=6),
        labels=[["ubuntu-22.04"], ["windows-2022"], ["ubuntu-20.04"]],
        queue_seconds=45,
        job_seconds=300,
    )
    failed_mac = fake.add_run(
        repo, nightly, created=NOW - timedelta(hours=5), conclusion="failure", labels=[["macos-14"]]
    )
    in_progress = fake.add_run(
        repo,
        ci,
        created=NOW - timedelta(minutes=20),
        status="in_progress",
        labels=[["self-hosted", "Linux", "X64"]],
    )
    bare = fake.add_run(
        repo, nightly, created=NOW - timedelta(hours=4), labels=[], actor=None, branch=None
    )
    del repo.runs[bare]["run_started_at"]
    on_long_branch = fake.add_run(repo, ci, created=NOW - timedelta(hours=3), branch=LONG_BRANCH)
    return Scenario(
        repo, ci, nightly, multi_os, failed_mac, in_progress, bare, on_long_branch, emoji_sha
    )


def test_first_pass_mirrors_the_repository(fake: FakeGitHub, poller: PollerSetup):
    scenario = build(fake)
    poller.repos = [{"name": "octo/demo"}]
    result = poller.run()
    assert result.returncode == 0, result.stderr

    with poller.database.open():
        assert [r.name for r in Repo.select()] == ["octo/demo"]
        assert sorted(w.name for w in Workflow.select()) == ["CI", "Nightly"]
        assert sorted(b.name for b in Branch.select()) == sorted([LONG_BRANCH, "main", "release"])
        assert WorkflowRun.select().count() == 5
        assert Job.select().count() == 6

        run = WorkflowRun.get(WorkflowRun.gitid == scenario.multi_os)
        created = (NOW - timedelta(hours=6)).replace(tzinfo=None)
        assert run.repo == "octo/demo"
        assert run.os == "Linux,Windows"
        assert run.createtime == created
        assert run.starttime == created + timedelta(seconds=45)
        assert run.endtime == created + timedelta(seconds=345)
        assert run.queuetime == 45
        assert run.runtime == 300.0
        assert (run.status, run.conclusion, run.author) == ("completed", "success", "octocat")
        assert run.workflowname == "CI"
        assert run.url == f"https://github.com/octo/demo/actions/runs/{scenario.multi_os}"

        assert WorkflowRun.get(WorkflowRun.gitid == scenario.failed_mac).os == "macOS"
        assert WorkflowRun.get(WorkflowRun.gitid == scenario.failed_mac).conclusion == "failure"
        running = WorkflowRun.get(WorkflowRun.gitid == scenario.in_progress)
        assert (running.status, running.os, running.endtime) == ("in_progress", "Linux", None)

        bare = WorkflowRun.get(WorkflowRun.gitid == scenario.bare)
        assert (bare.author, bare.branchname, bare.os, bare.starttime, bare.queuetime) == (
            None,
            None,
            None,
            None,
            None,
        )

        long = WorkflowRun.get(WorkflowRun.gitid == scenario.on_long_branch)
        assert long.branchname == LONG_BRANCH  # widened, not truncated

        emoji = Commit.get(Commit.hash == scenario.emoji_sha)
        assert emoji.message == "Fix the build 🚀✨"
        assert emoji.author == "Zoë Ünicode"
        # Every run's head commit is stored, from the listing's head_commit.
        heads = {r.commithash for r in WorkflowRun.select()}
        assert heads <= {c.hash for c in Commit.select()}


def test_second_identical_pass_changes_no_row(fake: FakeGitHub, poller: PollerSetup):
    build(fake)
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    before = snapshot(poller.database)
    second = poller.run()
    assert second.returncode == 0, second.stderr
    assert snapshot(poller.database) == before
    done = [json.loads(line) for line in second.stderr.splitlines() if '"sync.repo_done"' in line]
    counts = done[0]["counts"]
    assert all(c["inserted"] == c["updated"] == c["deleted"] == 0 for c in counts.values())
    # Nothing moved, so no jobs were fetched again.
    assert fake.count("/jobs") == 5


def test_backfill_bounds_max_runs_and_since(fake: FakeGitHub, poller: PollerSetup):
    repo = fake.add_repo("octo/big")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    for day in range(1, 41):
        fake.add_run(repo, ci, created=NOW - timedelta(days=day))
    other = fake.add_repo("octo/dated")
    nightly = fake.add_workflow(other, "Nightly")
    fake.add_commit(other, "main")
    for day in range(1, 41):
        fake.add_run(other, nightly, created=NOW - timedelta(days=day, hours=1))
    # A run outside the newest 15, still active (say, re-run): max_runs keeps it out too.
    fake.add_run(repo, ci, created=NOW - timedelta(days=45), status="in_progress")
    since = (NOW - timedelta(days=10, hours=12)).date()
    poller.repos = [
        {"name": "octo/big", "max_runs": 15},
        {"name": "octo/dated", "since": since.isoformat()},
    ]
    result = poller.run()
    assert result.returncode == 0, result.stderr
    with poller.database.open():
        big = WorkflowRun.select().where(WorkflowRun.repo == "octo/big")
        assert big.count() == 15
        newest = sorted(repo.runs, key=lambda i: repo.runs[i]["created_at"])[-15:]
        assert sorted(r.gitid for r in big) == sorted(newest)
        dated = WorkflowRun.select().where(WorkflowRun.repo == "octo/dated")
        floor = datetime.combine(since, datetime.min.time())
        assert all(r.createtime >= floor for r in dated)
        assert dated.count() == sum(
            1 for r in other.runs.values() if datetime.fromisoformat(r["created_at"][:-1]) >= floor
        )
    # max_runs=15 costs one listing page and one jobs request per run, nothing more.
    assert fake.count("/repos/octo/big/actions/runs/") == 15
    assert poller.run().returncode == 0
    with poller.database.open():
        assert WorkflowRun.select().where(WorkflowRun.repo == "octo/big").count() == 15


@pytest.mark.sqlite_only
def test_bad_repository_is_skipped_and_the_others_still_sync(fake: FakeGitHub, poller: PollerSetup):
    build(fake, "octo/good")
    poller.repos = [{"name": "octo/missing"}, {"name": "octo/good"}]
    result = poller.run()
    assert result.returncode == 1
    failed = [
        json.loads(line) for line in result.stderr.splitlines() if '"sync.repo_failed"' in line
    ]
    assert [(event["repo"], "404" in event["error"]) for event in failed] == [
        ("octo/missing", True)
    ]
    assert "Traceback" not in result.stderr
    with poller.database.open():
        assert WorkflowRun.select().where(WorkflowRun.repo == "octo/good").count() == 5


@pytest.mark.sqlite_only
def test_rejected_token_is_logged_per_repository(fake: FakeGitHub, poller: PollerSetup):
    build(fake)
    poller.repos = [{"name": "octo/demo"}]
    result = poller.run(GITHUB_TOKEN="ghp_not_the_right_token_000000000000")
    assert result.returncode == 1
    assert "rejected the credentials (401): check GITHUB_TOKEN" in result.stderr
    assert "ghp_not_the_right_token" not in result.stderr


def test_two_repositories_may_share_branch_and_workflow_names(
    fake: FakeGitHub, poller: PollerSetup
):
    build(fake, "octo/one")
    build(fake, "octo/two")
    poller.repos = [{"name": "octo/one"}, {"name": "octo/two"}]
    assert poller.run().returncode == 0
    with poller.database.open():
        mains = Branch.select().where(Branch.name == "main")
        assert sorted(b.repo for b in mains) == ["octo/one", "octo/two"]
        assert Workflow.select().where(Workflow.name == "CI").count() == 2


def test_deleted_branch_disappears_and_renamed_workflow_updates(
    fake: FakeGitHub, poller: PollerSetup
):
    scenario = build(fake)
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    fake.delete_branch(scenario.repo, "release")
    scenario.repo.workflows[scenario.nightly]["name"] = "Nightly Build"
    # No run shows a push, so only a full pass re-reads branches and workflows at once;
    # a paced one (the daemon, cron's --once) does within metadata_minutes.
    assert poller.run("--once", "--full").returncode == 0
    with poller.database.open():
        assert "release" not in {b.name for b in Branch.select()}
        renamed = Workflow.get(Workflow.gitid == scenario.nightly)
        assert renamed.name == "Nightly Build"
        assert Workflow.select().count() == 2


@pytest.mark.sqlite_only
def test_unauthenticated_pass_says_so_in_one_line(fake: FakeGitHub, poller: PollerSetup):
    build(fake)
    poller.repos = [{"name": "octo/demo"}]
    poller.token = None
    result = poller.run()
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "unauthenticated" in line]
    assert len(lines) == 1
    assert "60 requests an hour" in lines[0]


@pytest.mark.sqlite_only
def test_each_run_counts_once_a_pass(fake: FakeGitHub, poller: PollerSetup):
    """Listings overlap (the backfill restarts at its boundary second, the windows are
    primed after it): a 250-run backfill logged inserted 250 and unchanged 250."""
    from test_daemon import small_repo

    small_repo(fake, runs=250)  # 3 to 4 days old: all of it backfill
    poller.repos = [{"name": "octo/demo"}]
    first = poller.run()
    assert first.returncode == 0, first.stderr
    [done] = repo_done_events(first.stderr)
    runs = done["counts"]["workflowruns"]
    assert (runs["inserted"], runs["unchanged"]) == (250, 0)
    second = poller.run("--once", "--full")  # every window of the horizon, re-read
    [done] = repo_done_events(second.stderr)
    runs = done["counts"]["workflowruns"]
    assert (runs["inserted"], runs["updated"], runs["unchanged"]) == (0, 0, 250)
