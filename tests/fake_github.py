"""A stateful fake of the GitHub REST API, served over HTTP on 127.0.0.1.

The real PyGithub client in a real ``python -m poller`` subprocess talks to it through
``[github] api_url``. It reproduces what the poller must cope with:

* payloads built from GitHub's documented examples (``tests/fixtures``), so every field
  a real response carries is there;
* ``Link`` pagination, ``per_page`` capped at 100, the 1,000-result cap of filtered run
  listings (``total_count`` still tells the truth), ``created`` range syntax;
* ``x-ratelimit-*`` headers, a primary limit that runs out and resets, ETags with
  ``If-None-Match`` answered by a free 304;
* injected failures: 5xx bursts and secondary limits with ``retry-after``;
* optionally, GitHub's secondary limit itself (``SecondaryLimit``): too many requests in a
  rolling minute, or too many in flight, are answered 403 with ``retry-after``;
* a configurable latency per request;
* jobs as real fleets make them: named jobs on self-hosted labels that name no OS,
  skipped jobs (no runner, times at their creation), runner groups, steps; whole
  re-runs and "re-run failed jobs"; self-hosted runner listings that refuse tokens
  without admin rights; ``compare`` for force-pushes.

Tests change the state between passes (new runs, completions, re-runs, deleted branches)
and read ``requests`` to count what the poller spent.
"""

from __future__ import annotations

import collections
import copy
import email.utils
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"
FILTERED_CAP = 1000


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


RUN_TEMPLATE = _fixture("workflow-runs-list.json")["workflow_runs"][0]
JOB_TEMPLATE = _fixture("jobs-list.json")["jobs"][0]
WORKFLOW_TEMPLATE = _fixture("workflows-list.json")["workflows"][0]
BRANCH_TEMPLATE = _fixture("branches-list.json")[0]
COMMIT_TEMPLATE = _fixture("commits-list.json")[0]
PRIMARY_LIMIT_BODY = _fixture("rate-limit-error-403.json")
SECONDARY_LIMIT_BODY = _fixture("secondary-rate-limit-error-403.json")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_moment(text: str, *, end: bool = False) -> datetime:
    """A GitHub search date or datetime; a bare date at ``end`` means that day's end."""
    if "T" not in text:
        day = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return day + timedelta(days=1, seconds=-1) if end else day
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def created_matcher(expression: str) -> Callable[[datetime], bool]:
    if ".." in expression:
        low, high = expression.split("..", 1)
        lo = parse_moment(low) if low != "*" else None
        hi = parse_moment(high, end=True) if high != "*" else None
        return lambda t: (lo is None or t >= lo) and (hi is None or t <= hi)
    for op, check in (
        (">=", lambda t, v: t >= v),
        ("<=", lambda t, v: t <= v),
        (">", lambda t, v: t > v),
        ("<", lambda t, v: t < v),
    ):
        if expression.startswith(op):
            value = parse_moment(expression[len(op) :], end=op in ("<=", ">"))
            return lambda t, v=value, c=check: c(t, v)  # type: ignore[misc]
    lo = parse_moment(expression)
    hi = parse_moment(expression, end=True)
    return lambda t: lo <= t <= hi


def _renamed(value: Any, old: str, new: str) -> Any:
    """``value`` with ``old`` replaced by ``new`` in every string it holds."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {key: _renamed(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, old, new) for item in value]
    return value


@dataclass
class Request:
    path: str
    query: dict[str, str]
    status: int
    conditional: bool
    refused: bool = False  # by the secondary limit
    at: float = field(default_factory=time.time)
    credential: str = ""  # what the Authorization header presented, if anything

    @property
    def rate_limited(self) -> bool:
        """Counted against the primary limit: everything but 304s, /rate_limit and what
        an App does with its JWT (minting installation tokens, listing installations)."""
        return (
            self.status not in (301, 304)
            and self.path != "/rate_limit"
            and not self.path.startswith("/app/")
        )


class SecondaryLimit:
    """GitHub's secondary limit for one token or installation: at most ``requests`` in any
    rolling ``window`` seconds (900 a minute) and ``concurrency`` in flight (100). Every
    request counts, 304s included; one over either limit gets a 403 with ``retry-after``.
    Tests shrink the window to see the limit in seconds."""

    def __init__(
        self,
        requests: int = 900,
        *,
        window: float = 60.0,
        concurrency: int = 100,
        retry_after: int = 60,
    ) -> None:
        self.requests = requests
        self.window = window
        self.concurrency = concurrency
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.recent: collections.deque[float] = collections.deque()
        self.in_flight = 0
        self.answers = 0  # requests refused

    def enter(self) -> bool:
        """Admit one request (True) or refuse it; every admitted request must ``leave``."""
        now = time.monotonic()
        with self.lock:
            while self.recent and self.recent[0] <= now - self.window:
                self.recent.popleft()
            self.recent.append(now)
            if len(self.recent) > self.requests or self.in_flight >= self.concurrency:
                self.answers += 1
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


@dataclass
class Hold:
    """An interrupt point: requests whose path holds ``fragment``, from the ``after``+1-th
    on, wait until ``release`` is set; ``reached`` says one is waiting. A test stops the
    poller there, at a known point, instead of racing a long pass."""

    fragment: str
    after: int
    seen: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class Budget:
    """One primary rate limit: a personal token's, or an App installation's (each
    installation has its own, GitHub's docs on rate limits for GitHub Apps)."""

    limit: int
    remaining: int
    reset: int
    # The reset comes this many seconds after the next request, not at a wall-clock time
    # fixed before the poller even started: a loaded machine may take seconds to start it.
    reset_in: float | None = None

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-used": str(self.limit - self.remaining),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-resource": "core",
        }


@dataclass
class Installation:
    """One installation of a fake App: the account it is installed on, its own budgets,
    and the tokens issued for it (token -> expiry, by the fake's clock)."""

    id: int
    account: str
    budget: Budget
    secondary: SecondaryLimit | None = None
    tokens: dict[str, float] = field(default_factory=dict)


@dataclass
class JobSpec:
    """One job of a fake run: what ``runs-on`` asked for, and how it ends."""

    labels: list[str]
    name: str | None = None
    # None: the run's conclusion. "skipped": the job never ran.
    conclusion: str | None = None
    runner_name: str | None = None
    runner_id: int | None = None
    runner_group: str | None = "Default"
    queue_seconds: int | None = None  # None: the run's
    # No runner has taken it yet: it stays queued until ``start_jobs`` or ``cancel_run``.
    queued: bool = False


FAILED = ("failure", "cancelled", "timed_out")


@dataclass
class Commit:
    sha: str
    message: str
    author: str
    date: datetime
    parent: str | None


@dataclass
class FakeRepo:
    full_name: str
    created_at: datetime
    id: int = 0  # GitHub's id: it stays when the repository is renamed or transferred
    default_branch: str = "main"
    archived: bool = False
    pushed_at: datetime | None = None  # moves with every commit, branch and workflow
    workflows: dict[int, dict[str, Any]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    protected: set[str] = field(default_factory=set)
    commits: dict[str, Commit] = field(default_factory=dict)
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # Each run's earlier attempts, as GET .../runs/{id}/attempts/{n} shows them.
    attempts: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    # Open pull requests by number: (head ref, head sha, base ref).
    pull_requests: dict[int, tuple[str, str, str]] = field(default_factory=dict)


class FakeGitHub:
    def __init__(self, *, token: str | None = None, rate_limit: int = 5000) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.token = token
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        # The fake's wall clock, for rate-limit resets and token expiry: benchmarks on a
        # simulated clock set it to theirs.
        self.clock: Callable[[], float] = time.time
        # The personal token's primary limit (an unauthenticated client's too).
        self.budget = Budget(rate_limit, rate_limit, int(self.clock()) + 3600)
        self.latency = 0.0
        # The personal token's secondary limit; each installation gets its own like it.
        self.secondary: SecondaryLimit | None = None
        self.ids = itertools.count(1_000_000)
        # Each failure is (path fragment, status, headers, body, times left).
        self.failures: list[list[Any]] = []
        self.server: ThreadingHTTPServer | None = None
        self.etags_enabled = True
        # GitHub Apps: app id -> public key PEM, and each app's installations by id.
        self.apps: dict[int, str] = {}
        self.installations: dict[int, dict[int, Installation]] = {}
        # An installation token lives one hour (GitHub's docs: "Installation access tokens
        # expire one hour from the time you create them"); tests shorten it.
        self.token_lifetime = 3600.0
        self.installation_rate_limit = 5000
        self.other_tokens: set[str] = set()  # personal tokens accepted beside ``token``
        self.require_auth = False
        # Self-hosted runners per scope ("repos/OWNER/NAME" or "orgs/ORG"), as GET
        # .../actions/runners lists them; without admin rights GitHub answers 403.
        self.runners: dict[str, list[dict[str, Any]]] = {}
        self.runners_readable = True
        self.holds: list[Hold] = []
        # Old full names (lower case) of renamed or transferred repositories -> the repo.
        self.moved: dict[str, FakeRepo] = {}

    @property
    def installation_tokens(self) -> set[str]:
        """Every installation token issued, expired or not."""
        with self.lock:
            return {
                token
                for installations in self.installations.values()
                for installation in installations.values()
                for token in installation.tokens
            }

    # --- server lifecycle ---

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without this, Nagle and delayed ACKs
            # add 40 ms to every request.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                status, headers, body = fake.handle(
                    self.path, dict(self.headers.items()), f"http://{self.headers['Host']}"
                )
                # API URLs inside payloads (jobs_url, url, ...) point at this server, as
                # real ones point at the API host that served them.
                text = "" if body is None else json.dumps(body)
                payload = text.replace("https://api.github.com", fake.url).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, body = fake.handle_post(self.path, dict(self.headers.items()))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                # Every answer's Date is on GitHub's clock, as its resets are: a test sets
                # ``clock`` apart from the host's to model a drifting host.
                return email.utils.formatdate(fake.clock(), usegmt=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    # --- counting ---

    def count(self, fragment: str = "", *, rate_limited: bool = True) -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if fragment in r.path and (r.rate_limited or not rate_limited)
            )

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    # --- failure injection ---

    def fail(
        self,
        fragment: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        with self.lock:
            self.failures.append(
                [fragment, status, headers or {}, body or {"message": "Server Error"}, times]
            )

    def hold(self, fragment: str, *, after: int) -> Hold:
        """Hold every request for ``fragment`` after the first ``after`` (see ``Hold``)."""
        with self.lock:
            held = Hold(fragment, after)
            self.holds.append(held)
            return held

    def _wait_if_held(self, path: str) -> None:
        with self.lock:
            waiting = []
            for held in self.holds:
                if held.fragment in path:
                    held.seen += 1
                    if held.seen > held.after:
                        waiting.append(held)
        for held in waiting:
            held.reached.set()
            held.release.wait(timeout=120)

    def secondary_limit(self, fragment: str, *, retry_after: int = 1, times: int = 1) -> None:
        self.fail(
            fragment,
            403,
            times=times,
            headers={"retry-after": str(retry_after)},
            body=SECONDARY_LIMIT_BODY,
        )

    def exhaust_rate_limit(self, *, reset_in: float) -> None:
        """No request left; the reset comes ``reset_in`` seconds after the next request."""
        self.limit_rate(0, reset_in=reset_in)

    def limit_rate(self, remaining: int, *, reset_in: float, limit: int | None = None) -> None:
        """``remaining`` requests left (of ``limit``), then a reset ``reset_in`` seconds
        after the next request."""
        with self.lock:
            self.budget.limit = limit or self.budget.limit
            self.budget.remaining = remaining
            self.budget.reset = int(self.clock() + 3600)
            self.budget.reset_in = reset_in

    # --- state builders ---

    def add_repo(
        self, full_name: str, *, created_at: datetime | None = None, default_branch: str = "main"
    ) -> FakeRepo:
        with self.lock:
            repo = FakeRepo(
                full_name,
                created_at or datetime(2020, 1, 1, tzinfo=UTC),
                id=next(self.ids),
                default_branch=default_branch,
            )
            self.repos[full_name] = repo
            return repo

    def add_workflow(
        self, repo: FakeRepo, name: str, *, state: str = "active", path: str | None = None
    ) -> int:
        with self.lock:
            workflow_id = next(self.ids)
            slug = name.lower().replace(" ", "-")
            payload = copy.deepcopy(WORKFLOW_TEMPLATE)
            payload.update(
                id=workflow_id,
                node_id=f"W_{workflow_id}",
                name=name,
                path=path or f".github/workflows/{slug}.yml",
                state=state,
                url=f"https://api.github.com/repos/{repo.full_name}/actions/workflows/{workflow_id}",
                html_url=f"https://github.com/{repo.full_name}/blob/main/.github/workflows/{slug}.yml",
            )
            repo.workflows[workflow_id] = payload
            repo.pushed_at = datetime.now(UTC)
            return workflow_id

    def add_commit(
        self,
        repo: FakeRepo,
        branch: str,
        *,
        message: str = "change",
        author: str = "Octo Cat",
        when: datetime | None = None,
        onto: str | None = None,
    ) -> str:
        """A commit on ``branch``: on its head, or ``onto`` another commit (a force-push
        when that is not the head)."""
        with self.lock:
            parent = onto or repo.branches.get(branch)
            seed = f"{repo.full_name}{branch}{parent}{message}{next(self.ids)}"
            sha = hashlib.sha1(seed.encode()).hexdigest()
            when = when or datetime.now(UTC).replace(microsecond=0)
            repo.commits[sha] = Commit(sha, message, author, when, parent)
            repo.branches[branch] = sha
            repo.pushed_at = datetime.now(UTC)
            return sha

    def create_branch(self, repo: FakeRepo, name: str, *, from_branch: str = "main") -> None:
        with self.lock:
            repo.branches[name] = repo.branches[from_branch]
            repo.pushed_at = datetime.now(UTC)

    def delete_branch(self, repo: FakeRepo, name: str) -> None:
        with self.lock:
            del repo.branches[name]
            repo.pushed_at = datetime.now(UTC)

    def add_run(
        self,
        repo: FakeRepo,
        workflow_id: int,
        *,
        created: datetime,
        branch: str | None = "main",
        sha: str | None = None,
        status: str = "completed",
        conclusion: str | None = "success",
        labels: list[list[str] | JobSpec] | None = None,
        actor: str | None = "octocat",
        queue_seconds: int = 30,
        job_seconds: int = 120,
    ) -> int:
        """A run with one job per entry of ``labels``, runner labels or a ``JobSpec``
        (default: one ubuntu job)."""
        with self.lock:
            run_id = next(self.ids)
            sha = sha or (
                repo.branches.get(branch or "") or hashlib.sha1(str(run_id).encode()).hexdigest()
            )
            commit = repo.commits.get(sha)
            payload = copy.deepcopy(RUN_TEMPLATE)
            base = f"https://api.github.com/repos/{repo.full_name}/actions/runs/{run_id}"
            payload.update(
                id=run_id,
                node_id=f"R_{run_id}",
                name=repo.workflows[workflow_id]["name"],
                head_branch=branch,
                head_sha=sha,
                run_number=len(repo.runs) + 1,
                status=status,
                conclusion=conclusion if status == "completed" else None,
                workflow_id=workflow_id,
                url=base,
                html_url=f"https://github.com/{repo.full_name}/actions/runs/{run_id}",
                created_at=iso(created),
                updated_at=iso(created),
                run_attempt=1,
                run_started_at=iso(created),
                previous_attempt_url=None,
                jobs_url=f"{base}/jobs",
                head_commit={
                    "id": sha,
                    "tree_id": hashlib.sha1(sha.encode()).hexdigest(),
                    "message": commit.message if commit else "a commit",
                    "timestamp": iso(commit.date if commit else created),
                    "author": {
                        "name": commit.author if commit else "Octo Cat",
                        "email": "octocat@github.com",
                    },
                    "committer": {"name": "GitHub", "email": "noreply@github.com"},
                },
            )
            if actor is None:
                payload["actor"] = None
            else:
                payload["actor"] = {**payload["actor"], "login": actor}
            repo.runs[run_id] = payload
            repo.jobs[run_id] = []
            for job_labels in labels if labels is not None else [["ubuntu-22.04"]]:
                self._add_job(
                    repo,
                    run_id,
                    job_labels,
                    created,
                    queue_seconds,
                    job_seconds,
                    done=status == "completed",
                    conclusion=conclusion,
                )
            self._touch(
                payload,
                created + timedelta(seconds=queue_seconds + job_seconds)
                if status == "completed"
                else created,
            )
            return run_id

    def _add_job(
        self,
        repo: FakeRepo,
        run_id: int,
        spec: list[str] | JobSpec,
        requested: datetime,
        queue_seconds: int,
        seconds: int,
        *,
        done: bool,
        conclusion: str | None,
    ) -> None:
        """A job queued at ``requested`` that starts ``queue_seconds`` later. A skipped
        job never runs: GitHub gives it no runner and times at its creation."""
        if not isinstance(spec, JobSpec):
            spec = JobSpec(list(spec))
        labels = spec.labels
        queued = spec.queue_seconds if spec.queue_seconds is not None else queue_seconds
        started = requested + timedelta(seconds=queued)
        conclusion = spec.conclusion or conclusion
        run = repo.runs[run_id]
        siblings = sum(job["run_attempt"] == run["run_attempt"] for job in repo.jobs[run_id])
        job_id = next(self.ids)
        job = copy.deepcopy(JOB_TEMPLATE)
        job.update(
            id=job_id,
            run_id=run_id,
            run_attempt=run["run_attempt"],
            run_url=run["url"],
            node_id=f"J_{job_id}",
            head_sha=run["head_sha"],
            url=f"https://api.github.com/repos/{repo.full_name}/actions/jobs/{job_id}",
            html_url=f"https://github.com/{repo.full_name}/actions/runs/{run_id}/job/{job_id}",
            # A re-run repeats the jobs of the workflow, so names repeat per attempt.
            name=spec.name or f"build-{siblings + 1}",
            labels=labels,
            created_at=iso(requested),
            started_at=iso(started),
            status="completed" if done else "in_progress",
            conclusion=conclusion if done else None,
            completed_at=iso(started + timedelta(seconds=seconds)) if done else None,
            runner_id=spec.runner_id or 1,
            runner_name=spec.runner_name or f"runner-{labels[0] if labels else 'none'}",
            runner_group_name=spec.runner_group,
            workflow_name=run["name"],
            head_branch=run["head_branch"],
        )
        if spec.conclusion == "skipped":
            job.update(
                status="completed",
                started_at=iso(requested),
                completed_at=iso(requested + timedelta(seconds=1)),
                runner_id=None,
                runner_name=None,
                runner_group_id=None,
                runner_group_name=None,
            )
        elif spec.queued:
            # GitHub gives a queued job a placeholder ``started_at`` near its creation
            # and null runner fields; the job has no steps yet.
            job.update(
                status="queued",
                conclusion=None,
                started_at=iso(requested + timedelta(seconds=2)),
                completed_at=None,
                runner_id=None,
                runner_name=None,
                runner_group_id=None,
                runner_group_name=None,
            )
        self._set_steps(job)
        repo.jobs[run_id].append(job)

    @staticmethod
    def _set_steps(job: dict[str, Any]) -> None:
        """Three steps inside the job's times, as the jobs listing carries them."""
        if job["conclusion"] == "skipped" or not job["runner_name"]:
            job["steps"] = []
            return
        start = parse_moment(job["started_at"])
        end = parse_moment(job["completed_at"]) if job["completed_at"] else None
        middle = start + ((end - start) / 2 if end else timedelta(seconds=1))
        bounds = [(start, start + timedelta(seconds=1)), (start + timedelta(seconds=1), middle)]
        bounds.append((middle, end))
        job["steps"] = [
            {
                "name": name,
                "status": "completed" if stop else "in_progress",
                "conclusion": (job["conclusion"] if number == 3 else "success") if stop else None,
                "number": number,
                "started_at": iso(begin),
                "completed_at": iso(stop) if stop else None,
            }
            for number, (name, (begin, stop)) in enumerate(
                zip(["Set up job", "Build and test", "Complete job"], bounds, strict=True), 1
            )
        ]

    @staticmethod
    def _touch(run: dict[str, Any], when: datetime) -> None:
        run["updated_at"] = iso(
            max(when, datetime.fromisoformat(run["updated_at"].replace("Z", "+00:00")))
        )

    def start_run(self, repo: FakeRepo, run_id: int, *, at: datetime) -> None:
        """A queued run gets a runner."""
        with self.lock:
            run = repo.runs[run_id]
            run["status"] = "in_progress"
            self._touch(run, at)

    def move_repo(self, repo: FakeRepo, new_name: str) -> None:
        """Rename or transfer the repository. GitHub answers its old API URLs with 301 to
        ``/repositories/{id}/...``, query string included (GitHub changelog 2015-07-21,
        "automatic redirects for renamed repositories"; node-gh/gh#579 records one:
        ``location: .../repositories/119537897/issues?state=open&labels=``), and what
        it serves names the repository by its new name."""
        with self.lock:
            old = repo.full_name
            del self.repos[old]
            self.moved[old.lower()] = repo
            self.moved.pop(new_name.lower(), None)
            for kind in ("runs", "jobs", "attempts", "workflows"):
                setattr(repo, kind, _renamed(getattr(repo, kind), f"/{old}/", f"/{new_name}/"))
            repo.full_name = new_name
            self.repos[new_name] = repo

    def _moved_location(self, path: str, query: dict[str, str], origin: str) -> str | None:
        segments = path.strip("/").split("/")
        if len(segments) < 3 or segments[0] != "repos":
            return None
        repo = self.moved.get(f"{segments[1]}/{segments[2]}".lower())
        if repo is None or f"{segments[1]}/{segments[2]}" in self.repos:
            return None
        rest = "/".join(segments[3:])
        location = f"{origin}/repositories/{repo.id}" + (f"/{rest}" if rest else "")
        return location + (f"?{urlencode(query)}" if query else "")

    def delete_run(self, repo: FakeRepo, run_id: int) -> None:
        """``DELETE .../actions/runs/{id}``, or the repository's retention: the run answers
        404 and leaves every listing. GitHub lets people delete a run "that has been
        completed, or is more than two weeks old" (GitHub's docs, "Deleting a workflow
        run")."""
        with self.lock:
            del repo.runs[run_id]
            repo.jobs.pop(run_id, None)
            repo.attempts.pop(run_id, None)

    def start_jobs(self, repo: FakeRepo, run_id: int, *, at: datetime) -> None:
        """A runner takes each queued job of the run's current attempt at ``at``."""
        with self.lock:
            run = repo.runs[run_id]
            for job in repo.jobs[run_id]:
                if job["run_attempt"] == run["run_attempt"] and job["status"] == "queued":
                    job.update(
                        status="in_progress",
                        started_at=iso(at),
                        runner_id=1,
                        runner_name=f"runner-{job['labels'][0] if job['labels'] else 'none'}",
                        runner_group_name="Default",
                    )
                    self._set_steps(job)
            run["status"] = "in_progress"
            self._touch(run, at)

    def cancel_run(self, repo: FakeRepo, run_id: int, *, at: datetime) -> None:
        """Cancel the run at ``at``. A job still queued goes to ``completed``/``cancelled``
        without ever having had a runner: ``runner_id`` 0, an empty runner name, no steps,
        and its placeholder ``started_at`` kept (actions/runner#4684 shows such a job:
        "conclusion: cancelled, runner_id: 0, an empty steps array"). A running job
        ends at ``at``."""
        with self.lock:
            run = repo.runs[run_id]
            for job in repo.jobs[run_id]:
                if job["run_attempt"] != run["run_attempt"] or job["status"] == "completed":
                    continue
                if job["status"] == "queued":
                    job.update(runner_id=0, runner_name="", steps=[])
                job.update(status="completed", conclusion="cancelled", completed_at=iso(at))
                if job["runner_name"]:
                    self._set_steps(job)
            run.update(status="completed", conclusion="cancelled")
            self._touch(run, at)

    def complete_run(
        self, repo: FakeRepo, run_id: int, *, conclusion: str = "success", job_seconds: int = 120
    ) -> None:
        with self.lock:
            run = repo.runs[run_id]
            run.update(status="completed", conclusion=conclusion)
            end = None
            for job in repo.jobs[run_id]:
                if job["run_attempt"] == run["run_attempt"] and job["status"] != "completed":
                    started = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
                    end = started + timedelta(seconds=job_seconds)
                    job.update(status="completed", conclusion=conclusion, completed_at=iso(end))
                    self._set_steps(job)
            self._touch(
                run,
                end
                or datetime.fromisoformat(run["updated_at"].replace("Z", "+00:00"))
                + timedelta(seconds=1),
            )

    def rerun(
        self,
        repo: FakeRepo,
        run_id: int,
        *,
        at: datetime,
        conclusion: str | None = "success",
        labels: list[list[str]] | None = None,
    ) -> None:
        """A new attempt: same id and created_at, new status, jobs and updated_at."""
        with self.lock:
            run = repo.runs[run_id]
            repo.attempts.setdefault(run_id, {})[run["run_attempt"]] = copy.deepcopy(run)
            run["run_attempt"] += 1
            run["previous_attempt_url"] = f"{run['url']}/attempts/{run['run_attempt'] - 1}"
            run["run_started_at"] = iso(at)
            done = conclusion is not None
            run.update(status="completed" if done else "in_progress", conclusion=conclusion)
            for job_labels in labels if labels is not None else [["ubuntu-22.04"]]:
                self._add_job(
                    repo, run_id, job_labels, at, 10, 60, done=done, conclusion=conclusion
                )
            self._touch(run, at + timedelta(seconds=70))

    def rerun_failed_jobs(
        self, repo: FakeRepo, run_id: int, *, at: datetime, conclusion: str | None = "success"
    ) -> list[str]:
        """GitHub's "re-run failed jobs": a new attempt in which only the failed jobs run
        again (their dependents too, which a flat fake does not have). The jobs that
        passed are not run, and get no new execution: since May 2025 GitHub's jobs
        listing shows an attempt's own jobs only (r-universe-org/help#607), so they are
        seen with ``filter=all``, at their earlier attempt. Returns the re-run names."""
        with self.lock:
            run = repo.runs[run_id]
            previous = run["run_attempt"]
            newest: dict[str, dict[str, Any]] = {}
            for job in repo.jobs[run_id]:
                if (
                    job["name"] not in newest
                    or job["run_attempt"] > newest[job["name"]]["run_attempt"]
                ):
                    newest[job["name"]] = job
            failed = [job for job in newest.values() if job["conclusion"] in FAILED]
            repo.attempts.setdefault(run_id, {})[previous] = copy.deepcopy(run)
            run["run_attempt"] = previous + 1
            run["previous_attempt_url"] = f"{run['url']}/attempts/{previous}"
            run["run_started_at"] = iso(at)
            done = conclusion is not None
            run.update(status="completed" if done else "in_progress", conclusion=conclusion)
            for job in failed:
                spec = JobSpec(
                    job["labels"],
                    name=job["name"],
                    runner_name=job["runner_name"],
                    runner_id=job["runner_id"],
                    runner_group=job["runner_group_name"],
                )
                self._add_job(repo, run_id, spec, at, 10, 60, done=done, conclusion=conclusion)
            self._touch(run, at + timedelta(seconds=70))
            return [job["name"] for job in failed]

    def add_runner(self, scope: str, name: str, os: str, labels: list[str]) -> int:
        """A self-hosted runner of ``repos/OWNER/NAME`` or ``orgs/ORG``; ``os`` as the
        runners API spells it (``linux``), its labels with the OS and architecture."""
        with self.lock:
            runner_id = next(self.ids)
            self.runners.setdefault(scope, []).append(
                {
                    "id": runner_id,
                    "name": name,
                    "os": os,
                    "status": "online",
                    "busy": False,
                    "labels": [
                        {"id": index, "name": label, "type": "read-only"}
                        for index, label in enumerate(["self-hosted", *labels], 1)
                    ],
                }
            )
            return runner_id

    # --- GitHub App installation tokens ---

    def register_app(
        self, app_id: int, installation_id: int, public_key_pem: str, account: str = ""
    ) -> None:
        """An App, installed on ``account`` (every account, if empty) as ``installation_id``."""
        self.apps[app_id] = public_key_pem
        self.install(app_id, installation_id, account)

    def install(self, app_id: int, installation_id: int, account: str) -> Installation:
        """Install the App on one more account: its own id, token and budgets."""
        with self.lock:
            budget = Budget(
                self.installation_rate_limit,
                self.installation_rate_limit,
                int(self.clock()) + 3600,
            )
            installation = Installation(installation_id, account, budget)
            self.installations.setdefault(app_id, {})[installation_id] = installation
            return installation

    def _app_of(self, authorization: str) -> int | None:
        """The App whose JWT this is, checked against its public key; None if none is."""
        import jwt  # PyGithub's own dependency

        scheme, _, token = authorization.partition(" ")
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            app_id = int(claims["iss"])
            jwt.decode(token, self.apps[app_id], algorithms=["RS256"])
        except (KeyError, ValueError, jwt.PyJWTError):
            return None
        return app_id if scheme.lower() == "bearer" else None

    def handle_post(self, raw_path: str, headers: dict[str, str]) -> tuple[int, Any]:
        """``POST /app/installations/{id}/access_tokens``, authenticated by the app's JWT."""
        path = urlsplit(raw_path).path.removeprefix("/api/v3")
        parts = path.strip("/").split("/")
        lowered = {key.lower(): value for key, value in headers.items()}
        with self.lock:
            self.requests.append(Request(path, {}, 201, False))
            if parts[:2] != ["app", "installations"] or parts[3:] != ["access_tokens"]:
                return 404, {"message": "Not Found"}
            app_id = self._app_of(lowered.get("authorization", ""))
            if app_id is None:
                return 401, {"message": "A JSON web token could not be decoded"}
            installation = self.installations[app_id].get(int(parts[2]))
            if installation is None:
                return 404, {"message": "Not Found"}
            issued = f"ghs_{hashlib.sha1(str(next(self.ids)).encode()).hexdigest()}"
            expires = self.clock() + self.token_lifetime
            installation.tokens[issued] = expires
            return 201, {
                "token": issued,
                "expires_at": iso(datetime.fromtimestamp(expires, UTC)),
                "permissions": {"actions": "read", "contents": "read", "metadata": "read"},
                "repository_selection": "all",
            }

    def _app_route(self, path: str, app_id: int) -> tuple[int, Any]:
        """What an App's JWT may read: its installations, and which one covers an account."""
        installations = list(self.installations[app_id].values())
        if path == "/app/installations":
            return 200, [self._installation_body(i) for i in installations]
        segments = path.strip("/").split("/")
        named = len(segments) in (3, 4) and segments[0] in ("orgs", "users", "repos")
        if named and segments[-1] == "installation":
            owner = segments[1].lower()
            for installation in installations:
                if installation.account.lower() in ("", owner):
                    return 200, self._installation_body(installation)
        return 404, {"message": "Not Found"}

    @staticmethod
    def _installation_body(installation: Installation) -> dict[str, Any]:
        return {
            "id": installation.id,
            "account": {"login": installation.account, "type": "Organization"},
            "repository_selection": "all",
            "access_tokens_url": f"https://api.github.com/app/installations/"
            f"{installation.id}/access_tokens",
        }

    def _installation_of(self, token: str) -> Installation | None:
        for installations in self.installations.values():
            for installation in installations.values():
                if token in installation.tokens:
                    return installation
        return None

    # --- request handling ---

    def handle(
        self, raw_path: str, headers: dict[str, str], origin: str
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path = parts.path.removeprefix("/api/v3")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        lowered = {key.lower(): value for key, value in headers.items()}
        conditional = "if-none-match" in lowered
        credential = lowered.get("authorization", "").split(" ", 1)[-1]
        self._wait_if_held(path)
        with self.lock:
            installation = self._installation_of(credential)
            limit = self._secondary_for(installation)
        admitted = limit is None or limit.enter()
        try:
            if self.latency:
                time.sleep(self.latency)
            with self.lock:
                budget = installation.budget if installation else self.budget
                if admitted:
                    status, extra, body = self._respond(path, query, lowered, origin, installation)
                else:
                    status, body = 403, SECONDARY_LIMIT_BODY
                    assert limit is not None
                    extra = {**budget.headers(), "retry-after": str(limit.retry_after)}
                self.requests.append(
                    Request(path, query, status, conditional, not admitted, credential=credential)
                )
                return status, extra, body
        finally:
            if admitted and limit is not None:
                limit.leave()

    def _secondary_for(self, installation: Installation | None) -> SecondaryLimit | None:
        """The secondary limit that counts this request: each installation has its own,
        shaped like the personal token's (``secondary``)."""
        template = self.secondary
        if installation is None or template is None:
            return template
        if installation.secondary is None:
            installation.secondary = SecondaryLimit(
                template.requests,
                window=template.window,
                concurrency=template.concurrency,
                retry_after=template.retry_after,
            )
        return installation.secondary

    @property
    def secondary_answers(self) -> int:
        """Secondary-limit answers, of the personal token and of every installation."""
        limits = [self.secondary] + [
            installation.secondary
            for installations in self.installations.values()
            for installation in installations.values()
        ]
        return sum(limit.answers for limit in limits if limit is not None)

    def _rate_headers(self) -> dict[str, str]:
        return self.budget.headers()

    def _respond(
        self,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        origin: str,
        installation: Installation | None,
    ) -> tuple[int, dict[str, str], Any]:
        auth = headers.get("authorization", "")
        presented = auth.split(" ", 1)[-1]
        budget = installation.budget if installation else self.budget
        if auth.lower().startswith("bearer "):
            app_id = self._app_of(auth)
            if app_id is None:
                return 401, {}, {"message": "A JSON web token could not be decoded"}
            status, app_body = self._app_route(path, app_id)
            return status, {}, app_body
        if installation is not None and installation.tokens[presented] <= self.clock():
            return 401, budget.headers(), {"message": "Bad credentials"}
        known = presented == self.token or installation is not None
        if auth and not known and presented not in self.other_tokens:
            return 401, budget.headers(), {"message": "Bad credentials"}
        if self.require_auth and not auth:
            return 401, budget.headers(), {"message": "Requires authentication"}
        if installation is not None and not self._covers(installation, path):
            # An installation token sees only the accounts the App is installed on.
            return 404, budget.headers(), {"message": "Not Found"}
        if path == "/rate_limit":
            return 200, budget.headers(), self._rate_limit_body(budget)
        for failure in self.failures:
            fragment, status, extra, body, times = failure
            if fragment in path and times > 0:
                failure[4] -= 1
                return status, {**budget.headers(), **extra}, body
        if budget.reset_in is not None:
            budget.reset, budget.reset_in = int(self.clock() + budget.reset_in), None
        if self.clock() >= budget.reset:
            budget.remaining, budget.reset = budget.limit, int(self.clock()) + 3600
        if budget.remaining <= 0:
            return 403, budget.headers(), PRIMARY_LIMIT_BODY
        moved = self._moved_location(path, query, origin)
        if moved is not None:
            body = {
                "message": "Moved Permanently",
                "url": moved,
                "documentation_url": "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api#follow-redirects",
            }
            return 301, {**budget.headers(), "location": moved}, body
        status, body, link = self._route(path, query, origin)
        response_headers = budget.headers()
        if status == 200 and self.etags_enabled:
            # GitHub's ETags are specific to the token: "It's currently expected for ETags
            # to be auth token specific" (GitHub support, eclipse-csi/otterdog#201; the
            # docs do not say so yet, github/docs#34689). Another token's ETag answers 200,
            # and so does every URL's first request with an hourly App token.
            digest = hashlib.sha1(presented.encode() + json.dumps(body, sort_keys=True).encode())
            etag = 'W/"' + digest.hexdigest() + '"'
            response_headers["etag"] = etag
            if headers.get("if-none-match") == etag:
                if link:
                    response_headers["link"] = link
                return 304, response_headers, None
        budget.remaining -= 1
        response_headers = {**response_headers, **budget.headers()}
        if link:
            response_headers["link"] = link
        return status, response_headers, body

    @staticmethod
    def _covers(installation: Installation, path: str) -> bool:
        segments = path.strip("/").split("/")
        if (
            installation.account == ""
            or len(segments) < 2
            or segments[0]
            not in (
                "repos",
                "orgs",
            )
        ):
            return True
        return segments[1].lower() == installation.account.lower()

    @staticmethod
    def _rate_limit_body(budget: Budget) -> dict[str, Any]:
        core = {
            "limit": budget.limit,
            "remaining": budget.remaining,
            "reset": budget.reset,
            "used": budget.limit - budget.remaining,
        }
        return {"resources": {"core": core}, "rate": core}

    def _route(self, path: str, query: dict[str, str], origin: str) -> tuple[int, Any, str | None]:
        segments = path.strip("/").split("/")
        if len(segments) >= 2 and segments[0] == "repositories" and segments[1].isdigit():
            # A repository by its id, where GitHub redirects a moved one's old URLs.
            by_id = next((r for r in self.repos.values() if r.id == int(segments[1])), None)
            if by_id is None:
                return 404, {"message": "Not Found"}, None
            segments = ["repos", *by_id.full_name.split("/"), *segments[2:]]
        if segments[-2:] == ["actions", "runners"] and segments[0] in ("orgs", "repos"):
            if not self.runners_readable:
                # What GitHub answers a token without admin rights on the scope.
                return 403, {"message": "Must have admin rights to Repository."}, None
            items = self.runners.get("/".join(segments[:-2]), [])
            per_page = min(int(query.get("per_page", 30)), 100)
            return self._paginate(
                items, "runners", path, query, origin, per_page, int(query.get("page", 1))
            )
        if len(segments) == 3 and segments[0] == "orgs" and segments[2] == "repos":
            owned = [
                r for name, r in sorted(self.repos.items()) if name.split("/")[0] == segments[1]
            ]
            known = any(old.split("/")[0] == segments[1].lower() for old in self.moved)
            if not owned and not known:  # an organisation that moved all away still exists
                return 404, {"message": "Not Found"}, None
            items = [self._repo_body(r) for r in owned]
            per_page = min(int(query.get("per_page", 30)), 100)
            return self._paginate(
                items, None, path, query, origin, per_page, int(query.get("page", 1))
            )
        if len(segments) < 3 or segments[0] != "repos":
            return 404, {"message": "Not Found"}, None
        repo = self.repos.get(f"{segments[1]}/{segments[2]}")
        if repo is None:
            return 404, {"message": "Not Found"}, None
        rest = segments[3:]
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        if not rest:
            return 200, self._repo_body(repo), None
        if rest == ["branches"]:
            items = [self._branch_body(repo, name) for name in sorted(repo.branches)]
            return self._paginate(items, None, path, query, origin, per_page, page)
        if rest == ["commits"]:
            branch = query.get("sha", repo.default_branch)
            if branch not in repo.branches and branch not in repo.commits:
                return 404, {"message": "No commit found for SHA: " + branch}, None
            return self._paginate(
                self._history(repo, branch), None, path, query, origin, per_page, page
            )
        if len(rest) == 2 and rest[0] == "compare" and "..." in rest[1]:
            base, head = rest[1].split("...", 1)
            return 200, self._compare(repo, base, head), None
        if rest == ["actions", "workflows"]:
            items = [repo.workflows[i] for i in sorted(repo.workflows)]
            return self._paginate(items, "workflows", path, query, origin, per_page, page)
        if rest == ["actions", "runs"]:
            return self._list_runs(repo, path, query, origin, per_page, page)
        if len(rest) >= 3 and rest[:2] == ["actions", "runs"]:
            run = repo.runs.get(int(rest[2]))
            if run is None:
                return 404, {"message": "Not Found"}, None
            if len(rest) == 3:
                return 200, self._live(repo, run, query), None
            if rest[3:] == ["jobs"]:
                jobs = repo.jobs[run["id"]]
                if query.get("filter", "latest") == "latest":
                    # The newest attempt's own jobs only: after "re-run failed jobs",
                    # the jobs not re-run are missing (r-universe-org/help#607).
                    jobs = [j for j in jobs if j["run_attempt"] == run["run_attempt"]]
                return self._paginate(jobs, "jobs", path, query, origin, per_page, page)
            if len(rest) == 5 and rest[3] == "attempts" and rest[4].isdigit():
                number = int(rest[4])
                if number == run["run_attempt"]:
                    return 200, run, None
                earlier = repo.attempts.get(run["id"], {}).get(number)
                return (200, earlier, None) if earlier else (404, {"message": "Not Found"}, None)
            if rest[3:] == ["timing"]:
                return 200, self._timing(repo, run), None
        return 404, {"message": "Not Found"}, None

    def _list_runs(
        self,
        repo: FakeRepo,
        path: str,
        query: dict[str, str],
        origin: str,
        per_page: int,
        page: int,
    ) -> tuple[int, Any, str | None]:
        runs = list(repo.runs.values())
        filtered = False
        if "created" in query:
            filtered = True
            match = created_matcher(query["created"])
            runs = [r for r in runs if match(parse_moment(r["created_at"]))]
        if "status" in query:
            filtered = True
            runs = [r for r in runs if query["status"] in (r["status"], r["conclusion"])]
        if "branch" in query:
            filtered = True
            runs = [r for r in runs if r["head_branch"] == query["branch"]]
        runs.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        total = len(runs)
        if filtered:
            if (page - 1) * per_page >= FILTERED_CAP:
                return 422, {"message": "Only the first 1000 results are available."}, None
            runs = runs[:FILTERED_CAP]
        status, body, link = self._paginate(
            runs, "workflow_runs", path, query, origin, per_page, page
        )
        body["workflow_runs"] = [self._live(repo, run, query) for run in body["workflow_runs"]]
        body["total_count"] = total
        return status, body, link

    def _live(self, repo: FakeRepo, run: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        """A run as GitHub serves it: with the open pull requests whose head is the run's,
        as they are now, so a listing changes when a pull request opens or closes though
        no run did; unless asked for ``exclude_pull_requests=true``."""
        if query.get("exclude_pull_requests") == "true":
            return {**run, "pull_requests": []}
        api = f"https://api.github.com/repos/{repo.full_name}"
        live = [
            {
                "url": f"{api}/pulls/{number}",
                "id": 1_000_000 + number,
                "number": number,
                "head": {"ref": head_ref, "sha": head_sha, "repo": {"url": api}},
                "base": {
                    "ref": base_ref,
                    "sha": repo.branches.get(base_ref, ""),
                    "repo": {"url": api},
                },
            }
            for number, (head_ref, head_sha, base_ref) in sorted(repo.pull_requests.items())
            if head_sha == run["head_sha"]
        ]
        return {**run, "pull_requests": live}

    def open_pull_request(self, repo: FakeRepo, head_branch: str, base: str = "main") -> int:
        """An open pull request from ``head_branch``'s current head into ``base``."""
        with self.lock:
            number = next(self.ids)
            repo.pull_requests[number] = (head_branch, repo.branches[head_branch], base)
            return number

    def close_pull_request(self, repo: FakeRepo, number: int) -> None:
        with self.lock:
            del repo.pull_requests[number]

    def _paginate(
        self,
        items: list[Any],
        key: str | None,
        path: str,
        query: dict[str, str],
        origin: str,
        per_page: int,
        page: int,
    ) -> tuple[int, Any, str | None]:
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        links = []
        if page < last:
            links.append(f'<{origin}{path}?{urlencode({**query, "page": page + 1})}>; rel="next"')
            links.append(f'<{origin}{path}?{urlencode({**query, "page": last})}>; rel="last"')
        body = {"total_count": len(items), key: chunk} if key else chunk
        return 200, body, ", ".join(links) or None

    def _repo_body(self, repo: FakeRepo) -> dict[str, Any]:
        owner, name = repo.full_name.split("/")
        return {
            "id": repo.id,
            "name": name,
            "full_name": repo.full_name,
            "owner": {"login": owner},
            "default_branch": repo.default_branch,
            "archived": repo.archived,
            "created_at": iso(repo.created_at),
            "pushed_at": iso(repo.pushed_at or repo.created_at),
            "html_url": f"https://github.com/{repo.full_name}",
        }

    def _branch_body(self, repo: FakeRepo, name: str) -> dict[str, Any]:
        body = copy.deepcopy(BRANCH_TEMPLATE)
        sha = repo.branches[name]
        body.update(
            name=name,
            commit={
                "sha": sha,
                "url": f"https://api.github.com/repos/{repo.full_name}/commits/{sha}",
            },
            protected=name in repo.protected,
        )
        body.pop("protection", None)
        body.pop("protection_url", None)
        return body

    def _history(self, repo: FakeRepo, branch: str) -> list[dict[str, Any]]:
        items = []
        sha: str | None = repo.branches.get(branch, branch)
        while sha:
            commit = repo.commits[sha]
            body = copy.deepcopy(COMMIT_TEMPLATE)
            body.update(
                sha=sha,
                node_id=f"C_{sha[:8]}",
                url=f"https://api.github.com/repos/{repo.full_name}/commits/{sha}",
                parents=[{"sha": commit.parent}] if commit.parent else [],
            )
            body["commit"]["message"] = commit.message
            body["commit"]["author"] = {
                "name": commit.author,
                "email": "octo@example.com",
                "date": iso(commit.date),
            }
            body["commit"]["committer"] = dict(body["commit"]["author"])
            # The GitHub account of the commit's e-mail, when it has one.
            login = "".join(commit.author.lower().split())
            body["author"] = (
                {**body["author"], "login": login, "html_url": f"https://github.com/{login}"}
                if not commit.author.startswith("Unlinked")
                else None
            )
            items.append(body)
            sha = commit.parent
        return items

    def _ancestors(self, repo: FakeRepo, sha: str) -> list[str]:
        chain: list[str] = []
        current: str | None = sha
        while current and current in repo.commits:
            chain.append(current)
            current = repo.commits[current].parent
        return chain

    def _compare(self, repo: FakeRepo, base: str, head: str) -> dict[str, Any]:
        """``GET .../compare/BASE...HEAD``: how ``head`` stands to ``base``."""
        head_chain, base_chain = self._ancestors(repo, head), self._ancestors(repo, base)
        if base == head:
            status, ahead, behind = "identical", 0, 0
        elif base in head_chain:
            status, ahead, behind = "ahead", head_chain.index(base), 0
        elif head in base_chain:
            status, ahead, behind = "behind", 0, base_chain.index(head)
        else:
            common = next((sha for sha in head_chain if sha in base_chain), None)
            ahead = head_chain.index(common) if common else len(head_chain)
            behind = base_chain.index(common) if common else len(base_chain)
            status = "diverged"
        return {
            "status": status,
            "ahead_by": ahead,
            "behind_by": behind,
            "total_commits": ahead,
            "commits": [],
            "files": [],
        }

    def _timing(self, repo: FakeRepo, run: dict[str, Any]) -> dict[str, Any]:
        jobs = [j for j in repo.jobs[run["id"]] if j["completed_at"]]
        duration = sum(
            (parse_moment(j["completed_at"]) - parse_moment(j["started_at"])).total_seconds()
            for j in jobs
        )
        return {"billable": {}, "run_duration_ms": int(duration * 1000)}
