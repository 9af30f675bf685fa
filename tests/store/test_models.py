"""The reader API dashboard scripts use, and the database url handling."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import port_for

from fake_github import FakeGitHub
from poller.store import models, state_models
from poller.store.model_base import BaseModel, natural_key
from poller.sync.report import RepoReport, no_counts
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


def test_every_table_is_declared_once_and_every_upsert_key_is_a_unique_key():
    """A new model is created, counted and upserted because it is declared in one place:
    ``SYNCED_MODELS`` or ``STATE_MODELS``. This names a model that is in neither, or whose
    ``Meta.natural_key`` no unique key backs (its upserts would insert duplicates)."""
    defined = {
        model
        for module in (models, state_models)
        for model in vars(module).values()
        if isinstance(model, type) and issubclass(model, BaseModel) and model is not BaseModel
    }
    undeclared = sorted(m.__name__ for m in defined - set(models.ALL_MODELS))
    assert not undeclared, f"add {undeclared} to SYNCED_MODELS or STATE_MODELS"
    for model in models.ALL_MODELS:
        unique = {tuple(columns) for columns, is_unique in model._meta.indexes if is_unique}
        unique |= {(field.name,) for field in model._meta.sorted_fields if field.unique}
        assert natural_key(model) in unique, f"{model.__name__}: natural_key is not unique"


def test_a_pass_reports_every_table_it_writes():
    assert set(no_counts()) == set(models.SYNCED_MODELS)
    report = RepoReport("octo/demo")
    assert list(report.summary()) == [m._meta.table_name for m in models.SYNCED_MODELS]
