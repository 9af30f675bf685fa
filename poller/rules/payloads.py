"""GitHub's runs, jobs, steps and runners, typed as the REST API returns them: the GitHub
room hands these out, and the rules read them. mypy checks every field read past the
client against these names and types.

Only the fields the poller reads are declared; an answer carries more, and they pass
through unread. Every field is optional but the ids, because GitHub omits some in old
payloads (a job's ``run_attempt``, a runner's ``os``) and nulls others while a run is
queued. Field names and meanings: GitHub's REST docs, "Workflow runs" and "Workflow
jobs" (``GET /repos/{owner}/{repo}/actions/runs``, ``.../runs/{run_id}/jobs``) and
"Self-hosted runners" (``GET /repos/{owner}/{repo}/actions/runners``)."""

from __future__ import annotations

from typing import Any, Required, TypedDict

# Any other JSON object GitHub answers with (a repository, branch, commit, workflow).
Payload = dict[str, Any]


class Actor(TypedDict, total=False):
    login: str


class HeadCommit(TypedDict, total=False):
    id: str
    message: str
    timestamp: str
    author: dict[str, Any]


class RunItem(TypedDict, total=False):
    id: Required[int]
    name: str
    workflow_id: int
    run_number: int
    run_attempt: int
    event: str
    status: str | None
    conclusion: str | None
    head_branch: str | None
    head_sha: str
    head_commit: HeadCommit | None
    actor: Actor | None
    html_url: str
    created_at: str
    updated_at: str
    run_started_at: str | None


class StepItem(TypedDict, total=False):
    number: int
    name: str
    status: str
    conclusion: str | None
    started_at: str | None
    completed_at: str | None


class JobItem(TypedDict, total=False):
    id: Required[int]
    run_id: Required[int]
    run_attempt: int
    name: str
    status: str
    conclusion: str | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    labels: list[str]
    # 0 or null, with no runner name and no steps, for a job no runner took.
    runner_id: int | None
    runner_name: str | None
    runner_group_name: str | None
    steps: list[StepItem]


class RunnerLabel(TypedDict, total=False):
    name: str


class RunnerItem(TypedDict, total=False):
    id: Required[int]
    name: str
    os: str | None
    labels: list[RunnerLabel]
