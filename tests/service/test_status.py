"""``python -m poller status`` and progress reporting, as a user runs them."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import termios
from datetime import UTC, datetime, timedelta

import pytest

from fake_github import FakeGitHub
from poller.service import status
from support import PollerSetup

NOW = datetime.now(UTC).replace(microsecond=0)


def history(fake: FakeGitHub, runs: int, *, unfinished: int = 0) -> None:
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    for i in range(runs):
        fake.add_run(
            repo,
            ci,
            created=NOW - timedelta(days=3, minutes=5 * i),
            status="in_progress" if i < unfinished else "completed",
        )


def test_status_reports_each_repository_for_one_free_request(fake: FakeGitHub, poller: PollerSetup):
    history(fake, 30, unfinished=2)
    poller.repos = [{"name": "octo/demo", "max_runs": 10}, {"name": "octo/missing"}]
    assert poller.run().returncode == 1
    fake.reset_counts()

    result = poller.run("status", "--json")
    assert result.returncode == 1, result.stderr  # octo/missing's last pass failed
    report = json.loads(result.stdout)
    # The stalest first: the repository that never synced leads.
    missing, demo = report["repos"]
    assert (missing["repo"], missing["freshness_seconds"]) == ("octo/missing", None)
    assert demo["repo"] == "octo/demo" and demo["freshness_seconds"] >= 0
    assert demo["runs_last_week"] == 10 and demo["runs_unfinished"] == 2
    assert demo["backfill"] == "done (10 runs)"
    assert demo["last_success"] and demo["last_error"] is None
    assert {"runs.newest", "runs.oldest", "commits:main"} <= set(demo["cursors"])
    assert "404" in missing["last_error"] and missing["last_success"] is None
    assert report["rate_limit"]["limit"] == 5000
    assert [r.path for r in fake.requests] == ["/rate_limit"]
    assert fake.count() == 0  # /rate_limit is free

    table = poller.run("status")
    assert table.returncode == 1
    assert "octo/demo" in table.stdout and "done (10 runs)" in table.stdout
    assert "GitHub rate limit: " in table.stdout


def test_a_repository_just_added_is_not_started(fake: FakeGitHub, poller: PollerSetup):
    history(fake, 5)
    fake.add_repo("octo/new")
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    poller.repos.append({"name": "octo/new"})
    result = poller.run("status", "--json")
    repos = {repo["repo"]: repo for repo in json.loads(result.stdout)["repos"]}
    assert repos["octo/new"]["backfill"] == "not started"


def test_interactive_once_shows_a_progress_bar(fake: FakeGitHub, poller: PollerSetup):
    history(fake, 150)
    poller.repos = [{"name": "octo/demo"}]
    controller, terminal = pty.openpty()
    # A real terminal has a size; a new pty is 0x0, where tqdm draws an empty bar.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        poller.command("--once"),
        env=poller.env(),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=poller.tmp_path,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0
    text = output.decode(errors="replace")
    assert "octo/demo: " in text and "150/150" in text  # tqdm's bar, with its total
    assert '"event"' not in text  # a terminal gets readable lines, not JSON


def test_non_interactive_pass_logs_progress_events(fake: FakeGitHub, poller: PollerSetup):
    history(fake, 300)
    fake.latency = 0.002
    poller.repos = [{"name": "octo/demo"}]
    poller.sync = {"progress_seconds": 0.2}
    result = poller.run()
    assert result.returncode == 0
    events = [json.loads(line) for line in result.stderr.splitlines() if '"sync.progress"' in line]
    assert events and all(event["repo"] == "octo/demo" for event in events)
    assert events[-1]["runs_listed"] > events[0]["runs_listed"] or len(events) == 1
    assert "\r" not in result.stderr  # no bar when stderr is not a terminal


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "never"), (0, "0m00s"), (252, "4m12s"), (7500, "2h05m"), (273600, "3d4h")],
)
def test_age_reads_at_a_glance(seconds, text):
    assert status.age(seconds) == text
