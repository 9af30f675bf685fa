"""GitHub's run outcomes in OpenTelemetry's CI/CD conventions, and when a completion is
observed: table-driven, pure."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from poller.rules import cicd

NOW = datetime(2026, 12, 5, 12, 0)


@pytest.mark.parametrize(
    ("conclusion", "result", "error_type"),
    [
        ("success", "success", ""),
        ("neutral", "success", ""),
        ("failure", "failure", "failure"),
        ("startup_failure", "failure", "startup_failure"),
        ("cancelled", "cancellation", ""),
        ("skipped", "skip", ""),
        ("action_required", "skip", ""),
        ("timed_out", "timeout", ""),
        ("stale", "timeout", ""),
        # Never "error": that is the CI system's own failure, which GitHub does not report.
        (None, "failure", "failure"),
    ],
)
def test_githubs_conclusions_in_the_conventions_results(conclusion, result, error_type):
    assert cicd.result_of(conclusion) == result
    assert cicd.error_type(conclusion) == error_type


def run(status: str | None = "completed", attempt: int = 1, **more: object) -> dict[str, object]:
    return {"status": status, "runattempt": attempt, "updatetime": NOW, "deletetime": None, **more}


@pytest.mark.parametrize(
    ("old", "new", "observed"),
    [
        # Seen queued, then completed: observed.
        (run("queued"), run(), True),
        (run("in_progress"), run(), True),
        # Completed and stored: the next pass sees nothing new.
        (run(), run(), False),
        # A re-run that completed between two passes: a new attempt, a new observation.
        (run(), run(attempt=2), True),
        # A re-run in progress is no completion.
        (run(), run("in_progress", attempt=2), False),
        # New to the store: observed if it completed within the hour, not if it is history.
        (None, run(updatetime=NOW - timedelta(minutes=10)), True),
        (None, run(updatetime=NOW - timedelta(hours=3)), False),
        # Marked deleted: not a completion.
        (run("queued"), run(deletetime=NOW), False),
    ],
)
def test_a_completion_is_observed_once(old, new, observed):
    assert cicd.completion_observed(old, new, NOW) is observed
