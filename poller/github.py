"""The only module that talks to GitHub.

We use PyGithub for what it does well (authentication, the HTTP session, timeouts, retries
of 5xx and rate-limited answers, and throttling) but fetch JSON through its requester
rather than through lazy ``PaginatedList`` objects, for three reasons:

* objects built from list pages send a hidden GET per object when you touch a field the
  list lacked, and our request budget is counted;
* PyGithub has no ETag support for lists, and conditional requests make an idle poll free;
* the runs listing must be read page by page with its ``total_count`` to split windows
  that exceed GitHub's 1,000-result cap.

Everything returned is plain JSON (dicts), which ``transform`` turns into rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import github
from github import Auth, Github, GithubException, GithubRetry
from github.Requester import Requester
from requests.utils import parse_header_links

from poller.config import GitHubConfig

PER_PAGE = 100
# GitHub only lets a filtered runs listing reach this many results.
RESULT_CAP = 1000


class GitHubError(Exception):
    """A GitHub answer we cannot sync through; the message is one line for the log."""


class RepoNotFound(GitHubError):
    pass


class AuthFailed(GitHubError):
    pass


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    data: Any

    @property
    def next_url(self) -> str | None:
        for link in parse_header_links(self.headers.get("link", "")):
            if link.get("rel") == "next":
                return link.get("url")
        return None


@dataclass
class RequestStats:
    """Requests sent, and how many were free 304s. Retries inside urllib3 are not seen."""

    sent: int = 0
    not_modified: int = 0
    rate_remaining: int | None = None
    rate_reset: int | None = None
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def rate_limited(self) -> int:
        return self.sent - self.not_modified


def created_filter(low: datetime | None, high: datetime | None) -> str:
    """GitHub search syntax for a ``created`` range, inclusive at both ends."""

    def fmt(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    if low and high:
        return f"{fmt(low)}..{fmt(high)}"
    if low:
        return f">={fmt(low)}"
    if high:
        return f"<={fmt(high)}"
    return "*"


class GitHub:
    def __init__(self, config: GitHubConfig, token: str | None) -> None:
        retry = GithubRetry(
            total=config.max_retries,
            backoff_factor=config.retry_backoff_seconds,
            # Don't let one rate-limited answer block a pass for an hour; the pass fails,
            # and the next pass resumes from the cursors.
            max_rate_limit_wait=15 * 60,
        )
        self.authenticated = token is not None
        self._client = Github(
            auth=Auth.Token(token) if token else None,
            base_url=config.api_url,
            timeout=int(config.timeout_seconds),
            per_page=PER_PAGE,
            retry=retry,
            seconds_between_requests=config.seconds_between_requests,
        )
        self._requester: Requester = self._client.requester
        self.stats = RequestStats()

    def close(self) -> None:
        self._client.close()

    # --- transport ---

    def get(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        *,
        kind: str = "other",
        etag: str | None = None,
    ) -> Response:
        """GET ``url`` (a path or a ``next`` link). Raises PyGithub's exceptions on >= 400."""
        headers = {"If-None-Match": etag} if etag else None
        status, response_headers, body = self._requester.requestJson("GET", url, params, headers)
        self.stats.sent += 1
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        if status == 304:
            self.stats.not_modified += 1
        remaining = response_headers.get("x-ratelimit-remaining")
        if remaining is not None:
            self.stats.rate_remaining = int(float(remaining))
        reset = response_headers.get("x-ratelimit-reset")
        if reset is not None:
            self.stats.rate_reset = int(float(reset))
        data = json.loads(body) if body and status != 304 else None
        if status >= 400:
            raise Requester.createException(status, response_headers, data or {})
        return Response(status, response_headers, data)

    # --- endpoints ---

    def repository(self, full_name: str) -> dict[str, Any]:
        try:
            return dict(self.get(f"/repos/{full_name}", kind="repo").data)
        except github.BadCredentialsException:
            raise AuthFailed(f"{full_name}: GitHub rejected the token (401)") from None
        except github.UnknownObjectException:
            raise RepoNotFound(
                f"{full_name}: repository not found (404), or the token cannot see it"
            ) from None

    def list_items(
        self, url: str, params: dict[str, Any], *, key: str | None, kind: str
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a listing, following the ``Link: rel="next"`` header."""
        next_url: str | None = url
        query: dict[str, Any] | None = {**params, "per_page": PER_PAGE}
        while next_url:
            response = self.get(next_url, query, kind=kind)
            yield list(response.data[key] if key else response.data)
            next_url, query = response.next_url, None

    def workflows(self, full_name: str) -> Iterator[dict[str, Any]]:
        for page in self.list_items(
            f"/repos/{full_name}/actions/workflows", {}, key="workflows", kind="workflows"
        ):
            yield from page

    def branches(self, full_name: str) -> Iterator[dict[str, Any]]:
        for page in self.list_items(f"/repos/{full_name}/branches", {}, key=None, kind="branches"):
            yield from page

    def commit_pages(self, full_name: str, branch: str) -> Iterator[list[dict[str, Any]]]:
        return self.list_items(
            f"/repos/{full_name}/commits", {"sha": branch}, key=None, kind="commits"
        )

    def runs_first_page(
        self, full_name: str, low: datetime | None, high: datetime | None
    ) -> Response:
        return self.get(
            f"/repos/{full_name}/actions/runs",
            {"created": created_filter(low, high), "per_page": PER_PAGE},
            kind="runs",
        )

    def run_pages_by_status(self, full_name: str, status: str) -> Iterator[list[dict[str, Any]]]:
        return self.list_items(
            f"/repos/{full_name}/actions/runs",
            {"status": status},
            key="workflow_runs",
            kind="runs",
        )

    def runs_next_pages(self, first: Response) -> Iterator[list[dict[str, Any]]]:
        next_url = first.next_url
        while next_url:
            response = self.get(next_url, kind="runs")
            yield list(response.data["workflow_runs"])
            next_url = response.next_url

    def run(self, full_name: str, run_id: int) -> dict[str, Any] | None:
        """One run, or None when GitHub no longer has it."""
        try:
            return dict(self.get(f"/repos/{full_name}/actions/runs/{run_id}", kind="run").data)
        except github.UnknownObjectException:
            return None

    def jobs(self, full_name: str, run_id: int) -> list[dict[str, Any]]:
        """Jobs of every attempt of a run: one request unless it has over 100 jobs."""
        jobs: list[dict[str, Any]] = []
        for page in self.list_items(
            f"/repos/{full_name}/actions/runs/{run_id}/jobs",
            {"filter": "all"},
            key="jobs",
            kind="jobs",
        ):
            jobs.extend(page)
        return jobs


def describe(error: Exception) -> str:
    """One line for the log, whatever went wrong talking to GitHub."""
    if isinstance(error, GitHubError):
        return str(error)
    if isinstance(error, GithubException):
        message = (error.data or {}).get("message") if isinstance(error.data, dict) else None
        return f"GitHub answered {error.status}: {message or error.data}"
    return f"{type(error).__name__}: {error}"
