"""The dashboard's column semantics, table-driven, on GitHub's documented payloads."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poller import transform

FIXTURES = Path(__file__).parent / "fixtures"
RUN = json.loads((FIXTURES / "workflow-runs-list.json").read_text())["workflow_runs"][0]
JOB = json.loads((FIXTURES / "jobs-list.json").read_text())["jobs"][0]
REPO = "octo-org/octo-repo"


def job(labels, started="2020-01-22T19:34:00Z", completed="2020-01-22T19:36:30Z", attempt=None):
    payload = copy.deepcopy(JOB)
    payload.update(labels=labels, started_at=started, completed_at=completed, run_id=RUN["id"])
    if attempt is not None:
        payload["run_attempt"] = attempt
    return payload


def run(**changes):
    payload = copy.deepcopy(RUN)
    payload.update(status="completed", conclusion="success")
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-01-22T19:33:08Z", datetime(2020, 1, 22, 19, 33, 8)),
        # GitHub's step and workflow times carry offsets; stored values are naive UTC.
        ("2020-01-20T09:42:40.000-08:00", datetime(2020, 1, 20, 17, 42, 40)),
        ("2020-01-20T09:42:40.750+02:00", datetime(2020, 1, 20, 7, 42, 40)),
        (None, None),
        ("", None),
    ],
)
def test_parse_time_gives_naive_utc_whole_seconds(text, expected):
    assert transform.parse_time(text) == expected


@pytest.mark.parametrize(
    ("label", "os"),
    [
        ("ubuntu-22.04", "linux"),
        ("ubuntu-latest", "linux"),
        ("ubuntu-24.04-arm", "linux"),
        ("Linux", "linux"),
        ("azure-linux-scale", "linux"),
        ("windows-2022", "windows"),
        ("Windows", "windows"),
        ("macos-14", "macos"),
        ("macOS", "macos"),
        ("osx", "macos"),
        ("self-hosted", None),
        ("X64", None),
        ("foo", None),
    ],
)
def test_label_os(label, os):
    assert transform.label_os(label) == os


@pytest.mark.parametrize(
    ("labels_per_job", "expected"),
    [
        ([["ubuntu-22.04"]], "linux"),
        ([["self-hosted", "Linux", "X64"]], "linux"),
        ([["windows-2022"], ["ubuntu-22.04"], ["ubuntu-20.04"]], "linux,windows"),
        ([["macos-14"], ["windows-2022"], ["ubuntu-22.04"]], "linux,macos,windows"),
        ([["self-hosted", "foo", "bar"]], None),
        ([], None),
    ],
)
def test_run_os_is_sorted_distinct_oses_of_its_jobs(labels_per_job, expected):
    row = transform.run_row(run(), [job(labels) for labels in labels_per_job], REPO)
    assert row["os"] == expected


def test_run_row_maps_every_dashboard_column():
    jobs = [
        job(["ubuntu-22.04"], "2020-01-22T19:33:40Z", "2020-01-22T19:35:00Z"),
        job(["windows-2022"], "2020-01-22T19:34:10Z", "2020-01-22T19:38:08Z"),
    ]
    row = transform.run_row(run(), jobs, REPO)
    assert row == {
        "gitid": 30433642,
        "author": "octocat",
        "runtime": 268.0,  # 19:33:40 → 19:38:08, seconds (not ms / 100)
        "createtime": datetime(2020, 1, 22, 19, 33, 8),
        "starttime": datetime(2020, 1, 22, 19, 33, 40),  # earliest job start
        "endtime": datetime(2020, 1, 22, 19, 38, 8),  # latest job completion
        "queuetime": 32,  # whole seconds from creation to the first job
        "status": "completed",
        "conclusion": "success",
        "url": "https://github.com/octo-org/octo-repo/actions/runs/30433642",
        "branchname": "master",
        "commithash": "acb5820ced9479c074f688cc328bf03f341a511d",
        "workflowname": "Build",
        "repo": REPO,
        "os": "linux,windows",
        "workflowid": 159038,
        "runattempt": 1,
        "runnumber": 562,
        "event": "push",
        "updatetime": datetime(2020, 1, 22, 19, 33, 8),
    }


def test_run_without_actor_branch_start_or_jobs_stores_nulls():
    payload = run(actor=None, head_branch=None)
    del payload["run_started_at"]
    row = transform.run_row(payload, [], REPO)
    assert row["author"] is None
    assert row["branchname"] is None
    assert row["os"] is None
    assert row["starttime"] is row["endtime"] is row["runtime"] is row["queuetime"] is None


def test_run_without_jobs_falls_back_to_run_started_at():
    row = transform.run_row(run(run_started_at="2020-01-22T19:33:20Z"), [], REPO)
    assert row["starttime"] == datetime(2020, 1, 22, 19, 33, 20)
    assert row["queuetime"] == 12
    assert row["endtime"] is None  # no job says when it finished


def test_unfinished_run_has_start_but_no_end():
    row = transform.run_row(
        run(status="in_progress", conclusion=None), [job(["ubuntu-22.04"], completed=None)], REPO
    )
    assert row["starttime"] == datetime(2020, 1, 22, 19, 34)
    assert row["endtime"] is None and row["runtime"] is None
    assert row["queuetime"] == 52


def test_rerun_timings_and_os_come_from_the_latest_attempt_only():
    jobs = [
        job(["windows-2022"], "2020-01-22T19:34:00Z", "2020-01-22T19:40:00Z", attempt=1),
        job(["ubuntu-22.04"], "2020-01-23T08:00:00Z", "2020-01-23T08:01:30Z", attempt=2),
    ]
    row = transform.run_row(run(run_attempt=2), jobs, REPO)
    assert row["os"] == "linux"
    assert row["starttime"] == datetime(2020, 1, 23, 8, 0)
    assert row["runtime"] == 90.0
    assert row["runattempt"] == 2


def test_attempt_rows_keep_every_attempt():
    jobs = [
        job(["ubuntu-22.04"], "2020-01-22T19:34:00Z", "2020-01-22T19:40:00Z", attempt=1),
        job(["ubuntu-22.04"], "2020-01-23T08:00:00Z", "2020-01-23T08:01:30Z", attempt=2),
    ]
    jobs[0]["conclusion"] = "failure"
    rows = transform.attempt_rows(run(run_attempt=2), jobs)
    assert [(r["attempt"], r["status"], r["conclusion"]) for r in rows] == [
        (1, "completed", "failure"),
        (2, "completed", "success"),
    ]
    assert rows[0]["endtime"] == datetime(2020, 1, 22, 19, 40)


def test_job_row():
    row = transform.job_row(job(["self-hosted", "Linux", "X64"]), REPO, run_attempt=3)
    assert row["gitid"] == JOB["id"]
    assert row["runid"] == RUN["id"]
    assert row["runattempt"] == 3  # the documented example omits run_attempt
    assert row["labels"] == "self-hosted,Linux,X64"
    assert row["os"] == "linux"
    assert row["runnername"] == "my runner"


def test_commit_rows_from_listing_and_from_a_runs_head_commit_agree():
    listing = json.loads((FIXTURES / "commits-list.json").read_text())[0]
    row = transform.commit_row(listing, REPO)
    assert row == {
        "hash": listing["sha"],
        "author": "Monalisa Octocat",
        "message": "Fix all the bugs",
        "time": datetime(2011, 4, 14, 16, 0, 49),
        "repo": REPO,
    }
    head = transform.head_commit_row(RUN, REPO)
    assert head == {
        "hash": "acb5820ced9479c074f688cc328bf03f341a511d",
        "author": "Octo Cat",
        "message": "Create linter.yaml",
        "time": datetime(2020, 1, 22, 19, 33, 5),
        "repo": REPO,
    }
    assert transform.head_commit_row(run(head_commit=None), REPO) is None


def test_branch_and_workflow_rows():
    branch = json.loads((FIXTURES / "branches-list.json").read_text())[0]
    assert transform.branch_row(branch, REPO) == {
        "name": "master",
        "repo": REPO,
        "protected": True,
        "commithash": "c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc",
    }
    workflow = json.loads((FIXTURES / "workflows-list.json").read_text())["workflows"][0]
    assert transform.workflow_row(workflow, REPO) == {
        "gitid": 161335,
        "name": "CI",
        "repo": REPO,
        "state": "active",
        "path": ".github/workflows/blank.yaml",
        "url": "https://github.com/octo-org/octo-repo/blob/master/.github/workflows/161335",
        "imagebuild": False,
    }
    assert transform.workflow_row(workflow, REPO, ["blank.yaml"])["imagebuild"] is True


@pytest.mark.parametrize(
    ("name", "path", "patterns", "expected"),
    [
        ("Build Docker", ".github/workflows/build.yml", ["*docker*"], True),
        ("CI", ".github/workflows/docker-publish.yml", ["*docker*"], True),
        ("Publish", ".github/workflows/publish_images.yml", ["publish_images.yml"], True),
        ("Publish", ".github/workflows/publish_images.yml", ["PUBLISH_IMAGES.YML"], True),
        ("Publish", ".github/workflows/publish_images.yml", [".github/workflows/*"], True),
        ("CI", ".github/workflows/ci.yml", ["*docker*", "publish_images.yml"], False),
        ("Build Docker", ".github/workflows/build.yml", [], False),
        ("publish_images.yml.bak", None, ["publish_images.yml"], False),
    ],
)
def test_builds_images_matches_name_path_or_file_name(name, path, patterns, expected):
    assert transform.builds_images({"name": name, "path": path}, patterns) is expected


moments = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2035, 1, 1))


@given(
    created=moments,
    queue=st.integers(0, 10**6),
    durations=st.lists(
        st.tuples(st.integers(0, 10**4), st.integers(0, 10**5)), min_size=1, max_size=8
    ),
)
def test_timings_are_consistent_for_any_jobs(created, queue, durations):
    created = created.replace(microsecond=0)
    first_start = created + timedelta(seconds=queue)
    jobs = []
    durations[0] = (0, durations[0][1])  # the earliest job starts after the queue time
    for offset, length in durations:
        start = first_start + timedelta(seconds=offset)
        jobs.append(
            job(
                ["ubuntu-22.04"],
                start.isoformat() + "Z",
                (start + timedelta(seconds=length)).isoformat() + "Z",
            )
        )
    row = transform.run_row(run(created_at=created.isoformat() + "Z"), jobs, REPO)
    assert row["queuetime"] == queue
    assert isinstance(row["queuetime"], int)
    assert row["starttime"] == first_start
    assert row["runtime"] == (row["endtime"] - row["starttime"]).total_seconds() >= 0
