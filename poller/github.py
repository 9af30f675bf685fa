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

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import github
import structlog
from github import Auth, Github, GithubException
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.Requester import Requester
from requests.utils import parse_header_links

from poller import shutdown
from poller.config import GitHubConfig
from poller.github_errors import CREDENTIALS_REJECTED, AuthFailed, GitHubError, RepoNotFound
from poller.governor import Governor
from poller.retry import CONNECT_RETRIES, InterruptibleRetry
from poller.runner_os import Runner, canonical_os, labels_os

log = structlog.get_logger(__name__)

PER_PAGE = 100
# GitHub only lets a filtered runs listing reach this many results.
RESULT_CAP = 1000


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
    rate_limit: int | None = None
    rate_reset: int | None = None

    @property
    def spent(self) -> int:
        """Requests that counted against the rate limit: all but the free 304s."""
        return self.sent - self.not_modified


class ResponseCache(Protocol):
    def lookup(self, url: str) -> tuple[str, bytes] | None: ...
    def save(self, url: str, etag: str, body: bytes, now: datetime) -> None: ...
    def touch(self, url: str, now: datetime) -> None: ...
    def known(self, urls: Sequence[str]) -> set[str]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


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
    def __init__(
        self, config: GitHubConfig, token: str | None, governor: Governor | None = None
    ) -> None:
        # Shared by every client of the process: GitHub's secondary limits are per token.
        self.governor = governor or Governor(config.requests_per_minute, config.concurrency)
        retry = InterruptibleRetry(
            governor=self.governor,
            total=config.max_retries,
            connect=min(CONNECT_RETRIES, config.max_retries),
            backoff_factor=config.retry_backoff_seconds,
            # 429 is retried too; urllib3 honours its Retry-After (403's is handled by
            # GithubRetry itself), and 5xx are retried with exponential backoff.
            status_forcelist=[*range(500, 600), 429],
            # A wait inside a request holds a page half-fetched, so it stays short. Longer
            # waits for a reset happen in wait_if_exhausted, between requests.
            max_rate_limit_wait=config.max_rate_limit_wait_seconds,
            secondary_rate_wait=config.secondary_rate_wait_seconds,
        )
        auth: Auth.Auth | None = Auth.Token(token) if token else None
        who = f"token:{token or ''}"
        if config.app_id and config.installation_id and config.private_key_file:
            # PyGithub signs the JWT and renews the installation token before it expires.
            private_key = Path(config.private_key_file).read_text()
            auth = Auth.AppAuth(config.app_id, private_key).get_installation_auth(
                config.installation_id
            )
            who = f"app:{config.app_id}:{config.installation_id}"
        self.authenticated = auth is not None
        # Whose ETags these are (GitHub's ETags are specific to the token), as a hash; an
        # app's installation tokens rotate hourly, but its ETags stay valid.
        self.identity = hashlib.sha256(who.encode()).hexdigest()[:32]
        self._client = Github(
            auth=auth,
            base_url=config.api_url,
            timeout=int(config.timeout_seconds),
            per_page=PER_PAGE,
            retry=retry,
            seconds_between_requests=config.seconds_between_requests,
        )
        self._requester: Requester = self._client.requester
        self.stats = RequestStats()
        # Where ETags and bodies are kept; passes.connect_github puts the database here.
        self.cache: ResponseCache | None = None
        self.config = config

    def close(self) -> None:
        self._client.close()

    # --- transport ---

    def get(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        *,
        kind: str = "other",
        conditional: bool = True,
    ) -> Response:
        """GET ``url`` (a path or a ``next`` link). Raises PyGithub's exceptions on >= 400.

        A conditional GET sends the ETag stored for this URL. A 304 answer costs no rate
        limit, and is returned with the stored body as if it were a 200.
        """
        full_url = Requester.add_parameters_to_url(url, params) if params else url
        cache = self.cache if conditional else None
        cached = cache.lookup(full_url) if cache else None
        headers = {"If-None-Match": cached[0]} if cached else None
        while True:
            self.wait_if_exhausted(kind)
            try:
                with self.governor.request():
                    status, response_headers, body = self._requester.requestJson(
                        "GET", full_url, None, headers
                    )
                break
            except RateLimitExceededExceedsMaxWait as error:
                # Longer than GithubRetry may sleep: wait here, where a shutdown can
                # interrupt, then try again.
                self._read_rate_limit({k.lower(): v for k, v in (error.headers or {}).items()})
                self.sleep(max(error.wait or 0.0, self.seconds_to_reset(), 1.0))
        self.stats.sent += 1
        self._read_rate_limit(response_headers)
        if status == 304 and cache and cached:
            self.stats.not_modified += 1
            cache.touch(full_url, _utcnow())
            envelope = json.loads(cached[1])
            return Response(
                200, {**response_headers, "link": envelope["link"]}, json.loads(envelope["body"])
            )
        data = json.loads(body) if body else None
        if status >= 400:
            raise Requester.createException(status, response_headers, data or {})
        etag = response_headers.get("etag")
        if cache and etag and status == 200:
            envelope = {"link": response_headers.get("link", ""), "body": body}
            cache.save(full_url, etag, json.dumps(envelope).encode(), _utcnow())
        return Response(status, response_headers, data)

    def _read_rate_limit(self, headers: dict[str, Any]) -> None:
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None:
            self.stats.rate_remaining = int(float(remaining))
        limit = headers.get("x-ratelimit-limit")
        if limit is not None:
            self.stats.rate_limit = int(float(limit))
        reset = headers.get("x-ratelimit-reset")
        if reset is not None:
            self.stats.rate_reset = int(float(reset))

    # --- rate-limit awareness ---

    @property
    def reserve(self) -> int:
        """Requests to leave unspent; at most a fifth of the limit (60 without a token)."""
        return min(self.config.rate_limit_reserve, (self.stats.rate_limit or 5000) // 5)

    def seconds_to_reset(self) -> float:
        return (self.stats.rate_reset or 0) + 1 - time.time()

    def budget_low(self) -> bool:
        """True once the reserve is reached: the backfill waits for the next reset."""
        remaining = self.stats.rate_remaining
        return remaining is not None and remaining < self.reserve and self.seconds_to_reset() > 0

    def wait_if_exhausted(self, kind: str) -> None:
        """Live work spends the reserve down to a tenth, then waits for the reset."""
        remaining = self.stats.rate_remaining
        if kind == "rate_limit" or remaining is None or remaining >= max(1, self.reserve // 10):
            return
        seconds = self.seconds_to_reset()
        if seconds > 0:
            self.sleep(seconds)

    def sleep(self, seconds: float) -> None:
        """Wait for the rate limit to reset; a shutdown cuts the wait short."""
        log.warning(
            "github.waiting_for_reset", remaining=self.stats.rate_remaining, seconds=round(seconds)
        )
        shutdown.sleep(seconds)
        self.stats.rate_remaining = None  # unknown until the next answer

    # --- endpoints ---

    def repository(self, full_name: str) -> dict[str, Any]:
        try:
            return dict(self.get(f"/repos/{full_name}", kind="repo").data)
        except github.BadCredentialsException:
            raise AuthFailed(f"{full_name}: {CREDENTIALS_REJECTED}") from None
        except github.UnknownObjectException:
            raise RepoNotFound(
                f"{full_name}: repository not found (404), or the token cannot see it"
            ) from None

    def list_items(
        self,
        url: str,
        params: dict[str, Any],
        *,
        key: str | None,
        kind: str,
        conditional: bool = True,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a listing, following the ``Link: rel="next"`` header."""
        next_url: str | None = url
        query: dict[str, Any] | None = {**params, "per_page": PER_PAGE}
        while next_url:
            response = self.get(next_url, query, kind=kind, conditional=conditional)
            yield list(response.data[key] if key else response.data)
            next_url, query = response.next_url, None

    def org_repositories(self, org: str) -> Iterator[dict[str, Any]]:
        """An organisation's repositories, 100 a page, with ``archived`` and ``pushed_at``."""
        try:
            for page in self.list_items(
                f"/orgs/{org}/repos", {"type": "all"}, key=None, kind="org"
            ):
                yield from page
        except github.UnknownObjectException:
            raise GitHubError(
                f"{org}: organisation not found (404), or the token cannot see it"
            ) from None

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
        return self.get(*self._runs_listing(full_name, low, high), kind="runs")

    def runs_listings_primed(
        self, full_name: str, ranges: Sequence[tuple[datetime | None, datetime | None]]
    ) -> list[bool]:
        """For each ``created`` range, whether its listing's first page has a stored ETag,
        so that re-reading it may be free."""
        urls = [
            Requester.add_parameters_to_url(*self._runs_listing(full_name, low, high))
            for low, high in ranges
        ]
        known = self.cache.known(urls) if self.cache is not None else set()
        return [url in known for url in urls]

    @staticmethod
    def _runs_listing(
        full_name: str, low: datetime | None, high: datetime | None
    ) -> tuple[str, dict[str, Any]]:
        return (
            f"/repos/{full_name}/actions/runs",
            {"created": created_filter(low, high), "per_page": PER_PAGE},
        )

    def runs_next_pages(
        self, first: Response, max_pages: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """The pages after ``first``, up to ``max_pages`` pages in all."""
        next_url, pages = first.next_url, 1
        while next_url and (max_pages is None or pages < max_pages):
            response = self.get(next_url, kind="runs")
            pages += 1
            yield list(response.data["workflow_runs"])
            next_url = response.next_url

    def run(self, full_name: str, run_id: int) -> dict[str, Any] | None:
        """One run, or None when GitHub no longer has it."""
        try:
            return dict(self.get(f"/repos/{full_name}/actions/runs/{run_id}", kind="run").data)
        except github.UnknownObjectException:
            return None

    def run_attempt(self, full_name: str, run_id: int, attempt: int) -> dict[str, Any] | None:
        """A run as it was at one of its attempts, or None when GitHub no longer has it."""
        try:
            path = f"/repos/{full_name}/actions/runs/{run_id}/attempts/{attempt}"
            return dict(self.get(path, kind="run").data)
        except github.UnknownObjectException:
            return None

    def runners(self, scope: str) -> list[Runner] | None:
        """The self-hosted runners of ``repos/OWNER/NAME`` or ``orgs/ORG``, or None when
        the token may not read them (GitHub answers 403 or 404 without admin rights)."""
        try:
            items = [
                item
                for page in self.list_items(
                    f"/{scope}/actions/runners", {}, key="runners", kind="runners"
                )
                for item in page
            ]
        except GithubException as error:
            if error.status in (403, 404):
                return None
            raise
        return [
            Runner(
                id=item.get("id"),
                name=item.get("name"),
                # Its labels include Linux, Windows or macOS where "os" is missing.
                os=canonical_os(item.get("os"))
                or labels_os(label.get("name", "") for label in item.get("labels") or ()),
            )
            for item in items
        ]

    def descends(self, full_name: str, ancestor: str, head: str) -> bool | None:
        """Whether ``head`` descends from ``ancestor`` (GitHub's compare says ``ahead``
        or ``identical``); None when GitHub cannot compare them."""
        path = f"/repos/{full_name}/compare/{ancestor}...{head}"
        try:
            answer = self.get(path, {"per_page": 1}, kind="compare", conditional=False)
        except (github.UnknownObjectException, GithubException):
            return None
        return bool(answer.data.get("status") in ("ahead", "identical"))

    def jobs(self, full_name: str, run_id: int) -> list[dict[str, Any]]:
        """Jobs of every attempt of a run: one request unless it has over 100 jobs."""
        jobs: list[dict[str, Any]] = []
        for page in self.list_items(
            f"/repos/{full_name}/actions/runs/{run_id}/jobs",
            {"filter": "all"},
            key="jobs",
            kind="jobs",
            # A run's jobs are fetched because the run moved, so they have changed too;
            # caching them would only grow the cache by one entry per run.
            conditional=False,
        ):
            jobs.extend(page)
        return jobs
