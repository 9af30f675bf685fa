"""The reader API dashboard scripts use, and the database url handling."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import port_for

from fake_github import FakeGitHub
from poller.store import models
from support import PollerSetup


def test_dashboard_scripts_open_the_database_named_in_config(
    fake: FakeGitHub, poller: PollerSetup, monkeypatch
):
    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(hours=1), conclusion="failure")
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    if poller.database.password:
        monkeypatch.setenv("SHARK_POLLER_DB_PASSWORD", poller.database.password)

    db = models.connect(poller.config_path)
    try:
        failed = models.WorkflowRun.select().where(models.WorkflowRun.conclusion == "failure")
        assert [run.workflowname for run in failed] == ["CI"]
    finally:
        db.close()


def test_redact_url_hides_only_the_password():
    assert models.redact_url("mysql://dash:s3cret@db.example.com:3306/shark") == (
        "mysql://dash@db.example.com:3306/shark"
    )
    assert models.redact_url("sqlite:///shark_dashboard.db") == "sqlite:///shark_dashboard.db"


def test_unreachable_database_exits_3_with_one_line_and_no_password(tmp_path):
    port = port_for.select_random()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "mysql://dash@127.0.0.1:{port}/shark"\n[[repos]]\nname = "octo/demo"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "poller", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SHARK_POLLER_DB_PASSWORD": "pw-Never-Logged-42"},
    )
    assert result.returncode == 3
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"shark-poller: error: database mysql://dash@127.0.0.1:{port}/shark:")
    assert "pw-Never-Logged-42" not in result.stderr
