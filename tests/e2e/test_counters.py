"""Counters and histograms only grow, over a run's whole life: it fails, is re-run, the
re-run is cancelled while queued and re-run again, another run is deleted on GitHub, and
the poller keeps passing. Every counter, histogram bucket, count and sum of the process
is read after each pass, and none ever goes down; each completed attempt is observed
exactly once. In-process passes of the engine the daemon uses, on real SQLite, against
the fake GitHub over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fake_github import FakeGitHub
from poller import metrics
from poller.clock import SYSTEM
from poller.config import loader as config_module
from poller.github import pool
from poller.shutdown import Stop
from poller.store import models
from poller.store.locks import NoLocks
from poller.store.schema import ensure_schema
from poller.sync.engine import Engine
from poller.sync.options import PassOptions
from support import Database, PollerSetup

pytestmark = pytest.mark.sqlite_only  # the subject is the metrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def counters() -> Samples:
    """Every sample of every counter and histogram in the process's registry."""
    found: Samples = {}
    for family in metrics.REGISTRY.collect():
        if family.type not in ("counter", "histogram"):
            continue
        for sample in family.samples:
            assert not sample.name.endswith("_created")  # not exported (docs/monitoring.md)
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def executions(samples: Samples, result: str) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "cicd_pipeline_run_duration_seconds_count"
        and dict(labels).get("cicd_pipeline_name") == "Docs"
        and dict(labels).get("cicd_pipeline_result") == result
    )


@pytest.fixture
def engine(fake: FakeGitHub, tmp_path: Path) -> Iterator[Engine]:
    database = Database(f"sqlite:///{tmp_path / 'counters.db'}")
    db = models.open_database(database.url)
    db.connect()
    ensure_schema(db)
    setup = PollerSetup(tmp_path, fake.url, database)
    setup.repos = [{"name": "octo/docs"}]
    setup.github = {"concurrency": 1, "max_retries": 0}
    setup.metrics = {"ci": True}
    config = config_module.load(setup.write())
    with Engine(config, pool.connect(config, setup.token, SYSTEM, Stop()), NoLocks()) as built:
        yield built
    db.close()


def test_a_rerun_never_makes_a_counter_or_a_histogram_go_down(fake: FakeGitHub, engine: Engine):
    repo = fake.add_repo("octo/docs")
    docs = fake.add_workflow(repo, "Docs")
    fake.add_commit(repo, "main")
    now = datetime.now(UTC)
    run = fake.add_run(
        repo, docs, created=now - timedelta(minutes=30), status="queued", conclusion=None
    )
    doomed = fake.add_run(
        repo, docs, created=now - timedelta(minutes=20), status="queued", conclusion=None
    )
    passes: list[Samples] = []

    def sync() -> Samples:
        reports = engine.run_all(PassOptions())
        assert not any(report.error for report in reports), reports
        passes.append(counters())
        return passes[-1]

    before = counters()
    sync()  # both queued: nothing completed yet
    fake.start_run(repo, run, at=now - timedelta(minutes=25))
    fake.complete_run(repo, run, conclusion="failure", job_seconds=60)
    failed = sync()
    assert executions(failed, "failure") - executions(before, "failure") == 1
    sync()  # nothing changed: nothing observed again
    fake.rerun(repo, run, at=now - timedelta(minutes=10), conclusion=None)  # in progress
    sync()
    fake.complete_run(repo, run, conclusion="success", job_seconds=60)
    passed = sync()
    # The re-run is a new observation; the failure stays counted.
    assert executions(passed, "failure") == executions(failed, "failure")
    assert executions(passed, "success") - executions(before, "success") == 1
    fake.cancel_run(repo, doomed, at=now - timedelta(minutes=5))
    cancelled = sync()
    assert executions(cancelled, "cancellation") - executions(before, "cancellation") == 1
    fake.rerun(repo, doomed, at=now - timedelta(minutes=2), conclusion="success")
    sync()
    fake.delete_run(repo, doomed)
    sync()
    sync()

    for earlier, later in zip([before, *passes], passes, strict=False):
        for key, value in earlier.items():
            assert later.get(key, 0) >= value, (key, value, later.get(key))
