"""GitHub's workflow runs in OpenTelemetry's CI/CD semantic conventions, v1.44.0
(open-telemetry/semantic-conventions, ``model/cicd``), and when a run's duration is
observed.

``cicd.pipeline.run.duration`` is a histogram "of a pipeline run grouped by pipeline,
state and result": ``cicd.pipeline.name`` and ``cicd.pipeline.run.state`` are required,
``cicd.pipeline.result`` is required "if and only if the pipeline run result has been
set during that state", and ``error.type`` "if and only if the pipeline run failed". A
completed attempt gives two observations: its wait (``pending``, from the request to its
first job's start: ``queuetime``) and its execution (``executing``: ``runtime``), the
result set on the second.

Results. The conventions' values are success, failure, error ("failed due to an error
in the CI/CD system, eg. due to the worker being killed"), timeout, cancellation and
skip. GitHub's conclusions (REST docs, "Workflow runs": ``action_required``,
``cancelled``, ``failure``, ``neutral``, ``skipped``, ``stale``, ``success``,
``timed_out``, ``startup_failure``) map onto them below; none is the CI system's own
error, so ``error`` is never reported.

Observed once. A run's duration is observed when a pass sees its attempt complete: it
was stored before, not completed or at an earlier attempt (a re-run is a new
observation), or it is new and completed within ``RECENT`` (it ran between two passes).
History that a backfill or a first sync reads is not observed: the histograms count what
completes while the poller watches, and only grow; the database holds the rest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

RESULTS = {
    "success": "success",
    # Neither passed nor failed; GitHub treats it as passing (required checks accept it).
    "neutral": "success",
    "failure": "failure",
    # The workflow could not start (an invalid workflow file): the pipeline's own fault.
    "startup_failure": "failure",
    "cancelled": "cancellation",
    "skipped": "skip",
    # Waiting for an approval that never came: a precondition not met.
    "action_required": "skip",
    "timed_out": "timeout",
    # Marked stale by GitHub because it took too long.
    "stale": "timeout",
}
RECENT = timedelta(hours=1)


def result_of(conclusion: str | None) -> str:
    """``cicd.pipeline.result`` of a completed run's conclusion (unknown: failure)."""
    return RESULTS.get(conclusion or "", "failure")


def error_type(conclusion: str | None) -> str:
    """``error.type`` of a run: GitHub's conclusion when it failed, else none ("")."""
    return (conclusion or "failure") if result_of(conclusion) == "failure" else ""


def completion_observed(old: dict[str, Any] | None, new: dict[str, Any], now: datetime) -> bool:
    """Whether storing ``new`` over ``old`` (run rows) is an attempt completing that the
    histograms observe (see the module docstring)."""
    if new.get("status") != "completed" or new.get("deletetime") is not None:
        return False
    if old is None:
        updated = new.get("updatetime")
        return updated is not None and now - updated <= RECENT
    return old.get("status") != "completed" or old.get("runattempt") != new.get("runattempt")
