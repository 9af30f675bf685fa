"""A GitHub App, end to end with real ``python -m poller`` processes: hourly tokens, the
token kept between cron runs, and one App installed on several organisations. SQLite
only: what is tested is what the poller asks GitHub."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fake_github import FakeGitHub
from support import LogTail, PollerSetup, github_app

NOW = datetime.now(UTC).replace(microsecond=0)


def history(fake: FakeGitHub, name: str, runs: int = 4) -> None:
    repo = fake.add_repo(name)
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    for i in range(runs):
        fake.add_run(repo, ci, created=NOW - timedelta(days=3, minutes=7 * i))


@pytest.fixture
def app_poller(fake: FakeGitHub, sqlite_poller: PollerSetup, tmp_path: Path) -> PollerSetup:
    fake.require_auth = True  # a request without an installation token would fail
    sqlite_poller.token = None
    sqlite_poller.github = {**github_app(fake, tmp_path, {77: "octo"}), "installation_id": 77}
    history(fake, "octo/demo")
    sqlite_poller.repos = [{"name": "octo/demo"}]
    return sqlite_poller


def test_cron_runs_share_the_token_and_its_etags_until_it_rotates(
    fake: FakeGitHub, app_poller: PollerSetup
):
    """--once from cron: the second run takes the token the first kept, so its idle pass
    is free. A new token (the next hour's) pays one point per URL the pass reads, once:
    the docs' "an idle pass after a rotation"."""
    assert app_poller.run().returncode == 0
    assert len(fake.installation_tokens) == 1
    fake.reset_counts()
    idle = app_poller.run()
    assert idle.returncode == 0, idle.stderr
    assert len(fake.installation_tokens) == 1  # no token minted
    assert fake.count() == 0
    urls = fake.count(rate_limited=False)
    assert urls > 0

    for kept in (app_poller.tmp_path / "cache" / "shark-poller").iterdir():
        kept.unlink()  # as if the hour were over: the next run mints a token
    fake.reset_counts()
    rotated = app_poller.run()
    assert rotated.returncode == 0, rotated.stderr
    assert len(fake.installation_tokens) == 2
    served = [r for r in fake.requests if not r.path.startswith("/app/")]
    assert all(r.status == 200 for r in served)  # another token's ETags answer 200
    assert len(served) == urls  # one point per URL, no more
    fake.reset_counts()
    assert app_poller.run().returncode == 0
    assert fake.count() == 0  # and free again with the new token


def test_the_daemon_renews_the_token_before_it_expires(fake: FakeGitHub, app_poller: PollerSetup):
    """The fake's tokens live 64 s here, not an hour; the poller renews a minute before
    GitHub's expires_at, so every few seconds, and never presents an expired token."""
    fake.token_lifetime = 64.0
    app_poller.schedule = {"interval_minutes": 1 / 60, "jitter_seconds": 0}
    daemon = LogTail(app_poller.popen())
    try:
        daemon.wait_for("github.installation_token", count=3, timeout=60)
        passes = len(daemon.events("daemon.pass_done"))
        daemon.wait_for("daemon.pass_done", count=passes + 1)
    finally:
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=30) == 0
    assert not [r for r in fake.requests if r.status == 401]
    assert all(event["ok"] for event in daemon.events("sync.repo_done"))
    assert len(fake.installation_tokens) >= 3


def test_two_installations_each_serve_their_own_organisation(
    fake: FakeGitHub, sqlite_poller: PollerSetup, tmp_path: Path
):
    """iree-org's installation is in config.toml; nod-ai's is found from GitHub's list of
    the App's installations. Each reads its own organisation with its own token, and
    spends its own budget; status shows both."""
    fake.require_auth = True
    sqlite_poller.token = None
    sqlite_poller.github = github_app(fake, tmp_path, {11: "iree-org", 22: "nod-ai"})
    for name in ("iree-org/iree", "iree-org/iree-turbine", "nod-ai/shark"):
        history(fake, name)
    sqlite_poller.orgs = [{"name": "iree-org", "installation_id": 11}, {"name": "nod-ai"}]
    sqlite_poller.metrics = {"textfile": str(tmp_path / "shark_poller.prom")}
    result = sqlite_poller.run()
    assert result.returncode == 0, result.stderr

    installations = fake.installations[4242]
    for installation, org in ((11, "iree-org"), (22, "nod-ai")):
        tokens = set(installations[installation].tokens)
        assert len(tokens) == 1
        read = [r for r in fake.requests if r.path.startswith((f"/repos/{org}/", f"/orgs/{org}/"))]
        assert read and {r.credential for r in read} == tokens
        spent = sum(1 for r in read if r.rate_limited)
        budget = installations[installation].budget
        assert budget.limit - budget.remaining == spent
    assert fake.budget.remaining == fake.budget.limit  # no personal token was spent
    # The metrics report each installation's limit apart, and count every request but
    # the App's listing of its installations, token mints included.
    text = (tmp_path / "shark_poller.prom").read_text()
    found = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    for installation in (11, 22):
        [remaining] = [
            s.value
            for s in found
            if s.name == "shark_poller_github_rate_limit_remaining"
            and s.labels["credential"] == f"installation {installation}"
        ]
        assert remaining == installations[installation].budget.remaining
    requests = [s for s in found if s.name == "shark_poller_github_requests_total"]
    assert sum(s.value for s in requests) == sum(
        1 for r in fake.requests if r.path != "/app/installations"
    )
    minted = sum(s.value for s in requests if s.labels["endpoint"] == "app")
    assert minted == 2  # a token for each installation
    [done] = [json.loads(line) for line in result.stderr.splitlines() if '"pass.done"' in line]
    for installation in (11, 22):  # the log reports each installation's figures apart
        budget = installations[installation].budget
        figures = done["by_credential"][f"installation {installation}"]
        assert figures["rate_limit_remaining"] == budget.remaining

    status = sqlite_poller.run("status", "--json")
    assert status.returncode == 0, status.stderr
    limits = json.loads(status.stdout)["rate_limits"]
    assert set(limits) == {"installation 11", "installation 22"}
    for installation in (11, 22):
        assert limits[f"installation {installation}"]["remaining"] == (
            installations[installation].budget.remaining
        )
    table = sqlite_poller.run("status")
    assert "GitHub rate limit (installation 22):" in table.stdout


def test_an_organisation_without_the_app_fails_alone_saying_what_to_do(
    fake: FakeGitHub, sqlite_poller: PollerSetup, tmp_path: Path
):
    sqlite_poller.token = None
    sqlite_poller.github = github_app(fake, tmp_path, {11: "iree-org"})
    history(fake, "iree-org/iree")
    history(fake, "nod-ai/shark")
    sqlite_poller.repos = [{"name": "iree-org/iree"}, {"name": "nod-ai/shark"}]
    result = sqlite_poller.run()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    failed = [json.loads(line) for line in result.stderr.splitlines() if "repo_failed" in line]
    assert [event["repo"] for event in failed] == ["nod-ai/shark"]
    assert "GitHub App 4242 is not installed on nod-ai: install it" in failed[0]["error"]
    done = [json.loads(line) for line in result.stderr.splitlines() if "sync.repo_done" in line]
    assert [event["repo"] for event in done if event["ok"]] == ["iree-org/iree"]
