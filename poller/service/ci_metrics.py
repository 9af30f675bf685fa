"""The opt-in CI metrics of the mirrored data, named after OpenTelemetry's CI/CD semantic
conventions where they have a name (``cicd.pipeline.run.duration``,
``cicd.pipeline.run.active``), in Prometheus's spelling of them.

Each is read from the database when the metrics are written or scraped, over every
stored run and job, so that the histograms only grow, as Prometheus's counters must. The
labels are bounded: a workflow name, a result, a runner label set; a repository only
with ``ci_per_repository``; never a run, a commit or a branch, which would grow without
end (the conventions make such per-run attributes opt-in too).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import peewee
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from poller.store.models import Job, WorkflowRun
from poller.store.runs import not_completed

RUN_BUCKETS = (60, 300, 600, 1200, 1800, 3600, 7200, 14400)
QUEUE_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
# GitHub's conclusion to the conventions' cicd.pipeline.result.
RESULTS = {
    "success": "success",
    "failure": "failure",
    "cancelled": "cancellation",
    "skipped": "skip",
    "timed_out": "timeout",
}
# GitHub's status of a run not completed to the conventions' cicd.pipeline.run.state.
STATES = {"in_progress": "executing"}  # queued, waiting, requested, pending: "pending"


def ci_families(per_repository: bool) -> Iterator[Metric]:
    yield run_durations(per_repository)
    yield runs_active(per_repository)
    yield job_queue_times()


def run_grouping(
    per_repository: bool, label: str, column: peewee.Field
) -> tuple[list[str], list[Any]]:
    """The labels of a run metric, and the columns they are grouped by: the workflow,
    ``label`` from ``column``, and the repository with ``per_repository``."""
    labels = ["cicd_pipeline_name", label]
    columns: list[Any] = [WorkflowRun.workflowname, column]
    if per_repository:
        labels.append("vcs_repository_name")
        columns.append(WorkflowRun.repo)
    return labels, columns


def run_durations(per_repository: bool) -> HistogramMetricFamily:
    labels, columns = run_grouping(per_repository, "cicd_pipeline_result", WorkflowRun.conclusion)
    family = HistogramMetricFamily(
        "cicd_pipeline_run_duration_seconds",
        "Duration of completed workflow runs (cicd.pipeline.run.duration), every stored run.",
        labels=labels,
    )
    query = WorkflowRun.select().where(
        (WorkflowRun.status == "completed") & WorkflowRun.runtime.is_null(False)
    )
    merged: dict[tuple[str, ...], list[float]] = {}
    for key, counts in _histogram_rows(query, columns, WorkflowRun.runtime, RUN_BUCKETS):
        name, conclusion, *rest = key
        labelled = (name or "", RESULTS.get(conclusion or "", "error"), *rest)
        totals = merged.setdefault(labelled, [0.0] * len(counts))
        merged[labelled] = [a + b for a, b in zip(totals, counts, strict=True)]
    for labelled, counts in sorted(merged.items()):
        _add_histogram(family, list(labelled), counts, RUN_BUCKETS)
    return family


def runs_active(per_repository: bool) -> GaugeMetricFamily:
    labels, columns = run_grouping(per_repository, "cicd_pipeline_run_state", WorkflowRun.status)
    family = GaugeMetricFamily(
        "cicd_pipeline_run_active",
        "Workflow runs not completed now, pending or executing (cicd.pipeline.run.active).",
        labels=labels,
    )
    query = (
        WorkflowRun.select(*columns, peewee.fn.COUNT(WorkflowRun.id))
        .where(not_completed())
        .group_by(*columns)
        .tuples()
    )
    rows: list[tuple[Any, ...]] = list(query)  # type: ignore[arg-type]
    merged: dict[tuple[str, ...], int] = {}
    for name, status, *rest, count in rows:
        key = (name or "", STATES.get(status, "pending"), *rest)
        merged[key] = merged.get(key, 0) + int(count)
    for key, count in sorted(merged.items()):
        family.add_metric(list(key), count)
    return family


def job_queue_times() -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "shark_poller_job_queue_seconds",
        "Jobs' queue time (started less created), by the runner labels they asked for.",
        labels=["runner_labels"],
    )
    query = Job.select().where(Job.queuetime.is_null(False))
    rows = _histogram_rows(query, [Job.labels], Job.queuetime, QUEUE_BUCKETS)
    for (labels,), counts in sorted(rows, key=lambda row: str(row[0])):
        _add_histogram(family, [labels or ""], counts, QUEUE_BUCKETS)
    return family


def _histogram_rows(
    query: Any,
    columns: Sequence[Any],
    value: peewee.Field,
    buckets: Sequence[float],
) -> list[tuple[tuple[Any, ...], list[float]]]:
    """Per group of ``columns``: how many values fall at or below each bucket, the count
    and the sum, in one query."""
    counts = [
        peewee.fn.SUM(peewee.Case(None, [(value <= bound, 1)], 0)).alias(f"le{i}")
        for i, bound in enumerate(buckets)
    ]
    grouped: list[tuple[Any, ...]] = (
        query.select(*columns, *counts, peewee.fn.COUNT(value), peewee.fn.SUM(value))
        .group_by(*columns)
        .tuples()
    )
    width = len(columns)
    return [(tuple(row[:width]), [float(cell or 0) for cell in row[width:]]) for row in grouped]


def _add_histogram(
    family: HistogramMetricFamily, labels: list[str], counts: list[float], buckets: Sequence[float]
) -> None:
    *cumulative, total, summed = counts
    points = [(f"{bound:g}", value) for bound, value in zip(buckets, cumulative, strict=True)]
    family.add_metric(labels, [*points, ("+Inf", total)], summed)
