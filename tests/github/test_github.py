"""Spending GitHub's rate limit like it is scarce: ETags, limits, retries, requests per run."""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from fake_github import FakeGitHub
from poller.store.http_cache import HttpCacheStore
from poller.store.models import HttpCache, WorkflowRun
from support import TOKEN, PollerSetup, github_app, mirror, repo_done_events

# What the poller asks GitHub does not depend on the database.
pytestmark = pytest.mark.sqlite_only

NOW = datetime.now(UTC).replace(microsecond=0)


def repo_with_history(fake: FakeGitHub, runs: int, *, recent: int = 0, name: str = "octo/demo"):
    repo = fake.add_repo(name)
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    fake.create_branch(repo, "release")
    for i in range(runs):
        fake.add_run(repo, ci, created=NOW - timedelta(days=4, minutes=5 * i))
    for i in range(recent):
        fake.add_run(
            repo,
            ci,
            created=NOW - timedelta(hours=1, minutes=i),
            status="in_progress" if i == 0 else "completed",
        )
    return repo, ci


def scratch_mirror(fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path):
    fresh = PollerSetup(
        tmp_path / "scratch", fake.url, make_database(), poller.repos, github=poller.github
    )
    fresh.tmp_path.mkdir()
    assert fresh.run().returncode == 0
    return mirror(fresh.database)


def test_an_idle_pass_costs_no_rate_limited_request(fake: FakeGitHub, poller: PollerSetup):
    """Including the first pass after the backfill: the backfill pass primes every
    listing the next pass re-reads (the live window and the re-run horizon's windows)."""
    repo, ci = repo_with_history(fake, 120, recent=3)
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    fake.reset_counts()

    # A new process, re-reading everything: the ETags come from the database.
    idle = poller.run("--once", "--full")
    assert idle.returncode == 0, idle.stderr
    assert fake.count() == 0
    sent = fake.count(rate_limited=False)
    # repository, workflows, branches, the live window and the horizon's windows
    assert sent >= 6 and all(r.status == 304 and r.conditional for r in fake.requests)
    assert fake.count("/actions/runs", rate_limited=False) >= 3
    done = repo_done_events(idle.stderr)[0]
    assert (done["requests_spent"], done["requests_not_modified"]) == (0, sent)
    # Paced, as cron runs it, a moment later: the live listing and the listings of runs
    # queued and in progress (re-runs of old runs, seen while they run) are due, and free.
    fake.reset_counts()
    assert poller.run().returncode == 0
    assert fake.count() == 0 and fake.count(rate_limited=False) == 3
    assert sorted(r.query.get("status", "") for r in fake.requests) == ["", "in_progress", "queued"]

    # A change costs only what it touches: the changed listing pages and one jobs request.
    fake.reset_counts()
    fresh = fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(seconds=30))
    assert poller.run().returncode == 0
    assert fake.count("/jobs") == 1
    assert fake.count() <= 4
    with poller.database.open():
        assert WorkflowRun.get(WorkflowRun.gitid == fresh).status == "completed"
        rows = list(HttpCache.select())
        assert len(rows) >= 6
        # Every ETag is kept under this token's identity (GitHub's ETags are per token),
        # and the token itself is stored nowhere, bodies included.
        identity = hashlib.sha256(f"token:{poller.token}".encode()).hexdigest()[:32]
        assert all(row.key == HttpCacheStore(identity).key(row.url) for row in rows)
        stored = "".join(
            f"{row.key}{row.url}{row.etag}{zlib.decompress(row.body).decode()}" for row in rows
        )
        assert poller.token not in stored


def test_etags_stop_answering_304_when_the_token_changes(
    fake: FakeGitHub, sqlite_poller: PollerSetup
):
    """GitHub's ETags are specific to the token (eclipse-csi/otterdog#201), and so are the
    fake's. A pass under a new token pays once for every listing it re-reads, then its
    own ETags make the next pass free again."""
    poller = sqlite_poller
    repo_with_history(fake, 30, recent=3)
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    fake.reset_counts()
    assert poller.run().returncode == 0 and fake.count() == 0

    first = next(r for r in fake.requests if r.path == "/repos/octo/demo/actions/runs")
    with poller.database.open():
        stored = HttpCache.select().where(HttpCache.url.contains("actions/runs")).first()
    assert stored is not None
    other = "ghp_AnotherToken0123456789abcdefABCDEF01"
    fake.other_tokens.add(other)
    # The first token's ETag, presented with the other token, is no match.
    url = f"{fake.url}{stored.url}"
    for token, status in ((poller.token, 304), (other, 200)):
        answer = requests.get(
            url, headers={"Authorization": f"token {token}", "If-None-Match": stored.etag}
        )
        assert answer.status_code == status, token

    poller.token = other
    fake.reset_counts()
    assert poller.run("--once", "--full").returncode == 0  # every listing, re-read
    rotated = fake.count()
    assert rotated >= 4 and not any(r.conditional for r in fake.requests)
    fake.reset_counts()
    assert poller.run("--once", "--full").returncode == 0 and fake.count() == 0
    assert first.credential == TOKEN


def test_a_pull_request_that_opens_or_closes_costs_no_listing(
    fake: FakeGitHub, sqlite_poller: PollerSetup
):
    """Each run GitHub lists embeds the open pull requests whose head is the run's, live.
    The poller stores nothing of them and asks for listings without them, so a pull
    request opening or closing, which moves no run, leaves every listing a free 304."""
    poller = sqlite_poller
    repo, ci = repo_with_history(fake, 0, recent=5)
    fake.create_branch(repo, "feature")
    fake.add_commit(repo, "feature")  # its own head, which only its runs share
    for minutes in (5, 9):
        fake.add_run(repo, ci, created=NOW - timedelta(minutes=minutes), branch="feature")
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    fake.reset_counts()
    number = fake.open_pull_request(repo, "feature")
    assert poller.run().returncode == 0
    assert fake.count() == 0, [r.path for r in fake.requests if not r.conditional]
    fake.close_pull_request(repo, number)
    fake.reset_counts()
    assert poller.run().returncode == 0 and fake.count() == 0
    listings = [r for r in fake.requests if r.path.endswith("/actions/runs")]
    assert listings and all(r.query.get("exclude_pull_requests") == "true" for r in listings)
    # Without the parameter GitHub (and the fake) embeds them.
    listed = requests.get(
        f"{fake.url}/repos/octo/demo/actions/runs",
        headers={"Authorization": f"token {poller.token}"},
    ).json()["workflow_runs"]
    fake.open_pull_request(repo, "feature")
    relisted = requests.get(
        f"{fake.url}/repos/octo/demo/actions/runs",
        headers={"Authorization": f"token {poller.token}"},
    ).json()["workflow_runs"]
    assert [len(r["pull_requests"]) for r in listed] == [0] * 7
    assert sorted(len(r["pull_requests"]) for r in relisted) == [0] * 5 + [1, 1]


def test_primary_rate_limit_exhaustion_waits_for_the_reset(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    """The reset is waited for in the poller, between requests, where a stop can cut the
    wait short, however long PyGithub's retry may block."""
    repo_with_history(fake, 0, recent=40)
    poller.repos = [{"name": "octo/demo"}]
    fake.exhaust_rate_limit(reset_in=2)
    started = time.monotonic()
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1
    assert [r.status for r in fake.requests].count(403) == 1
    assert "github.waiting_for_reset" in result.stderr
    assert mirror(poller.database) == scratch_mirror(fake, poller, make_database, tmp_path)


@pytest.mark.parametrize("host_ahead", [420, -420], ids=["host-7-min-ahead", "host-7-min-behind"])
def test_waits_for_the_reset_on_githubs_clock(
    fake: FakeGitHub, sqlite_poller: PollerSetup, tmp_path, host_ahead
):
    """x-ratelimit-reset is an epoch on GitHub's clock, and every answer's Date tells it.
    With this host 7 minutes off and the limit spent, the poller waits to within a few
    seconds of the true reset (3 s away), sends one 403, loses nothing, and says once
    that the clocks differ, in the log and in a metric."""
    repo_with_history(fake, 0, recent=12)
    fake.clock = lambda: time.time() - host_ahead
    sqlite_poller.repos = [{"name": "octo/demo"}]
    textfile = tmp_path / "poller.prom"
    sqlite_poller.metrics = {"textfile": str(textfile)}
    fake.exhaust_rate_limit(reset_in=3)
    started = time.monotonic()
    result = sqlite_poller.run()
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert [r.status for r in fake.requests].count(403) == 1
    [waited] = [e for e in map(json.loads, result.stderr.splitlines())
                if e["event"] == "github.waiting_for_reset"]  # fmt: skip
    assert 2 <= waited["seconds"] <= 5
    assert 2 <= took < 30
    [skew] = [line for line in result.stderr.splitlines() if "github.clock_skew" in line]
    assert abs(json.loads(skew)["seconds"] + host_ahead) <= 2
    with sqlite_poller.database.open():
        assert WorkflowRun.select().count() == 12
    exported = {m.name: m for m in text_string_to_metric_families(textfile.read_text())}
    [sample] = exported["shark_poller_github_clock_skew_seconds"].samples
    assert abs(sample.value + host_ahead) <= 2


def test_reserve_defers_the_backfill_to_the_next_pass(fake: FakeGitHub, poller: PollerSetup):
    repo_with_history(fake, 150)
    fake.budget.limit, fake.budget.remaining = 100, 70
    fake.budget.reset = int(time.time()) + 600
    poller.repos = [{"name": "octo/demo"}]
    poller.github = {"rate_limit_reserve": 20}
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert "sync.backfill_deferred" in result.stderr
    assert fake.budget.remaining >= 19  # the reserve was kept
    assert repo_done_events(result.stderr)[0]["backfill_pending"] is True

    fake.budget.limit = fake.budget.remaining = 5000  # the limit was reset
    result = poller.run()
    assert result.returncode == 0
    [done] = repo_done_events(result.stderr)
    assert done["backfill_pending"] is False
    assert done["counts"]["workflowruns"]["inserted"] > 0
    with poller.database.open():
        assert WorkflowRun.select().count() == 150


def test_live_work_waits_for_the_reset_instead_of_running_dry(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    repo, ci = repo_with_history(fake, 5)
    poller.repos = [{"name": "octo/demo"}]
    poller.github = {"rate_limit_reserve": 20}
    assert poller.run().returncode == 0
    for i in range(40):
        fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(minutes=i + 1))
    fake.limit_rate(10, limit=100, reset_in=2)
    fake.reset_counts()
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert "github.waiting_for_reset" in result.stderr
    assert not any(r.status == 403 for r in fake.requests)  # never ran dry
    fake.budget.limit = fake.budget.remaining = 5000  # room for the from-scratch sync
    assert mirror(poller.database) == scratch_mirror(fake, poller, make_database, tmp_path)


def test_secondary_rate_limit_honours_retry_after(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    repo_with_history(fake, 30, recent=5)
    poller.repos = [{"name": "octo/demo"}]
    fake.secondary_limit("/actions/runs", retry_after=1, times=2)
    started = time.monotonic()
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 2
    assert sum(1 for r in fake.requests if r.status == 403) == 2
    assert mirror(poller.database) == scratch_mirror(fake, poller, make_database, tmp_path)


def test_5xx_bursts_and_429_are_retried(
    fake: FakeGitHub, poller: PollerSetup, make_database, tmp_path
):
    repo_with_history(fake, 40, recent=5)
    poller.repos = [{"name": "octo/demo"}]
    fake.fail("/jobs", 502, times=4)
    fake.fail("/branches", 500, times=2)
    fake.fail("/actions/workflows", 429, times=1, body={"message": "Too Many Requests"})
    result = poller.run()
    assert result.returncode == 0, result.stderr
    assert sum(1 for r in fake.requests if r.status >= 429) == 7
    assert mirror(poller.database) == scratch_mirror(fake, poller, make_database, tmp_path)


def test_backfill_costs_one_request_per_run_plus_its_pages_and_windows(
    fake: FakeGitHub, poller: PollerSetup, report
):
    """Beyond one jobs request per run: the backfill's pages (100 runs each), and one
    request per fixed window of the re-run horizon (sized for about 90 runs on a past
    day), which the backfill pass primes so that every later pass re-reads it for free."""
    repo_with_history(fake, 1200)
    poller.repos = [{"name": "octo/demo"}]
    assert poller.run().returncode == 0
    per_run = fake.count() / 1200
    windows = sum(1 for r in fake.requests if ".." in r.query.get("created", "")) - 12
    report(
        f"backfill: {fake.count()} rate-limited requests for 1200 runs: {per_run:.4f}/run, "
        f"{windows} of them priming the horizon's windows"
    )
    assert 1200 / 90 <= windows <= 1200 / 45
    # The rest: 12 backfill pages, and the repository, its workflows, branches and
    # commits, and the live listing before and after the backfill.
    assert fake.count() - fake.count("/jobs") - windows <= 12 + 6
    # One jobs request per run, and no hidden per-object or timing requests.
    assert fake.count("/jobs") == 1200
    assert fake.count("/timing") == 0
    assert fake.count("/commits/") == 0


def test_github_app_installation_auth(fake: FakeGitHub, poller: PollerSetup, tmp_path):
    app = github_app(fake, tmp_path, {77: ""})
    fake.require_auth = True  # a request without the installation token would fail
    repo_with_history(fake, 5, recent=2)
    poller.repos = [{"name": "octo/demo"}]
    poller.token = None
    poller.github = {**app, "installation_id": 77}
    result = poller.run("--once", "--log-level", "debug")
    assert result.returncode == 0, result.stderr
    assert "unauthenticated" not in result.stderr
    # One token was issued, for all four clients, and every request for the repository
    # presented it.
    assert len(fake.installation_tokens) == 1
    repository_requests = [r for r in fake.requests if r.path.startswith("/repos/")]
    assert repository_requests
    assert {r.credential for r in repository_requests} <= fake.installation_tokens
    # PyGithub's debug log prints the response that carries the token: it is masked.
    assert '"logger": "github.Requester"' in result.stderr
    assert not any(token in result.stderr for token in fake.installation_tokens)
    assert any(r.path == "/app/installations/77/access_tokens" for r in fake.requests)
    with poller.database.open():
        assert WorkflowRun.select().count() == 7
