"""Metrics as an operator collects them: the textfile that ``--once`` and the daemon
write, the daemon's HTTP endpoint, and ``status --check``, with real processes."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import socket
import sqlite3
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import port_for
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fake_github import FakeGitHub, FakeRepo
from poller import metrics
from support import REPO_ROOT, Database, LogTail, PollerSetup

NOW = datetime.now(UTC).replace(microsecond=0)
DASHBOARD = REPO_ROOT / "poller" / "grafana-dashboard.json"


def history(fake: FakeGitHub, name: str = "octo/demo") -> tuple[FakeRepo, int]:
    """Six completed runs three hours old, and one queued now (returned, with its
    repository, to be completed later)."""
    repo = fake.add_repo(name)
    ci, nightly = fake.add_workflow(repo, "CI"), fake.add_workflow(repo, "Nightly")
    fake.add_commit(repo, "main")
    for i in range(6):
        fake.add_run(
            repo,
            ci if i % 2 else nightly,
            created=NOW - timedelta(hours=3, minutes=10 * i),
            conclusion="failure" if i == 1 else "success",
            labels=[["ubuntu-22.04"], ["nodai-amdgpu-mi300-x86-64"]],
            queue_seconds=20 * (i + 1),
        )
    queued = fake.add_run(
        repo, ci, created=NOW - timedelta(minutes=5), status="queued", conclusion=None
    )
    return repo, queued


def finish(fake: FakeGitHub, repo: FakeRepo, run: int, conclusion: str = "failure") -> None:
    fake.start_run(repo, run, at=datetime.now(UTC) - timedelta(minutes=3))
    fake.complete_run(repo, run, conclusion=conclusion, job_seconds=100)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(found: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in found.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def test_once_writes_a_textfile_whose_counts_are_what_github_saw(
    fake: FakeGitHub, poller: PollerSetup, tmp_path: Path
):
    repo, queued = history(fake)
    textfile = tmp_path / "node-exporter" / "shark_poller.prom"
    textfile.parent.mkdir()
    poller.repos = [{"name": "octo/demo"}]
    poller.metrics = {"textfile": str(textfile), "ci": True}
    assert poller.run("--once", "--full").returncode == 0
    first = samples(textfile.read_text())
    assert total(first, "shark_poller_github_requests_total") == len(fake.requests)
    assert total(first, "shark_poller_github_requests_total", endpoint="jobs") == fake.count(
        "/jobs", rate_limited=False
    )

    # A --once is no daemon: it does not say how many daemons share the budget.
    assert not any(name == "shark_poller_pollers_seen" for name, _ in first)
    # History is not observed: the CI histograms count what completes while watched.
    assert total(first, "cicd_pipeline_run_duration_seconds_count") == 0
    assert total(first, "cicd_pipeline_run_active", cicd_pipeline_run_state="pending") == 1

    finish(fake, repo, queued)
    fake.reset_counts()
    assert poller.run("--once", "--full").returncode == 0
    second = samples(textfile.read_text())
    # Each process counts its own requests: the second run's, 304s apart.
    answered = {str(r.status) for r in fake.requests}
    assert "304" in answered and answered <= {"200", "304"}
    for answer in answered:
        expected = sum(1 for r in fake.requests if str(r.status) == answer)
        assert total(second, "shark_poller_github_requests_total", answer=answer) == expected
    status = json.loads(poller.run("status", "--json").stdout)
    # Freshness is the figure status shows.
    [demo] = status["repos"]
    key = (("repo", "octo/demo"),)
    success = datetime.fromisoformat(demo["last_success"].replace("Z", "+00:00"))
    assert second[("shark_poller_repo_last_success_timestamp_seconds", key)] == success.timestamp()
    assert (
        abs(second[("shark_poller_repo_freshness_seconds", key)] - demo["freshness_seconds"]) <= 5
    )
    assert second[("shark_poller_repo_last_pass_ok", key)] == 1
    assert second[("shark_poller_runs_unfinished", key)] == demo["runs_unfinished"] == 0
    # The run that completed between the two: its wait and its execution, once each, in
    # OpenTelemetry's names (a failure carries error_type); its one job's wait.
    executing = {"cicd_pipeline_name": "CI", "cicd_pipeline_run_state": "executing"}
    failed = {**executing, "cicd_pipeline_result": "failure", "error_type": "failure"}
    assert total(second, "cicd_pipeline_run_duration_seconds_count", **failed) == 1
    assert total(second, "cicd_pipeline_run_duration_seconds_sum", **failed) == 100
    pending = {"cicd_pipeline_name": "CI", "cicd_pipeline_run_state": "pending"}
    assert total(second, "cicd_pipeline_run_duration_seconds_count", **pending) == 1
    assert total(second, "cicd_pipeline_run_duration_seconds_count") == 2
    assert total(second, "shark_poller_job_queue_seconds_count") == 1
    # Nothing active now: the gauge reads 0 for each known workflow, and stays.
    assert total(second, "cicd_pipeline_run_active", cicd_pipeline_name="CI") == 0
    assert (
        "cicd_pipeline_run_active",
        (("cicd_pipeline_name", "CI"), ("cicd_pipeline_run_state", "pending")),
    ) in second
    # Written whole and renamed into place: nothing else is left in the directory.
    assert [p.name for p in textfile.parent.iterdir()] == ["shark_poller.prom"]


def test_secondary_limit_answers_are_counted_as_github_gave_them(
    fake: FakeGitHub, sqlite_poller: PollerSetup, tmp_path: Path
):
    history(fake)
    fake.secondary_limit("/actions/runs", retry_after=1, times=2)
    textfile = tmp_path / "shark_poller.prom"
    sqlite_poller.repos = [{"name": "octo/demo"}]
    sqlite_poller.metrics = {"textfile": str(textfile)}
    assert sqlite_poller.run("--once").returncode == 0
    found = samples(textfile.read_text())
    refused = sum(1 for r in fake.requests if r.status == 403)
    assert refused == 2
    assert found[("shark_poller_github_secondary_limit_answers_total", ())] == refused
    assert total(found, "shark_poller_github_requests_total", answer="rate_limited") == refused
    assert total(found, "shark_poller_github_requests_total") == len(fake.requests)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert answer.status == 200
        return answer.read().decode()


def read_while(path: Path, going: Callable[[], bool]) -> tuple[list[set[str]], set[float]]:
    """Read and parse ``path`` as fast as possible while ``going()``: the families of
    each read, and the modification times seen."""
    reads, written = [], set()
    deadline = time.monotonic() + 60
    while going() and time.monotonic() < deadline:
        text = path.read_text()
        written.add(path.stat().st_mtime_ns)
        reads.append({family.name for family in text_string_to_metric_families(text)})
    return reads, written


def test_the_daemon_serves_metrics_on_localhost_until_sigterm(
    fake: FakeGitHub, poller: PollerSetup, tmp_path: Path
):
    history(fake)
    port = port_for.select_random()
    textfile = tmp_path / "shark_poller.prom"
    poller.repos = [{"name": "octo/demo"}]
    poller.schedule = {"interval_minutes": 0.02}
    poller.metrics = {"listen": str(port), "textfile": str(textfile)}
    daemon = LogTail(poller.popen())
    try:
        [listening] = daemon.wait_for("metrics.listening")
        assert listening["address"] == f"127.0.0.1:{port}"
        daemon.wait_for("daemon.pass_done", count=2)
        found = samples(scrape(port))
        key = (("repo", "octo/demo"),)
        assert found[("shark_poller_repo_last_pass_ok", key)] == 1
        assert found[("shark_poller_pollers_seen", ())] == 1
        assert total(found, "shark_poller_repo_syncs_total", outcome="ok") >= 2
        assert total(found, "shark_poller_pass_duration_seconds_count") >= 2
        assert total(found, "shark_poller_github_rate_limit_limit", credential="token") == 5000
        # Rewritten at each wake-up, and never seen half-written: a reader that reads it
        # over and over meanwhile always finds every family.
        families = {f.name for f in text_string_to_metric_families(textfile.read_text())}
        # One series per fact: the process's counters go out by the endpoint alone; the
        # textfile holds what the database says, as the endpoint does too.
        assert "shark_poller_repo_last_pass_ok" in families
        assert "shark_poller_repo_syncs" not in families
        assert "shark_poller_github_requests" not in families
        reads, written = read_while(textfile, lambda: len(daemon.events("daemon.pass_done")) < 4)
        assert len(written) >= 2  # it changed under the reader
        assert reads and all(found == families for found in reads)
    finally:
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=30) == 0
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_a_metrics_port_in_use_is_a_one_line_error(fake: FakeGitHub, sqlite_poller: PollerSetup):
    history(fake)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sqlite_poller.repos = [{"name": "octo/demo"}]
        sqlite_poller.metrics = {"listen": f"127.0.0.1:{port}"}
        result = sqlite_poller.run("--log-level", "error", timeout=60)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"shark-poller: error: [metrics].listen 127.0.0.1:{port}: cannot")
    assert "choose a free port" in line and "Traceback" not in result.stderr


def test_status_check_exits_as_a_health_check_does(
    fake: FakeGitHub, sqlite_poller: PollerSetup, tmp_path: Path
):
    history(fake)
    sqlite_poller.repos = [{"name": "octo/demo"}]
    assert sqlite_poller.run("--once").returncode == 0
    fine = sqlite_poller.run("status", "--check")
    assert (fine.returncode, fine.stdout.split(":")[0]) == (0, "OK"), fine.stdout + fine.stderr
    assert fake.requests and all(r.path != "/rate_limit" for r in fake.requests)

    # Stale: the last success an hour ago, beyond three 5-minute intervals.
    database = tmp_path / "dashboard.db"
    with sqlite3.connect(database) as db:
        an_hour_ago = (NOW - timedelta(hours=1)).replace(tzinfo=None).isoformat(" ")
        db.execute("UPDATE sync_status SET lastsuccess = ?", (an_hour_ago,))
    stale = sqlite_poller.run("status", "--check")
    assert stale.returncode == 2
    assert re.match(
        r"CRITICAL: of 1 repository, 1 stale \(octo/demo 1h0\dm\); limit 15m", stale.stdout
    )

    # Failed: the next pass meets a 404.
    fake.fail("/repos/octo/demo", 404, times=50)
    assert sqlite_poller.run("--once").returncode == 1
    failed = sqlite_poller.run("status", "--check")
    assert failed.returncode == 2 and "1 failed (octo/demo: " in failed.stdout

    # The database cannot be read: UNKNOWN.
    nowhere = Database(f"sqlite:///{tmp_path / 'nowhere' / 'missing.db'}")
    unknown = dataclasses.replace(sqlite_poller, database=nowhere).run("status", "--check")
    assert unknown.returncode == 3 and unknown.stdout.startswith("UNKNOWN: ")


def test_the_grafana_dashboard_uses_only_metrics_the_product_exports(
    fake: FakeGitHub, sqlite_poller: PollerSetup, tmp_path: Path
):
    history(fake)
    textfile = tmp_path / "shark_poller.prom"
    sqlite_poller.repos = [{"name": "octo/demo"}]
    sqlite_poller.metrics = {"textfile": str(textfile), "ci": True}
    assert sqlite_poller.run("--once").returncode == 0
    exported = {family.name for family in text_string_to_metric_families(textfile.read_text())}
    # And what only a daemon exports (pollers_seen): every metric the process declares.
    exported |= {family.name for family in metrics.REGISTRY.collect()}
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 6
    # Metric names, once label matchers and grouping clauses (label names) are left out.
    bare = [re.sub(r"\{[^}]*\}|by\s*\([^)]*\)", "", expr) for expr in expressions]
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for expr in bare
        for name in re.findall(r"\b(?:shark_poller|cicd)_[a-z_]+", expr)
    }
    assert used and used <= exported, used - exported


def test_a_label_per_repository_is_opt_in(fake: FakeGitHub, sqlite_poller: PollerSetup, tmp_path):
    one, first = history(fake, "octo/one")
    two, second = history(fake, "octo/two")
    textfile = tmp_path / "shark_poller.prom"
    sqlite_poller.repos = [{"name": "octo/one"}, {"name": "octo/two"}]
    sqlite_poller.metrics = {"textfile": str(textfile), "ci": True}
    assert sqlite_poller.run().returncode == 0
    finish(fake, one, first, conclusion="success")
    assert sqlite_poller.run().returncode == 0
    shared = samples(textfile.read_text())
    assert total(shared, "cicd_pipeline_run_duration_seconds_count", cicd_pipeline_name="CI") == 2
    assert not any(dict(labels).get("vcs_repository_name") for _, labels in shared)

    sqlite_poller.metrics = {**sqlite_poller.metrics, "ci_per_repository": True}
    finish(fake, two, second, conclusion="success")
    assert sqlite_poller.run().returncode == 0
    apart = samples(textfile.read_text())
    # OpenTelemetry's vcs.repository.name has no owner; vcs.owner.name holds it.
    named = {"vcs_owner_name": "octo", "vcs_repository_name": "two"}
    assert total(apart, "cicd_pipeline_run_duration_seconds_count", **named) == 2
    for repository, active in (("one", 0), ("two", 0)):
        assert total(apart, "cicd_pipeline_run_active", vcs_repository_name=repository) == active
        assert any(
            name == "cicd_pipeline_run_active"
            and dict(labels).get("vcs_repository_name") == repository
            for name, labels in apart
        )
