"""The process's own metrics: which endpoint a request read and how it was answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fake_github import FakeGitHub, JobSpec
from poller import metrics
from support import PollerSetup


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("/repos/o/r/actions/runs?per_page=100&created=2026-11-01..2026-11-02", "runs"),
        ("https://api.github.com/repos/o/r/actions/runs/12/jobs?filter=all", "jobs"),
        ("/repos/o/r/actions/runs/12/attempts/2/jobs", "jobs"),
        ("/repos/o/r/actions/runs/12", "runs"),
        ("/repos/o/r/actions/workflows", "workflows"),
        ("/repos/o/r/actions/workflows/ci.yml/runs", "runs"),
        ("/repos/o/r/actions/runners", "runners"),
        ("/orgs/o/actions/runners", "runners"),
        ("/repos/o/r/branches?per_page=100", "branches"),
        ("/repos/o/r/commits?sha=main", "commits"),
        ("/repos/o/r/compare/a...b", "commits"),
        ("/orgs/iree-org/repos?type=all", "org_repos"),
        ("/repos/o/r", "repository"),
        ("/rate_limit", "rate_limit"),
        ("/app/installations/11/access_tokens", "app"),
        ("/orgs/o/installation", "app"),
        ("/meta", "other"),
    ],
)
def test_each_request_is_counted_by_the_kind_of_endpoint_it_read(url, endpoint):
    assert metrics.endpoint_of(url) == endpoint


@pytest.mark.parametrize(
    ("status", "headers", "answer"),
    [
        (200, {}, "200"),
        (304, {}, "304"),
        (403, {"retry-after": "60"}, "rate_limited"),
        (403, {"x-ratelimit-remaining": "0"}, "rate_limited"),
        (429, {}, "rate_limited"),
        (403, {"x-ratelimit-remaining": "4000"}, "4xx"),  # a permission, not a limit
        (404, {}, "4xx"),
        (502, {}, "5xx"),
        (None, {}, "connection_error"),
    ],
)
def test_answers_are_classed_as_the_metrics_count_them(status, headers, answer):
    assert metrics.answer_of(status, headers) == answer
    assert answer in metrics.ANSWERS  # so that its series exists from the start, at 0


def value(name: str, labels: dict[str, str] | None = None) -> float:
    found = metrics.REGISTRY.get_sample_value(name, labels or {})
    return found or 0.0


def test_a_secondary_limit_is_told_from_the_primary_by_the_budget_left():
    labels = {"endpoint": "runs", "answer": "rate_limited"}
    before = value("shark_poller_github_requests_total", labels)
    secondary = value("shark_poller_github_secondary_limit_answers_total")
    metrics.count_request("/repos/o/r/actions/runs", 403, {"Retry-After": "60"})
    metrics.count_request("/repos/o/r/actions/runs", 403, {"X-RateLimit-Remaining": "0"})
    assert value("shark_poller_github_requests_total", labels) == before + 2
    assert value("shark_poller_github_secondary_limit_answers_total") == secondary + 1


def test_every_request_a_pass_makes_is_counted_under_a_named_endpoint(
    fake: FakeGitHub, sqlite_poller: PollerSetup
):
    """A new endpoint the client starts to read shows here, by path, until ``ENDPOINTS``
    names it: otherwise its requests would be counted as ``other``."""
    now = datetime.now(UTC)
    repo = fake.add_repo("iree-org/iree")
    fake.add_commit(repo, "main", when=now - timedelta(hours=3))
    ci = fake.add_workflow(repo, "CI")
    runner = fake.add_runner("orgs/iree-org", "mi300-07", "linux", ["Linux", "gpu-box"])
    gpu = JobSpec(["gpu-box"], runner_name="mi300-07", runner_id=runner)
    fake.add_run(repo, ci, created=now - timedelta(hours=2), labels=[gpu, ["ubuntu-24.04"]])
    sqlite_poller.orgs = [{"name": "iree-org"}]
    result = sqlite_poller.run()
    assert result.returncode == 0, result.stderr
    paths = {request.path for request in fake.requests}
    kinds = {metrics.endpoint_of(path) for path in paths}
    assert {"runs", "jobs", "workflows", "branches", "commits", "org_repos"} <= kinds
    assert "runners" in kinds
    assert not [path for path in paths if metrics.endpoint_of(path) == "other"]
