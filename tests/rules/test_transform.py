"""The dashboard's column semantics, table-driven, on GitHub's documented payloads."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poller.rules import repo_rows, transform
from support import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures"
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
    ("labels_per_job", "expected"),
    [
        ([["ubuntu-22.04"]], "Linux"),
        ([["self-hosted", "Linux", "X64"]], "Linux"),
        ([["windows-2022"], ["ubuntu-22.04"], ["ubuntu-20.04"]], "Linux,Windows"),
        ([["macos-14"], ["windows-2022"], ["ubuntu-22.04"]], "Linux,macOS,Windows"),
        # IREE's CI: GitHub-hosted Linux, its Windows MSVC scale set, a hosted macOS.
        ([["ubuntu-24.04"], ["azure-windows-scale"], ["macos-14"]], "Linux,macOS,Windows"),
        ([["self-hosted", "foo", "bar"]], None),
        ([], None),
    ],
)
def test_run_os_is_sorted_distinct_oses_of_its_jobs(labels_per_job, expected):
    row = transform.run_row(run(), [job(labels) for labels in labels_per_job], REPO)
    assert row["os"] == expected


def test_skipped_jobs_define_no_start_end_or_os():
    """GitHub gives a skipped job times at its creation and no runner."""
    ran = job(["ubuntu-22.04"], "2020-01-22T19:34:00Z", "2020-01-22T19:36:00Z")
    never = job(["windows-2022"], "2020-01-22T19:33:09Z", "2020-01-22T19:33:10Z")
    never.update(conclusion="skipped", runner_name=None, runner_id=None, name="win")
    row = transform.run_row(run(), [never, ran], REPO)
    assert row["os"] == "Linux"
    assert row["starttime"] == datetime(2020, 1, 22, 19, 34)
    assert row["queuetime"] == 52  # 19:33:08 -> 19:34:00, not 1 s
    assert row["runtime"] == 120.0
    assert transform.job_row(never, REPO)["queuetime"] is None


def test_a_rerun_queues_from_its_own_request_not_from_the_run_creation():
    """A re-run keeps created_at; run_started_at is when the new attempt was asked for."""
    jobs = [
        job(["ubuntu-22.04"], "2020-01-22T19:34:00Z", "2020-01-22T19:40:00Z", attempt=1),
        job(["ubuntu-22.04"], "2020-01-27T08:00:45Z", "2020-01-27T08:01:30Z", attempt=2),
    ]
    row = transform.run_row(run(run_attempt=2, run_started_at="2020-01-27T08:00:00Z"), jobs, REPO)
    assert row["createtime"] == datetime(2020, 1, 22, 19, 33, 8)
    assert row["queuetime"] == 45
    assert row["starttime"] == datetime(2020, 1, 27, 8, 0, 45)
    assert row["runtime"] == 45.0


def failed_jobs_rerun(carried_attempt):
    """Attempt 1 ran linux (passed) and windows (failed); attempt 2 re-ran windows.
    ``carried_attempt`` is where the passed job is listed: 1 (GitHub's filter=all, and
    its filter=latest before May 2025) or 2 (Gitea: a copy with its earlier times)."""
    linux = job(["ubuntu-24.04"], "2020-01-22T19:34:00Z", "2020-01-22T19:50:00Z", attempt=1)
    linux["name"] = "linux_x64_clang"
    failed = job(["azure-windows-scale"], "2020-01-22T19:35:00Z", "2020-01-22T19:45:00Z")
    failed.update(name="windows_x64_msvc", conclusion="failure", run_attempt=1)
    again = job(["azure-windows-scale"], "2020-01-25T10:02:00Z", "2020-01-25T10:30:00Z")
    again.update(name="windows_x64_msvc", run_attempt=2, id=JOB["id"] + 2)
    carried = {**linux, "run_attempt": carried_attempt, "id": JOB["id"] + 3}
    return [linux, failed, again] if carried_attempt == 1 else [linux, failed, again, carried]


@pytest.mark.parametrize("carried_attempt", [1, 2])
def test_a_rerun_of_failed_jobs_shows_the_attempt_as_github_does(carried_attempt):
    attempt = run(run_attempt=2, run_started_at="2020-01-25T10:00:00Z")
    row = transform.run_row(attempt, failed_jobs_rerun(carried_attempt), REPO)
    # The attempt shows both platforms: the passed job is not re-run, but it is there.
    assert row["os"] == "Linux,Windows"
    # Its times are those of what ran in it: the Windows job alone.
    assert row["starttime"] == datetime(2020, 1, 25, 10, 2)
    assert row["endtime"] == datetime(2020, 1, 25, 10, 30)
    assert row["queuetime"] == 120
    assert row["runtime"] == 28 * 60.0


def test_the_latest_listing_of_a_rerun_of_failed_jobs_holds_only_what_ran():
    """Since May 2025 GitHub's filter=latest omits the jobs not re-run; we read
    filter=all, but a latest-only listing still gives the right times."""
    jobs = [j for j in failed_jobs_rerun(1) if j["run_attempt"] == 2]
    row = transform.run_row(run(run_attempt=2, run_started_at="2020-01-25T10:00:00Z"), jobs, REPO)
    assert (row["os"], row["queuetime"]) == ("Windows", 120)


def test_a_completed_run_whose_jobs_were_all_skipped_has_no_end():
    never = job([], "2020-01-22T19:33:09Z", "2020-01-22T19:33:10Z")
    never["conclusion"] = "skipped"
    row = transform.run_row(run(conclusion="skipped"), [never], REPO)
    assert row["endtime"] is row["os"] is row["runtime"] is None


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
        "os": "Linux,Windows",
        "workflowid": 159038,
        "runattempt": 1,
        "runnumber": 562,
        "event": "push",
        "updatetime": datetime(2020, 1, 22, 19, 33, 8),
        "deletetime": None,  # GitHub has it
    }


def test_run_without_actor_branch_start_or_jobs_stores_nulls():
    payload = run(actor=None, head_branch=None)
    del payload["run_started_at"]
    row = transform.run_row(payload, [], REPO)
    assert row["author"] is None
    assert row["branchname"] is None
    assert row["os"] is None
    assert row["starttime"] is row["endtime"] is row["runtime"] is row["queuetime"] is None


def test_run_without_jobs_has_no_start_and_waited_for_no_runner():
    """``run_started_at`` is when the attempt was asked for, not when anything ran: a run
    with no job (a startup failure) ran nothing and waited for no runner."""
    row = transform.run_row(run(run_started_at="2020-01-22T19:33:20Z"), [], REPO)
    assert row["starttime"] is row["endtime"] is row["runtime"] is row["queuetime"] is None


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
    assert row["os"] == "Linux"
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
    assert row["os"] == "Linux"
    assert row["runnername"] == "my runner"
    assert row["runnergroup"] == "my runner group"
    assert row["queuetime"] is None  # GitHub's example has no created_at
    queued = transform.job_row(
        {**job(["x"]), "created_at": "2020-01-22T19:30:00Z", "started_at": "2020-01-22T19:34:00Z"},
        REPO,
        job_os=lambda _: "Linux",
    )
    assert (queued["queuetime"], queued["os"]) == (240, "Linux")


def test_step_rows_come_from_the_jobs_listing():
    rows = transform.step_rows(JOB, REPO)
    assert [(r["number"], r["name"], r["conclusion"]) for r in rows] == [
        (step["number"], step["name"], step["conclusion"]) for step in JOB["steps"]
    ]
    # GitHub gives step times with an offset; stored values are naive UTC.
    assert rows[0]["starttime"] == datetime(2020, 1, 20, 17, 42, 40)
    assert {r["jobid"] for r in rows} == {JOB["id"]}


def test_commit_rows_from_listing_and_from_a_runs_head_commit_agree():
    listing = json.loads((FIXTURES / "commits-list.json").read_text())[0]
    row = repo_rows.commit_row(listing, REPO)
    assert row == {
        "hash": listing["sha"],
        "author": "Monalisa Octocat",
        "message": "Fix all the bugs",
        "time": datetime(2011, 4, 14, 16, 0, 49),
        "repo": REPO,
        "authorurl": "https://github.com/octocat",
    }
    assert repo_rows.commit_row({**listing, "author": None}, REPO)["authorurl"] is None
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
    assert repo_rows.branch_row(branch, REPO) == {
        "name": "master",
        "repo": REPO,
        "protected": True,
        "commithash": "c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc",
    }
    workflow = json.loads((FIXTURES / "workflows-list.json").read_text())["workflows"][0]
    assert repo_rows.workflow_row(workflow, REPO) == {
        "gitid": 161335,
        "name": "CI",
        "repo": REPO,
        "state": "active",
        "path": ".github/workflows/blank.yaml",
        "url": "https://github.com/octo-org/octo-repo/blob/master/.github/workflows/161335",
        "imagebuild": False,
    }
    assert repo_rows.workflow_row(workflow, REPO, ["blank.yaml"])["imagebuild"] is True


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
    assert repo_rows.builds_images({"name": name, "path": path}, patterns) is expected


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
    moment = created.isoformat() + "Z"
    row = transform.run_row(run(created_at=moment, run_started_at=moment), jobs, REPO)
    assert row["queuetime"] == queue
    assert isinstance(row["queuetime"], int)
    assert row["starttime"] == first_start
    assert row["runtime"] == (row["endtime"] - row["starttime"]).total_seconds() >= 0


STORED = transform.run_row(run(), [JOB], REPO)  # a completed, successful run


@pytest.mark.parametrize(
    ("listed", "changed"),
    [
        (run(), False),
        (run(updated_at="2030-01-01T00:00:00Z"), True),
        (run(run_attempt=2), True),
        (run(status="in_progress", conclusion=None), True),
        (run(conclusion="failure"), True),
        # Live pull_requests and other fields a listing carries move without the run.
        (run(pull_requests=[{"number": 7}], display_title="renamed"), False),
    ],
    ids=["same", "updated", "new attempt", "status", "conclusion", "pull requests moved"],
)
def test_a_run_changed_when_its_attempt_or_status_moved(listed, changed):
    assert transform.run_changed(STORED, listed) is changed


def test_a_run_not_stored_has_changed():
    assert transform.run_changed(None, RUN) is True


def test_a_page_holds_the_changed_runs_rows_and_every_listed_head_commit():
    other = run(id=RUN["id"] + 1, head_commit={**RUN["head_commit"], "id": "f" * 40})
    details = transform.RunDetails(RUN, [JOB, job(["windows-latest"])])
    page = transform.run_page([details], [RUN, other], REPO, transform.labels_os)
    assert [row["gitid"] for row in page.runs] == [RUN["id"]]
    assert [row["gitid"] for row in page.jobs] == [JOB["id"], JOB["id"]]
    assert {row["runid"] for row in page.attempts} == {RUN["id"]}
    assert len(page.steps) == 2 * len(JOB["steps"])
    assert [row["hash"] for row in page.head_commits] == [RUN["head_commit"]["id"], "f" * 40]


def test_jobs_of_unknown_os_are_counted_unless_skipped():
    unknown = job(["nodai-amdgpu-mi300-x86-64"])
    skipped = {**unknown, "conclusion": "skipped"}
    jobs = [job(["ubuntu-24.04"]), unknown, skipped]
    assert transform.os_unknown(jobs, transform.labels_os) == 1


# --- jobs that no runner took -------------------------------------------------------------

T0 = datetime(2020, 1, 22, 19, 33, 8)  # RUN's created_at


def at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ran_job(labels, queued, seconds, *, attempt=1, name=None):
    """A job a runner took ``queued`` s after T0 and ran ``seconds`` s."""
    payload = job(labels, at(queued), at(queued + seconds), attempt=attempt)
    payload.update(created_at=at(0), name=name or f"ran-{labels[0]}")
    return payload


def unrun_job(labels, *, cancelled_at=None, attempt=1, name=None, created=0):
    """A job no runner took, as GitHub serves it (actions/runner#4684): runner_id 0, no
    runner name, no steps, and a ``started_at`` that is a placeholder 2 s after its
    creation; cancelled at ``cancelled_at`` s, or still queued."""
    payload = job(labels, at(created + 2), None, attempt=attempt)
    payload.update(
        created_at=at(created),
        name=name or f"waiting-{labels[0]}",
        runner_id=0 if cancelled_at is not None else None,
        runner_name="" if cancelled_at is not None else None,
        runner_group_id=None,
        runner_group_name=None,
        steps=[],
        status="completed" if cancelled_at is not None else "queued",
        conclusion="cancelled" if cancelled_at is not None else None,
        completed_at=at(cancelled_at) if cancelled_at is not None else None,
    )
    return payload


def test_a_run_whose_jobs_were_cancelled_in_the_queue_never_ran():
    """Three GPU jobs nobody picked up, cancelled after about 15 minutes: the run has no
    start, end, run time or OS, and its queue time is the 15 minutes it waited."""
    jobs = [unrun_job([f"gpu-{n}"], cancelled_at=900, name=f"gpu-{n}") for n in range(3)]
    row = transform.run_row(run(conclusion="cancelled", updated_at=at(901)), jobs, REPO)
    assert row["starttime"] is row["endtime"] is row["runtime"] is row["os"] is None
    assert row["queuetime"] == 900


def test_a_job_without_a_runner_sets_nothing_of_the_run_it_belongs_to():
    """Two jobs waited 70 s and ran 820 s; a third never got a runner."""
    jobs = [
        ran_job(["ubuntu-22.04"], 70, 820),
        ran_job(["windows-2022"], 70, 800),
        unrun_job(["macos-14"], cancelled_at=890),
    ]
    row = transform.run_row(run(conclusion="cancelled"), jobs, REPO)
    assert (row["queuetime"], row["runtime"]) == (70, 820)
    assert row["os"] == "Linux,Windows"


def test_a_job_cancelled_in_the_queue_waited_until_it_was_cancelled():
    row = transform.job_row(unrun_job(["nodai-amdgpu-mi300-x86-64"], cancelled_at=898), REPO)
    assert row["starttime"] is None  # it never started
    assert row["queuetime"] == 898
    assert row["endtime"] == T0 + timedelta(seconds=898)


def test_a_queued_job_has_no_start_and_no_wait_yet():
    row = transform.job_row(unrun_job(["ubuntu-22.04"]), REPO)
    assert row["starttime"] is row["queuetime"] is row["endtime"] is None


def test_a_queued_job_of_an_attempt_in_flight_does_not_set_its_start():
    """Attempt 2 of "re-run failed jobs", requested at 1000 s: one job started 95 s
    later, one is still queued with its placeholder start at 1002 s."""
    jobs = [
        ran_job(["ubuntu-22.04"], 10, 60, name="passed"),
        ran_job(["ubuntu-22.04"], 10, 60, name="flaky"),
        ran_job(["ubuntu-22.04"], 1095, 0, attempt=2, name="flaky") | {"completed_at": None},
        unrun_job(["windows-2022"], attempt=2, name="other", created=1000),
    ]
    attempt2 = run(status="in_progress", conclusion=None, run_attempt=2, run_started_at=at(1000))
    row = transform.run_row(attempt2, jobs, REPO)
    assert row["queuetime"] == 95
    assert row["starttime"] == T0 + timedelta(seconds=1095)
    assert row["os"] == "Linux"


def test_a_job_without_a_runner_gives_no_attempt_start():
    jobs = [unrun_job(["ubuntu-22.04"], cancelled_at=600)]
    (attempt,) = transform.attempt_rows(run(conclusion="cancelled"), jobs)
    assert attempt["starttime"] is attempt["endtime"] is None


def test_no_time_is_ever_negative():
    """A job whose completion GitHub stamps before its creation (clock skew between its
    services) waited 0 s, not a negative time."""
    early = unrun_job(["ubuntu-22.04"], cancelled_at=0, created=5)
    assert transform.job_row(early, REPO)["queuetime"] == 0


@pytest.mark.parametrize(
    ("attempt", "jobs", "expected"),
    [
        # The shown jobs that ran: attempt 2 re-ran "win", so attempt 1's Windows is not shown.
        (
            2,
            [
                ("linux", 1, True, "Linux"),
                ("win", 1, True, "Windows"),
                ("win", 2, True, "macOS"),
            ],
            "Linux,macOS",
        ),
        # A job with no start never ran (skipped, or no runner took it): not its OS.
        (1, [("build", 1, True, "Linux"), ("docs", 1, False, "Windows")], "Linux"),
        # Attempt 1 as shown before the re-run: attempt 2's jobs are not in it.
        (1, [("win", 1, True, "Windows"), ("win", 2, True, "macOS")], "Windows"),
        # Nothing known: NULL.
        (1, [("gpu", 1, True, None)], None),
    ],
)
def test_a_stored_runs_os_follows_the_rule_for_payloads(attempt, jobs, expected):
    start = datetime(2026, 12, 1, 10, 0)
    rows = [
        {"name": name, "runattempt": number, "starttime": start if ran else None, "os": os}
        for name, number, ran, os in jobs
    ]
    assert transform.stored_run_os(attempt, rows) == expected
