"""The settings ``config.toml`` becomes, as frozen dataclasses with their defaults, and
the secrets that never live in it. ``config`` reads and checks the file into these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from poller.rules.runner_os import LabelMap


@dataclass(frozen=True)
class GitHubConfig:
    api_url: str = "https://api.github.com"
    timeout_seconds: float = 30.0
    # GitHub's secondary limit is about 900 points a minute per token or installation,
    # 304s included: the governor keeps the whole process below this budget.
    requests_per_minute: float = 800.0
    # Requests in flight at once (and repositories synced at once). See docs/configuration.md.
    concurrency: int = 4
    # A fixed pause per request, on top of the budget; 0 lets the budget alone pace.
    seconds_between_requests: float = 0.0
    max_retries: int = 5
    retry_backoff_seconds: float = 2.0
    # The backfill stops when fewer requests than this are left before the reset; live
    # work goes on until a tenth of it is left, then waits for the reset.
    rate_limit_reserve: int = 500
    # How long a secondary-limit answer may block inside PyGithub's retry; longer waits,
    # and every wait for the primary limit's reset, happen between requests, on GitHub's
    # clock, where SIGTERM works.
    max_rate_limit_wait_seconds: float = 60.0
    # GitHub asks for at least a minute after a secondary limit without Retry-After.
    secondary_rate_wait_seconds: float = 60.0
    # GitHub App auth, instead of GITHUB_TOKEN: app_id and private_key_file together. The
    # installation of each account is [[orgs]]/[[repos]] installation_id, else this one,
    # else found from GitHub's list of the App's installations.
    app_id: int | None = None
    installation_id: int | None = None
    private_key_file: str | None = None

    @property
    def uses_app(self) -> bool:
        return self.app_id is not None


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///shark_dashboard.db"


@dataclass(frozen=True)
class ScheduleConfig:
    interval_minutes: float = 5.0
    jitter_seconds: float = 30.0


@dataclass(frozen=True)
class SyncConfig:
    # Runs this recent are re-read every pass (in fixed windows, free when unchanged), so a
    # re-run or late change of a recent run is seen by the next pass.
    lookback_days: float = 2.0
    # GitHub allows re-runs for 30 days: runs this recent are re-read, older ones never.
    rerun_horizon_days: float = 30.0
    # The part of the horizon older than lookback_days is re-read once per this many
    # minutes, a slice per pass; 0 re-reads all of it every pass.
    rerun_sweep_minutes: float = 60.0
    # Runs older than this are re-read once per rerun_sweep_old_minutes instead: few are
    # re-run, and under an App's hourly token every window re-read costs a point.
    rerun_sweep_old_days: float = 7.0
    rerun_sweep_old_minutes: float = 360.0
    # List the horizon's runs that are queued or in progress now, every pass, so a re-run of
    # an old run is seen while it runs: two conditional requests a repository a pass.
    active_reruns: bool = True
    # Runs become visible in listings a little after their created_at.
    overlap_minutes: float = 10.0
    # The daemon re-reads repository metadata, workflows and branches when a new run shows
    # a push, and at least this often.
    metadata_minutes: float = 60.0
    # How many runs the backfill may store per pass once the live work is done.
    backfill_runs_per_pass: int = 500
    # How often a pass that is not on a terminal logs a sync.progress event.
    progress_seconds: float = 10.0
    # Jobs (and their steps) created longer ago than this are deleted after each pass, a
    # small batch at a time; runs are kept. 0 keeps them forever (store/retention.py).
    jobs_retention_days: float = 0.0


@dataclass(frozen=True)
class MetricsConfig:
    # node_exporter's textfile collector: rewritten atomically after every pass.
    textfile: str | None = None
    # host:port of the HTTP endpoint (127.0.0.1 unless a host is given); off unless set.
    listen: str | None = None
    # The opt-in CI metrics of the mirrored data (runs, queue times), and whether they
    # carry a label per repository (more series; docs/monitoring.md).
    ci: bool = False
    ci_per_repository: bool = False
    # A repository staler than this fails `status --check`; None: three intervals.
    stale_after_minutes: float | None = None


@dataclass(frozen=True)
class RepoConfig:
    name: str
    max_runs: int | None = None
    since: datetime | None = None
    # Bounds the first download of a branch's history; later passes stop at the last head.
    max_commits: int = 1000
    branches: tuple[str, ...] = ()
    # Glob patterns for the workflows that build images, matched against name or path.
    docker_workflows: tuple[str, ...] = ()
    # Runner-label globs to an OS, for labels that name none (see runner_os); the
    # repository's entries are tried before the global [runner_os] table's.
    runner_os: tuple[tuple[str, str], ...] = ()
    # With GitHub App auth: the App's installation on the repository's owner.
    installation_id: int | None = None


@dataclass(frozen=True)
class OrgConfig:
    """Every repository of an organisation whose name matches ``include`` and not
    ``exclude`` (globs on the name without the owner), archived ones skipped, each with
    the bounds in ``template``."""

    name: str
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    template: RepoConfig = RepoConfig(name="")


@dataclass(frozen=True)
class Config:
    path: Path
    github: GitHubConfig = GitHubConfig()
    database: DatabaseConfig = DatabaseConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    sync: SyncConfig = SyncConfig()
    metrics: MetricsConfig = MetricsConfig()
    repos: tuple[RepoConfig, ...] = ()
    orgs: tuple[OrgConfig, ...] = ()
    # [runner_os]: label globs to an OS, for every repository.
    runner_os: tuple[tuple[str, str], ...] = ()
    # Each account's App installation given in [[orgs]]/[[repos]], by lower-case owner.
    installations: tuple[tuple[str, int], ...] = ()

    @property
    def stale_after_minutes(self) -> float:
        """How stale a repository may be before ``status --check`` fails it."""
        return self.metrics.stale_after_minutes or 3 * self.schedule.interval_minutes

    def installation_for(self, owner: str) -> int | None:
        """The App installation configured for ``owner``; None: find it from GitHub."""
        return dict(self.installations).get(owner.lower(), self.github.installation_id)

    def label_map(self, repo: RepoConfig) -> LabelMap:
        """The label map for ``repo``: its own entries first, then the global ones."""
        return LabelMap(repo.runner_os + self.runner_os)


@dataclass(frozen=True)
class Secrets:
    """Secrets never live in config.toml or on the command line, and never in a repr."""

    github_token: str | None = field(default=None, repr=False)
    db_password: str | None = field(default=None, repr=False)
