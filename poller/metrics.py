"""The process's own metrics, in ``prometheus_client``'s registry of this process.

Each room counts what it alone sees: the GitHub room its requests and their answers, the
store its reconnects, the engine its passes, the daemon its leases and pollers.
``exposition`` adds what the database holds (freshness, and the opt-in CI metrics) and
writes it all out. Nothing here reads a label that grows with the data: repositories are
the one per-item label, and an organisation of 1,000 repositories gives a few thousand
series (docs/monitoring.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

# No *_created series: a counter's creation time says nothing here, and they would double
# the counters' series (docs/monitoring.md).
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)

GITHUB_REQUESTS = Counter(
    "shark_poller_github_requests",
    "HTTP requests sent to GitHub, by kind of endpoint and answer.",
    ["endpoint", "answer"],
    registry=REGISTRY,
)
SECONDARY_LIMIT_ANSWERS = Counter(
    "shark_poller_github_secondary_limit_answers",
    "Answers of GitHub's secondary rate limit (403 or 429 with retry-after).",
    registry=REGISTRY,
)
PASS_SECONDS = Histogram(
    "shark_poller_pass_duration_seconds",
    "How long a pass over the repositories that were due took.",
    # Fine where passes are (seconds), coarse where a stalled one would be.
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
REPO_SYNCS = Counter(
    "shark_poller_repo_syncs",
    "Repository syncs this process ran, by outcome (ok, failed, stopped, skipped).",
    ["outcome"],
    registry=REGISTRY,
)
BACKFILL_PENDING = Gauge(
    "shark_poller_backfill_pending",
    "1 while a repository's backfill has history left to read, as of its last sync here.",
    ["repo"],
    registry=REGISTRY,
)
DATABASE_RECONNECTS = Counter(
    "shark_poller_database_reconnects",
    "Reconnects to the database after a dropped connection.",
    registry=REGISTRY,
)
UNITS_RERUN = Counter(
    "shark_poller_units_rerun",
    "Units of work rolled back by a dropped connection and run again.",
    registry=REGISTRY,
)
LEASES_HELD = Gauge(
    "shark_poller_leases_held",
    "Repositories this daemon holds a lease on now (syncs under way).",
    registry=REGISTRY,
)
GITHUB_CLOCK_SKEW = Gauge(
    "shark_poller_github_clock_skew_seconds",
    "How far GitHub's clock (its answers' Date) is ahead of this host's; negative: behind.",
    registry=REGISTRY,
)
POLLERS_SEEN = Gauge(
    "shark_poller_pollers_seen",
    "Daemons sharing the database, and so the request budget, at the last heartbeat.",
    registry=REGISTRY,
)

# The opt-in CI metrics ([metrics] ci), in OpenTelemetry's CI/CD names (rules/cicd.py).
# Observed once, when a pass sees an attempt complete, so that they only grow; a
# repository's labels are "" (absent) unless ci_per_repository.
RUN_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)
QUEUE_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
CI_RUN_SECONDS = Histogram(
    "cicd_pipeline_run_duration",
    "Duration of workflow runs (cicd.pipeline.run.duration), by pipeline, state and result: "
    "an attempt's wait (pending) and execution (executing), observed as it completes.",
    [
        "cicd_pipeline_name",
        "cicd_pipeline_run_state",
        "cicd_pipeline_result",
        "error_type",
        "vcs_owner_name",
        "vcs_repository_name",
    ],
    unit="seconds",
    buckets=RUN_BUCKETS,
    registry=REGISTRY,
)
JOB_QUEUE_SECONDS = Histogram(
    "shark_poller_job_queue_seconds",
    "Jobs' wait for a runner (started less created), by the runner labels they asked for, "
    "observed as their attempt completes.",
    ["runner_labels"],
    buckets=QUEUE_BUCKETS,
    registry=REGISTRY,
)

# Kinds of endpoint, by the path's shape; the first that matches names it.
ENDPOINTS = (
    ("jobs", re.compile(r"/actions/(runs/\d+(/attempts/\d+)?/jobs|jobs/\d+)")),
    ("runs", re.compile(r"/actions/(runs|workflows/[^/]+/runs)")),
    ("workflows", re.compile(r"/actions/workflows")),
    ("runners", re.compile(r"/actions/runners|/actions/runner-groups")),
    ("branches", re.compile(r"/repos/[^/]+/[^/]+/branches")),
    ("commits", re.compile(r"/repos/[^/]+/[^/]+/(commits|compare)")),
    ("org_repos", re.compile(r"/(orgs|users)/[^/]+/repos")),
    ("rate_limit", re.compile(r"/rate_limit")),
    ("app", re.compile(r"/app/|/installation$")),
    ("repository", re.compile(r"/repos/[^/]+/[^/]+$")),
)


def endpoint_of(url: str) -> str:
    """The kind of endpoint a request URL reads (a path or a full URL, any query)."""
    path = re.sub(r"^[a-z]+://[^/]+", "", url).split("?", 1)[0].rstrip("/")
    for name, shape in ENDPOINTS:
        if shape.search(path):
            return name
    return "other"


# Every answer ``answer_of`` gives (tests/service/test_metrics.py checks it).
ANSWERS = ("200", "304", "redirect", "rate_limited", "4xx", "5xx", "connection_error")


def answer_of(status: int | None, headers: Mapping[str, str]) -> str:
    """A request's answer as the metrics count it: 200, 304, redirect (a moved repository's
    old URL), rate_limited (a 429, or a 403 of the primary or a secondary limit), 5xx,
    connection_error (no answer), or 4xx. ``headers`` are the answer's, with lower-case
    names."""
    if status is None:
        return "connection_error"
    if 300 <= status < 400 and status != 304:
        return "redirect"
    if status == 429 or (status == 403 and _limited(headers)):
        return "rate_limited"
    if status >= 500:
        return "5xx"
    if status >= 400:
        return "4xx"
    return "304" if status == 304 else "200"


def _limited(headers: Mapping[str, str]) -> bool:
    return "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"


def count_request(url: str, status: int | None, headers: Mapping[str, str] | None = None) -> None:
    """Count one request GitHub answered (or did not: ``status`` None)."""
    lower = {name.lower(): str(value) for name, value in (headers or {}).items()}
    answer = answer_of(status, lower)
    GITHUB_REQUESTS.labels(endpoint_of(url), answer).inc()
    if answer == "rate_limited" and lower.get("x-ratelimit-remaining") != "0":
        SECONDARY_LIMIT_ANSWERS.inc()  # the primary limit has budget left: a secondary one


def _known_labels_at_zero() -> None:
    """Every label value known in advance exists from the start, at 0: a counter's first
    increment is then a change ``rate()`` sees, not a series appearing at 1."""
    for endpoint in [name for name, _ in ENDPOINTS] + ["other"]:
        for answer in ANSWERS:
            GITHUB_REQUESTS.labels(endpoint, answer)
    for outcome in ("ok", "failed", "stopped", "skipped"):
        REPO_SYNCS.labels(outcome)


_known_labels_at_zero()
