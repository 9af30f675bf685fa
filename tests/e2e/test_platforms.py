"""The dashboard's truth about platforms, end to end: IREE's real runner labels give
GitHub's OS names, skipped jobs and re-runs give honest queue times, and the waterfall's
platform data, job queue times and steps are there in plain SQL. Real ``python -m
poller`` processes against the fake GitHub, on SQLite and on MariaDB."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta

import peewee
import pytest

from fake_github import FakeGitHub, FakeRepo, JobSpec
from poller.store.models import Commit, Job, Step, WorkflowRun
from support import (
    REPO_ROOT,
    Database,
    PollerSetup,
    docs_sql,
    mirror,
    repo_done_events,
    scratch_sync,
)

NOW = datetime.now(UTC).replace(microsecond=0)
REPO = "iree-org/iree"
GPU_LABEL = "nodai-amdgpu-mi300-x86-64"


def iree_jobs(gpu_runner: int | None = None) -> list[JobSpec]:
    """IREE's CI: hosted Linux, its Windows scale set, hosted macOS, its ARM64 machines,
    a GPU machine whose label names no OS, and a job that was skipped."""
    return [
        JobSpec(["ubuntu-24.04"], name="linux_x64_clang"),
        JobSpec(["azure-windows-scale"], name="windows_x64_msvc", runner_name="azwin-3"),
        JobSpec(["macos-14"], name="macos_arm64_clang"),
        JobSpec(["ah-ubuntu_22_04-c7g_4x-50"], name="linux_arm64_clang", runner_name="ah-7"),
        JobSpec(
            [GPU_LABEL],
            name="test_mi300",
            runner_name="nodai-mi300-07",
            runner_id=gpu_runner,
            runner_group="amd-gpu",
            queue_seconds=600,
        ),
        JobSpec([], name="publish_website", conclusion="skipped"),
    ]


def iree(fake: FakeGitHub) -> tuple[FakeRepo, int, int]:
    repo = fake.add_repo(REPO)
    fake.add_commit(repo, "main", when=NOW - timedelta(hours=7))
    ci = fake.add_workflow(repo, "CI")
    gpu_runner = fake.add_runner(
        "orgs/iree-org", "nodai-mi300-07", "linux", ["Linux", "X64", GPU_LABEL]
    )
    run = fake.add_run(repo, ci, created=NOW - timedelta(hours=6), labels=iree_jobs(gpu_runner))
    return repo, ci, run


def jobs_by_name(database: Database) -> dict[str, Job]:
    with database.open():
        return {job.name: job for job in Job.select()}


def test_ireees_runners_give_githubs_os_names_when_runners_may_be_read(
    fake: FakeGitHub, poller: PollerSetup
):
    repo, _, run = iree(fake)
    poller.repos = [{"name": REPO}]
    result = poller.run()
    assert result.returncode == 0, result.stderr
    with poller.database.open():
        row = WorkflowRun.get(WorkflowRun.gitid == run)
        assert row.os == "Linux,macOS,Windows"
        # Start and queue time come from jobs that ran; the skipped one ran at 0 s.
        assert row.queuetime == 30
        assert row.starttime == (NOW - timedelta(hours=6, seconds=-30)).replace(tzinfo=None)
        assert Step.select().count() == 5 * 3  # the skipped job has no steps
    jobs = jobs_by_name(poller.database)
    assert {name: job.os for name, job in jobs.items()} == {
        "linux_x64_clang": "Linux",
        "windows_x64_msvc": "Windows",
        "macos_arm64_clang": "macOS",
        "linux_arm64_clang": "Linux",
        "test_mi300": "Linux",  # what GitHub says about the runner that ran it
        "publish_website": None,
    }
    assert (jobs["test_mi300"].runnergroup, jobs["test_mi300"].queuetime) == ("amd-gpu", 600)
    assert jobs["publish_website"].queuetime is None
    [done] = repo_done_events(result.stderr)
    assert done["jobs_os_unknown"] == 0
    # The repository's runners, then the organisation's, which has the GPU machine.
    assert fake.count("/actions/runners") == 2

    # The runner was ephemeral, gone after its job. A re-run fetches every attempt's jobs
    # again: the first attempt's GPU job keeps the OS its runner told, unasked.
    fake.runners.clear()
    fake.rerun(repo, run, at=NOW - timedelta(hours=1), labels=iree_jobs())
    fake.reset_counts()
    assert poller.run().returncode == 0
    with poller.database.open():
        gpu = {job.runattempt: job.os for job in Job.select().where(Job.name == "test_mi300")}
        assert gpu == {1: "Linux", 2: None}
        assert WorkflowRun.get(WorkflowRun.gitid == run).os == "Linux,macOS,Windows"


def test_without_permission_to_read_runners_nothing_fails_and_status_names_the_labels(
    fake: FakeGitHub, poller: PollerSetup
):
    repo, ci, run = iree(fake)
    fake.runners_readable = False
    poller.repos = [{"name": REPO}]
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert "sync.runners_unreadable" in result.stderr
    [done] = repo_done_events(result.stderr)
    assert done["jobs_os_unknown"] == 1
    assert jobs_by_name(poller.database)["test_mi300"].os is None
    with poller.database.open():
        assert WorkflowRun.get(WorkflowRun.gitid == run).os == "Linux,macOS,Windows"

    status = poller.run("status", "--json")
    assert status.returncode == 0, status.stderr
    [state] = json.loads(status.stdout)["repos"]
    assert state["labels_without_os"] == {GPU_LABEL: 1}
    table = poller.run("status")
    assert f"labels that named no OS (map them in config.toml [runner_os]): {GPU_LABEL}" in (
        table.stdout
    )

    # The refusal is remembered: a new unknown job asks GitHub nothing for a day.
    fake.add_run(repo, ci, created=NOW - timedelta(hours=1), labels=iree_jobs())
    fake.reset_counts()
    assert poller.run().returncode == 0
    assert fake.count("/actions/runners", rate_limited=False) == 0

    # The operator maps the label: new jobs on it are Linux, with no runner lookup, and
    # so are the jobs stored before, at no GitHub request.
    poller.runner_os = {"nodai-amdgpu-*": "linux"}
    fake.add_run(repo, ci, created=NOW - timedelta(minutes=30), labels=iree_jobs())
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert '"sync.jobs_os_resolved"' in result.stderr and '"jobs": 2' in result.stderr
    [done] = repo_done_events(result.stderr)
    assert done["jobs_os_unknown"] == 0
    assert fake.count("/actions/runners", rate_limited=False) == 0
    with poller.database.open():
        gpu = Job.select().where(Job.name == "test_mi300")
        assert [job.os for job in gpu] == ["Linux"] * 3
    status = json.loads(poller.run("status", "--json").stdout)
    assert status["repos"][0]["labels_without_os"] == {}


def test_a_rerun_of_failed_jobs_days_later(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    """Only the failed Windows job runs again, three days after the run was created."""
    repo = fake.add_repo(REPO)
    fake.add_commit(repo, "main", when=NOW - timedelta(days=4))
    ci = fake.add_workflow(repo, "CI")
    run = fake.add_run(
        repo,
        ci,
        created=NOW - timedelta(days=3),
        conclusion="failure",
        labels=[
            JobSpec(["ubuntu-24.04"], name="linux_x64_clang", conclusion="success"),
            JobSpec(["azure-windows-scale"], name="windows_x64_msvc"),
        ],
    )
    poller.repos = [{"name": REPO}]
    assert poller.run().returncode == 0
    requested = NOW - timedelta(hours=1)
    assert fake.rerun_failed_jobs(repo, run, at=requested) == ["windows_x64_msvc"]
    result = poller.run("--once", "--full")  # the sweep of the horizon, due at once
    assert result.returncode == 0, result.stderr

    with poller.database.open() as db:
        row = WorkflowRun.get(WorkflowRun.gitid == run)
        assert (row.runattempt, row.conclusion) == (2, "success")
        assert row.createtime == (NOW - timedelta(days=3)).replace(tzinfo=None)
        # The attempt's own wait and work: 10 s queued, not three days.
        assert row.starttime == (requested + timedelta(seconds=10)).replace(tzinfo=None)
        assert (row.queuetime, row.runtime) == (10, 60.0)
        # Both platforms, as GitHub shows the attempt: Linux passed in attempt 1.
        assert row.os == "Linux,Windows"
        results = {
            name: (attempt, conclusion)
            for name, attempt, conclusion in db.execute_sql(
                "SELECT jobname, jobattempt, conclusion FROM job_results WHERE runid = %s"
                if isinstance(db, peewee.MySQLDatabase)
                else "SELECT jobname, jobattempt, conclusion FROM job_results WHERE runid = ?",
                (run,),
            ).fetchall()
        }
        assert results == {"linux_x64_clang": (1, "success"), "windows_x64_msvc": (2, "success")}
        [flaky] = db.execute_sql("SELECT runid, attempts FROM flaky_runs").fetchall()
        assert tuple(flaky) == (run, 2)
        kind = "MySQL/MariaDB" if isinstance(db, peewee.MySQLDatabase) else "SQLite"
        title = f"Waterfall: each platform's result per commit ({kind})"
        waterfall = db.execute_sql(docs_sql(title))
        [(commit, *cells)] = waterfall.fetchall()
        assert commit == repo.runs[run]["head_sha"]
        assert cells[:4] == ["success", None, None, "success"]  # Linux, Mac, ARM64, Windows

    fresh = scratch_sync(poller, make_database(), tmp_path / "scratch")
    assert mirror(poller.database) == mirror(fresh.database)


def test_queue_time_and_steps_with_the_readmes_queries(
    fake: FakeGitHub, poller: PollerSetup, database: Database
):
    repo, ci, _ = iree(fake)
    for hours, wait in ((5, 60), (4, 1800), (3, 120)):
        fake.add_run(
            repo,
            ci,
            created=NOW - timedelta(hours=hours),
            conclusion="failure",
            labels=[JobSpec([GPU_LABEL], name="test_mi300", queue_seconds=wait)],
        )
    poller.repos = [{"name": REPO}]
    poller.runner_os = {"nodai-*": "Linux"}
    assert poller.run().returncode == 0
    kind = "MySQL, MariaDB" if database.kind == "mariadb" else "SQLite"
    title = f"Job queue time per runner label over the last week ({kind})"
    with database.open() as db:
        rows = db.execute_sql(docs_sql(title)).fetchall()
        by_label = {labels: (jobs, p50, p95) for labels, jobs, p50, p95 in rows}
        # Four MI300 jobs waited 60, 120, 600 and 1800 s.
        assert by_label[GPU_LABEL] == (4, 120, 1800)
        assert by_label["ubuntu-24.04"] == (1, 30, 30)
        failed = db.execute_sql(docs_sql("Failed steps, newest first")).fetchall()
        assert len(failed) == 3
        assert {row[1] for row in failed} == {"test_mi300"}
        assert {row[2] for row in failed} == {"Complete job"}


def test_force_pushes_and_author_profiles_fill_the_later_legacy_commit_columns(
    fake: FakeGitHub, poller: PollerSetup
):
    repo = fake.add_repo(REPO)
    base = fake.add_commit(repo, "main", message="base", when=NOW - timedelta(days=2))
    fake.add_commit(repo, "main", message="one", when=NOW - timedelta(days=1))
    fake.add_commit(repo, "main", message="two", author="Unlinked Person")
    fake.add_workflow(repo, "CI")
    poller.repos = [{"name": REPO, "max_commits": 2}]
    assert poller.run().returncode == 0

    # A fast-forward by three: the walk stops at max_commits short of the last head, so
    # GitHub's compare decides, and says "ahead".
    fake.add_commit(repo, "main", message="three")
    fake.add_commit(repo, "main", message="four")
    fast_forward = fake.add_commit(repo, "main", message="five")
    fake.reset_counts()
    # No run shows these pushes: --full reads the branches at once (a paced pass would
    # within metadata_minutes).
    assert poller.run("--once", "--full").returncode == 0
    assert fake.count("/compare/") == 1
    # A force-push onto the base: the new head does not descend from "five".
    forced = fake.add_commit(repo, "main", message="rewritten", onto=base)
    result = poller.run("--once", "--full")
    assert result.returncode == 0, result.stderr
    assert "sync.branch_force_pushed" in result.stderr

    with poller.database.open():
        commits = {c.message: c for c in Commit.select()}
        assert commits["rewritten"].hash == forced
        assert commits["rewritten"].forced is True
        assert commits["five"].hash == fast_forward and commits["five"].forced is None
        assert commits["two"].authorurl is None  # its e-mail belongs to no account
        assert commits["four"].authorurl == "https://github.com/octocat"


@pytest.mark.parametrize("rows_lowercase", ["workflowruns", "jobs"])
def test_an_earlier_databases_lowercase_os_values_are_upgraded_in_place(
    fake: FakeGitHub, poller: PollerSetup, database: Database, rows_lowercase
):
    repo, ci, _ = iree(fake)
    fake.add_run(repo, ci, created=NOW - timedelta(hours=2), labels=[["macos-14"]])
    poller.repos = [{"name": REPO}]
    assert poller.run().returncode == 0
    with database.open() as db:
        # What an earlier shark-poller left: lowercase OS values, no migrations table.
        db.execute_sql(f"UPDATE {rows_lowercase} SET os = LOWER(os)")
        db.execute_sql("DROP TABLE schema_migrations")
        before = db.execute_sql(f"SELECT COUNT(*) FROM {rows_lowercase}").fetchone()[0]
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert "schema.os_names_upgraded" in result.stderr
    with database.open() as db:
        binary = "BINARY " if database.kind == "mariadb" else ""
        values = {
            value
            for (value,) in db.execute_sql(
                f"SELECT DISTINCT {binary}os FROM {rows_lowercase} WHERE os IS NOT NULL"
            ).fetchall()
        }
        values = {v.decode() if isinstance(v, bytes) else v for v in values}
        expected = {"Linux,macOS,Windows", "macOS"} if rows_lowercase == "workflowruns" else None
        assert values == (expected or {"Linux", "Windows", "macOS"})
        after = db.execute_sql(f"SELECT COUNT(*) FROM {rows_lowercase}").fetchone()[0]
        assert after == before
        if database.kind == "mariadb":
            # The dashboard's SQL patterns still match, through the _ci collation.
            linux = "SELECT COUNT(*) FROM jobs WHERE os = 'linux'"
            assert db.execute_sql(linux).fetchone()[0] == 3
    again = poller.run()
    assert "schema.os_names_upgraded" not in again.stderr  # once per database


def test_jobs_no_runner_took_are_waits_not_runs(
    fake: FakeGitHub, poller: PollerSetup, database: Database
):
    """GPU jobs nobody picked up, cancelled after 15 minutes in the queue, ran nothing:
    their run has no start, end, run time or OS, and waited 900 s. A run where two jobs
    ran and one never got a runner takes its times from the two. The docs' p50/p95
    query counts the cancelled jobs as the waits they were."""
    repo = fake.add_repo(REPO)
    fake.add_commit(repo, "main", when=NOW - timedelta(hours=2))
    ci = fake.add_workflow(repo, "CI")
    created = NOW - timedelta(minutes=30)
    starved = fake.add_run(
        repo, ci, created=created, status="queued",
        labels=[JobSpec([GPU_LABEL], name=f"test_mi300_{n}", queued=True) for n in range(3)],
    )  # fmt: skip
    mixed = fake.add_run(
        repo, ci, created=created, status="in_progress", queue_seconds=70,
        labels=[
            JobSpec(["ubuntu-24.04"], name="linux"),
            JobSpec(["azure-linux-scale"], name="linux_scale"),
            JobSpec(["macos-14"], name="macos", queued=True),
        ],
    )  # fmt: skip
    poller.repos = [{"name": REPO}]
    first = poller.run()
    assert first.returncode == 0, first.stderr
    with database.open():
        row = WorkflowRun.get(WorkflowRun.gitid == starved)
        # Queued: nothing has started, and the wait is not over.
        assert (row.status, row.starttime, row.queuetime, row.os) == ("queued", None, None, None)

    fake.cancel_run(repo, starved, at=created + timedelta(seconds=900))
    fake.cancel_run(repo, mixed, at=created + timedelta(seconds=890))
    second = poller.run()
    assert second.returncode == 0, second.stderr
    with database.open() as db:
        row = WorkflowRun.get(WorkflowRun.gitid == starved)
        assert (row.conclusion, row.starttime, row.endtime) == ("cancelled", None, None)
        assert (row.runtime, row.os, row.queuetime) == (None, None, 900)
        row = WorkflowRun.get(WorkflowRun.gitid == mixed)
        assert (row.queuetime, row.runtime, row.os) == (70, 820, "Linux")
        waits = db.execute_sql(
            "SELECT jobname, starttime, queuetime FROM job_queue_times WHERE labels = %s"
            % ("?" if database.kind == "sqlite" else "%s"),
            (GPU_LABEL,),
        ).fetchall()
        assert sorted(waits) == [(f"test_mi300_{n}", None, 900) for n in range(3)]
        kind = "MySQL, MariaDB" if database.kind == "mariadb" else "SQLite"
        title = f"Job queue time per runner label over the last week ({kind})"
        by_label = {labels: rest for labels, *rest in db.execute_sql(docs_sql(title))}
        assert by_label[GPU_LABEL] == [3, 900, 900]
        assert by_label["macos-14"] == [1, 890, 890]  # queued with the run, cancelled at 890
        negative = (WorkflowRun.queuetime < 0) | (WorkflowRun.runtime < 0)
        assert WorkflowRun.select().where(negative).count() == 0
        assert Job.select().where(Job.queuetime < 0).count() == 0


def test_the_dashboards_deployment_stores_every_fleet_label_set_under_its_os(
    fake: FakeGitHub, sqlite_poller: PollerSetup
):
    """systemd/config.toml, pointed at the fake GitHub and SQLite, run as a real
    ``python -m poller --once``: a run for each label set the five repositories'
    workflows use, in the repository that uses it, is stored with its runners' OS."""
    fleet = json.loads((REPO_ROOT / "tests" / "fixtures" / "fleet-runner-labels.json").read_text())
    shipped = (REPO_ROOT / "systemd" / "config.toml").read_text()
    config = shipped.replace("https://api.github.com", fake.url).replace(
        "mysql://shark_poller@127.0.0.1:3306/shark_dashboard_db", sqlite_poller.database.url
    )
    expected = {}
    repos: dict[str, tuple[FakeRepo, int]] = {}
    for entry in fleet["label_sets"]:
        name = entry["seen_in"].split(":")[0].split(" ")[0]
        if name not in repos:
            repo = fake.add_repo(name)
            fake.add_commit(repo, "main", when=NOW - timedelta(days=1))
            repos[name] = (repo, fake.add_workflow(repo, "CI"))
        repo, workflow = repos[name]
        created = NOW - timedelta(hours=2, minutes=len(expected))
        run = fake.add_run(repo, workflow, created=created, labels=[entry["labels"]])
        expected[run] = entry["os"]
    path = sqlite_poller.tmp_path / "deployment.toml"
    path.write_text(config)
    result = subprocess.run(
        [sys.executable, "-m", "poller", "--config", str(path), "--once"],
        env=sqlite_poller.env(), capture_output=True, text=True, timeout=120,
        cwd=sqlite_poller.tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(repos) == sorted(
        r["name"] for r in tomllib.loads(shipped)["repos"]
    )  # the fixture's repositories are the deployment's
    with sqlite_poller.database.open():
        stored = {row.gitid: row.os for row in WorkflowRun.select()}
    assert stored == expected
