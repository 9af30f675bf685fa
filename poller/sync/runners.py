"""What GitHub says about the self-hosted runners that ran a repository's jobs.

A job's labels are what ``runs-on`` asked for; where they name no OS (IREE's
``nodai-amdgpu-mi300-x86-64``), the runner that ran the job knows its own. GitHub lists
a repository's and an organisation's self-hosted runners with their ``os``, but only to
tokens with admin rights, which many lack. So the directory is read only for a job that
neither the label map nor the label words resolve, at most once per pass for each of the
two scopes, and not for a job whose OS a lookup found before. A refusal is remembered
for a day in the repository's cursors, so a token without the rights costs one request
a day per scope, and nothing fails. Ephemeral runners are gone once their job is done: a
job first seen after that stays unknown, and one found before keeps what was found.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from poller.github.client import GitHub
from poller.rules import cursors, runner_os
from poller.rules.cursors import from_cursor, to_cursor
from poller.rules.payloads import JobItem, RunnerItem
from poller.rules.runner_os import LabelMap, Runner
from poller.rules.transform import ran
from poller.store import runs as run_store
from poller.store.state import RepoState

log = structlog.get_logger(__name__)

ASK_AGAIN_AFTER = timedelta(days=1)


class RunnerDirectory:
    """Resolves the OS of one repository's jobs for one pass (``transform.JobOs``)."""

    def __init__(
        self, gh: GitHub, repo: str, label_map: LabelMap, now: datetime, state: RepoState
    ) -> None:
        self.gh = gh
        self.repo = repo
        self.state = state
        self.label_map = label_map
        self.now = now
        owner = repo.split("/")[0]
        # Scope, its refusal cursor, and its runners once read (None: not read yet).
        self.scopes: list[tuple[str, str]] = [
            (f"repos/{repo}", cursors.REPO_RUNNERS_REFUSED),
            (f"orgs/{owner}", cursors.ORG_RUNNERS_REFUSED),
        ]
        self.read: dict[str, list[Runner]] = {}
        self.known: dict[int, str | None] = {}

    def job_os(self, job: JobItem) -> str | None:
        job_id = job.get("id")
        if isinstance(job_id, int) and job_id in self.known:
            return self.known[job_id]
        os = runner_os.labels_os(job.get("labels") or (), self.label_map)
        # A job no runner took (skipped, or cancelled while queued) has no runner to
        # tell; it costs no query either.
        if os is None and ran(job):
            if isinstance(job_id, int):
                # Found before from its runner, which may be gone by now (ephemeral
                # runners, a token that lost its rights): what is known is not unlearnt.
                os = run_store.stored_job_os(job_id)
            if os is None and (job.get("runner_name") or job.get("runner_id")):
                os = self._runner_os(job)
        if isinstance(job_id, int):
            self.known[job_id] = os
        return os

    def _runner_os(self, job: JobItem) -> str | None:
        for scope, refused in self.scopes:
            runner = runner_os.runner_of(job, self._runners(scope, refused))
            if runner is not None and runner.os:
                return runner.os
        return None

    def _runners(self, scope: str, refused: str) -> list[Runner]:
        if scope in self.read:
            return self.read[scope]
        refused_at = from_cursor(self.state.get(refused))
        listed: list[RunnerItem] | None = []
        if refused_at is None or self.now - refused_at >= ASK_AGAIN_AFTER:
            listed = self.gh.runners(scope)
            if listed is None:
                log.info("sync.runners_unreadable", scope=scope, retry_in_hours=24)
                self.state.save({refused: to_cursor(self.now)}, self.now)
        self.read[scope] = [runner_os.runner_from(item) for item in listed or ()]
        return self.read[scope]
