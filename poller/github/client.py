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
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import github
import structlog
from github import Auth, Github, GithubException
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.Requester import Requester

from poller import metrics
from poller.clock import SYSTEM, Clock, whole_seconds
from poller.config.settings import GitHubConfig
from poller.github.app_auth import InstallationToken
from poller.github.clock import GitHubClock
from poller.github.errors import CREDENTIALS_REJECTED, AuthFailed, GitHubError, RepoNotFound
from poller.github.governor import Governor
from poller.github.limit import PrimaryLimit
from poller.github.moves import Moves
from poller.github.retry import CONNECT_RETRIES, InterruptibleRetry, Redirected
from poller.github.types import (
    RESULT_CAP,
    Payload,
    RateLimit,
    RequestStats,
    Response,
    ResponseCache,
    RunListing,
)
from poller.github.urls import NO_PULL_REQUESTS, PER_PAGE, runs_listing
from poller.rules.payloads import JobItem, RunItem, RunnerItem
from poller.shutdown import Stop

# The pages of a runs listing GitHub lets a client reach.
MAX_RUN_PAGES = RESULT_CAP // PER_PAGE

log = structlog.get_logger(__name__)

MAX_REDIRECTS = 3
# GitHub only lets a filtered runs listing reach this many results.


class GitHub:
    """One client: one token or app installation (``auth``), with its ETags (``cache``)."""

    def __init__(
        self,
        config: GitHubConfig,
        auth: Auth.Auth | None,
        governor: Governor | None = None,
        *,
        cache: ResponseCache | None = None,
        clock: Clock = SYSTEM,
        github_clock: GitHubClock | None = None,
    ) -> None:
        # Shared by every client of the process: GitHub's secondary limits are per token.
        self.governor = governor or Governor(
            config.requests_per_minute, config.concurrency, stop=Stop(), clock=clock.monotonic
        )
        # Every wait of this client (the budget, a retry's backoff, a reset) ends on it.
        self.stop = self.governor.stop
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
        self.auth = auth
        self.authenticated = auth is not None
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
        self.cache = cache  # None: every request is unconditional
        self.clock = clock
        # Resets are on GitHub's clock; shared by the process's clients (``pool``).
        self.github_clock = github_clock or GitHubClock(clock)
        self.moves = Moves()  # repositories GitHub redirected this client for
        self.limit = PrimaryLimit(
            self.stats, self.github_clock, config.rate_limit_reserve, self.stop
        )
        self.config = config

    def close(self) -> None:
        self._client.close()

    # --- transport ---

    def get(
        self, url: str, params: dict[str, Any] | None = None, *, conditional: bool = True
    ) -> Response:
        """GET ``url`` (a path or a ``next`` link). Raises PyGithub's exceptions on >= 400.

        A conditional GET sends the ETag stored for this URL. A 304 answer costs no rate
        limit, and is returned with the stored body as if it were a 200.
        """
        return self._get(url, params, conditional=conditional, spends_reserve=True)

    def _get(
        self,
        url: str,
        params: dict[str, Any] | None,
        *,
        conditional: bool,
        spends_reserve: bool,
    ) -> Response:
        """GET, following redirects with their whole Location: PyGithub would follow a
        301 with its path alone, and lose the query (``github_moves``)."""
        full_url = self.moves.rewrite(
            Requester.add_parameters_to_url(url, params) if params else url
        )
        for _ in range(MAX_REDIRECTS + 1):
            try:
                return self._get_once(
                    full_url, conditional=conditional, spends_reserve=spends_reserve
                )
            except Redirected as redirect:
                self.stats.sent += 1
                location = self._same_host(redirect.location)
                log.debug("github.redirected", url=full_url, location=location)
                self.moves.note(full_url, location)
                full_url = location
        raise GitHubError(f"{url}: GitHub redirected it more than {MAX_REDIRECTS} times")

    def _same_host(self, location: str) -> str:
        """A redirect's Location, checked to stay on the API host the token is for, as a
        path below the API's base like every URL the client builds (the ETags' key)."""
        api, there = urlsplit(self.config.api_url), urlsplit(location)
        if there.netloc and (there.scheme, there.netloc) != (api.scheme, api.netloc):
            raise GitHubError(
                f"GitHub redirected a request to {there.scheme}://{there.netloc}, not "
                f"{api.scheme}://{api.netloc}: check [github] api_url"
            )
        path = there.path.removeprefix(api.path.rstrip("/"))
        return path + (f"?{there.query}" if there.query else "")

    def _get_once(self, full_url: str, *, conditional: bool, spends_reserve: bool) -> Response:
        cache = self.cache if conditional else None
        cached = cache.lookup(full_url) if cache else None
        headers = {"If-None-Match": cached[0]} if cached else None
        while True:
            if spends_reserve:
                self.limit.wait_if_exhausted()
            try:
                with self.governor.request():
                    status, response_headers, body = self._requester.requestJson(
                        "GET", full_url, None, headers
                    )
                break
            except RateLimitExceededExceedsMaxWait as error:
                # The primary limit (``retry``), or a secondary one longer than
                # GithubRetry may sleep: wait here, on GitHub's clock, where a shutdown
                # can interrupt, then try again.
                answer = {k.lower(): v for k, v in (error.headers or {}).items()}
                self.limit.read(answer)
                self.limit.wait(max(error.wait or 0.0, self.limit.seconds_to_reset(), 1.0))
        self.stats.sent += 1
        metrics.count_request(full_url, status, response_headers)
        self.limit.read(response_headers)
        now = whole_seconds(self.clock.now())
        if status == 304 and cache and cached:
            self.stats.not_modified += 1
            cache.touch(full_url, now)
            envelope = json.loads(cached[1])
            return Response(
                200, {**response_headers, "link": envelope["link"]}, json.loads(envelope["body"])
            )
        data = json.loads(body) if body else None
        if status == 401 and isinstance(self.auth, InstallationToken):
            self.auth.forget()  # revoked, or expired early: the next request mints anew
        if status >= 400:
            raise Requester.createException(status, response_headers, data or {})
        etag = response_headers.get("etag")
        if cache and etag and status == 200:
            envelope = {"link": response_headers.get("link", ""), "body": body}
            cache.save(full_url, etag, json.dumps(envelope).encode(), now)
        return Response(status, response_headers, data)

    # --- endpoints ---

    def rate_limit(self) -> RateLimit | None:
        """``GET /rate_limit``, which costs nothing and may be asked with the reserve
        spent; None when GitHub does not say."""
        core = self._get("/rate_limit", None, conditional=False, spends_reserve=False).data
        core = (core or {}).get("resources", {}).get("core")
        if not core:
            return None
        reset = datetime.fromtimestamp(int(core["reset"]), UTC).replace(tzinfo=None)
        return RateLimit(int(core["remaining"]), int(core["limit"]), reset)

    def settle_move(self, old: str, new: str) -> None:
        """``old`` is ``new`` now: ask for it by name, with the ETags its URLs by id got."""
        repository_id = self.moves.moved_id(old)
        if repository_id is not None and self.cache is not None:
            self.cache.rename(f"/repositories/{repository_id}/", f"/repos/{new}/")

    def repository_by_id(self, repository_id: int) -> Payload:
        """``GET /repositories/{id}``: a repository whatever it is called now."""
        return dict(self.get(f"/repositories/{repository_id}", conditional=False).data)

    def repository(self, full_name: str) -> Payload:
        try:
            return dict(self.get(f"/repos/{full_name}").data)
        except github.BadCredentialsException:
            raise AuthFailed(f"{full_name}: {CREDENTIALS_REJECTED}") from None
        except github.UnknownObjectException:
            raise RepoNotFound(
                f"{full_name}: repository not found (404), or the token cannot see it"
            ) from None

    def pages(
        self,
        first: Response,
        key: str | None,
        *,
        max_pages: int | None = None,
        conditional: bool = True,
    ) -> Iterator[list[Payload]]:
        """``first`` and the pages after it, following ``Link: rel="next"``, up to
        ``max_pages`` in all; ``key`` names the list inside an envelope."""
        response: Response | None = first
        read = 0
        while response is not None:
            yield list(response.data[key] if key else response.data)
            read += 1
            next_url = response.next_url
            more = next_url is not None and (max_pages is None or read < max_pages)
            response = self.get(next_url, conditional=conditional) if next_url and more else None

    def list_items(
        self, url: str, params: dict[str, Any], *, key: str | None, conditional: bool = True
    ) -> Iterator[list[Payload]]:
        """Every page of a listing, 100 items a page."""
        first = self.get(url, {**params, "per_page": PER_PAGE}, conditional=conditional)
        return self.pages(first, key, conditional=conditional)

    def org_repositories(self, org: str) -> Iterator[Payload]:
        """An organisation's repositories, 100 a page, with ``archived`` and ``pushed_at``."""
        try:
            for page in self.list_items(f"/orgs/{org}/repos", {"type": "all"}, key=None):
                yield from page
        except github.UnknownObjectException:
            raise GitHubError(
                f"{org}: organisation not found (404), or the token cannot see it"
            ) from None

    def workflows(self, full_name: str) -> Iterator[Payload]:
        for page in self.list_items(f"/repos/{full_name}/actions/workflows", {}, key="workflows"):
            yield from page

    def branches(self, full_name: str) -> Iterator[Payload]:
        for page in self.list_items(f"/repos/{full_name}/branches", {}, key=None):
            yield from page

    def commit_pages(self, full_name: str, branch: str) -> Iterator[list[Payload]]:
        return self.list_items(f"/repos/{full_name}/commits", {"sha": branch}, key=None)

    def runs(
        self,
        full_name: str,
        low: datetime | None,
        high: datetime | None,
        *,
        status: str | None = None,
    ) -> RunListing:
        """The first page of the runs created in ``[low, high]``, newest first; only those
        whose current ``status`` is that, if given ("Returns workflow runs with the check
        run status or conclusion that you specify", GitHub's REST docs, "List workflow
        runs for a repository")."""
        first = self.get(*runs_listing(full_name, low, high, status))
        return RunListing(
            int(first.data.get("total_count", 0)), runs_of(first.data), first.next_url
        )

    def run_pages(self, listing: RunListing) -> Iterator[list[RunItem]]:
        """The listing's pages, its first included, as far as GitHub lets a listing
        reach (``RunListing.whole``): asking past it is a 422."""
        yield listing.runs
        if listing.next_url and MAX_RUN_PAGES > 1:
            first = self.get(listing.next_url)
            for page in self.pages(first, "workflow_runs", max_pages=MAX_RUN_PAGES - 1):
                yield cast(list[RunItem], page)

    def runs_listings_primed(
        self,
        full_name: str,
        ranges: Sequence[tuple[datetime | None, datetime | None]],
        status: str | None = None,
    ) -> list[bool]:
        """For each ``created`` range (of one ``status``, if given), whether its listing's
        first page has a stored ETag, so that re-reading it may be free."""
        urls = [
            Requester.add_parameters_to_url(*runs_listing(full_name, low, high, status))
            for low, high in ranges
        ]
        known = self.cache.known(urls) if self.cache is not None else set()
        return [url in known for url in urls]

    def run(self, full_name: str, run_id: int) -> RunItem | None:
        """One run, or None when GitHub no longer has it."""
        try:
            path = f"/repos/{full_name}/actions/runs/{run_id}"
            return cast(RunItem, dict(self.get(path, NO_PULL_REQUESTS).data))
        except github.UnknownObjectException:
            return None

    def run_attempt(self, full_name: str, run_id: int, attempt: int) -> RunItem | None:
        """A run as it was at one of its attempts, or None when GitHub no longer has it."""
        try:
            path = f"/repos/{full_name}/actions/runs/{run_id}/attempts/{attempt}"
            return cast(RunItem, dict(self.get(path, NO_PULL_REQUESTS).data))
        except github.UnknownObjectException:
            return None

    def runners(self, scope: str) -> list[RunnerItem] | None:
        """The self-hosted runners of ``repos/OWNER/NAME`` or ``orgs/ORG``, or None when
        the token may not read them (GitHub answers 403 or 404 without admin rights)."""
        try:
            items = [
                item
                for page in self.list_items(f"/{scope}/actions/runners", {}, key="runners")
                for item in page
            ]
        except GithubException as error:
            if error.status in (403, 404):
                return None
            raise
        return cast(list[RunnerItem], items)

    def descends(self, full_name: str, ancestor: str, head: str) -> bool | None:
        """Whether ``head`` descends from ``ancestor`` (GitHub's compare says ``ahead``
        or ``identical``); None when GitHub cannot compare them."""
        path = f"/repos/{full_name}/compare/{ancestor}...{head}"
        try:
            answer = self.get(path, {"per_page": 1}, conditional=False)
        except (github.UnknownObjectException, GithubException):
            return None
        return bool(answer.data.get("status") in ("ahead", "identical"))

    def jobs(self, full_name: str, run_id: int) -> list[JobItem]:
        """Jobs of every attempt of a run: one request unless it has over 100 jobs."""
        jobs: list[JobItem] = []
        for page in self.list_items(
            f"/repos/{full_name}/actions/runs/{run_id}/jobs",
            {"filter": "all"},
            key="jobs",
            # A run's jobs are fetched because the run moved, so they have changed too;
            # caching them would only grow the cache by one entry per run.
            conditional=False,
        ):
            jobs.extend(cast(list[JobItem], page))
        return jobs


def runs_of(data: Any) -> list[RunItem]:
    """The runs of a runs listing's page: GitHub's envelope ``workflow_runs``, whose
    items are the REST API's workflow runs (``payloads.RunItem``)."""
    return cast(list[RunItem], list(data["workflow_runs"]))
