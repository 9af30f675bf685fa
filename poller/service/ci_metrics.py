"""The opt-in CI metric read from the database: ``cicd_pipeline_run_active``
(``cicd.pipeline.run.active`` of OpenTelemetry's CI/CD conventions, v1.44.0), the runs
not completed now, by workflow and state, at 0 for a workflow with none.

It is a gauge, so it is read afresh at each write or scrape, from the runs not completed
(a handful, whatever the history holds) and the workflows. The histograms of run
durations and queue times are not read from the database: they are observed once, when a
pass sees an attempt complete (``rules/cicd.py``, ``metrics``), so that they only grow.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from poller.rules.transform import Row
from poller.store.models import Workflow

# GitHub's status of a run not completed to the conventions' cicd.pipeline.run.state.
STATES = {"in_progress": "executing"}  # queued, waiting, requested, pending: "pending"


def ci_families(per_repository: bool, unfinished: list[Row]) -> Iterator[Metric]:
    """``unfinished``: the runs not completed (``store.runs.unfinished_runs``)."""
    yield runs_active(per_repository, unfinished)


def runs_active(per_repository: bool, unfinished: list[Row]) -> GaugeMetricFamily:
    labels = ["cicd_pipeline_name", "cicd_pipeline_run_state"]
    if per_repository:
        labels += ["vcs_owner_name", "vcs_repository_name"]
    family = GaugeMetricFamily(
        "cicd_pipeline_run_active",
        "Workflow runs not completed now, pending or executing (cicd.pipeline.run.active).",
        labels=labels,
    )
    counts: dict[tuple[str, ...], int] = {}
    # Every known workflow at 0 first: a series that reads 0, rather than vanishing.
    known: list[tuple[str, str]] = list(
        Workflow.select(Workflow.name, Workflow.repo).tuples()  # type: ignore[arg-type]
    )
    for name, repo in known:
        for state in ("pending", "executing"):
            counts[_key(name, state, repo, per_repository)] = 0
    for run in unfinished:
        key = _key(
            run["workflowname"], STATES.get(run["status"], "pending"), run["repo"], per_repository
        )
        counts[key] = counts.get(key, 0) + 1
    for key, count in sorted(counts.items()):
        family.add_metric(list(key), count)
    return family


def _key(name: str | None, state: str, repo: str, per_repository: bool) -> tuple[str, ...]:
    if not per_repository:
        return (name or "", state)
    owner, _, repository = repo.partition("/")
    return (name or "", state, owner, repository)
