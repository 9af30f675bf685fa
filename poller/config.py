"""Read and validate ``config.toml``; read secrets from the environment.

Every problem becomes one :class:`ConfigError` whose message names the file, the key and
what is wrong, so ``__main__`` can print it on one line and exit 2. Unknown keys are
errors: a typo such as ``max_run = 20`` must never be silently ignored.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from poller import checks
from poller.runner_os import LabelMap

DEFAULT_CONFIG_PATH = "config.toml"
CONFIG_ENV = "SHARK_POLLER_CONFIG"
TOKEN_ENV = "GITHUB_TOKEN"
DB_PASSWORD_ENV = "SHARK_POLLER_DB_PASSWORD"
# systemd's LoadCredential= puts these files under $CREDENTIALS_DIRECTORY.
TOKEN_CREDENTIAL = "github_token"
DB_PASSWORD_CREDENTIAL = "db_password"


class ConfigError(Exception):
    """A problem with the configuration, worded for the operator."""


@dataclass(frozen=True)
class GitHubConfig:
    api_url: str = "https://api.github.com"
    timeout_seconds: float = 30.0
    # GitHub's secondary limit is about 900 points a minute per token or installation,
    # 304s included: the governor keeps the whole process below this budget.
    requests_per_minute: float = 800.0
    # Requests in flight at once (and repositories synced at once). See the README.
    concurrency: int = 4
    # A fixed pause per request, on top of the budget; 0 lets the budget alone pace.
    seconds_between_requests: float = 0.0
    max_retries: int = 5
    retry_backoff_seconds: float = 2.0
    # The backfill stops when fewer requests than this are left before the reset; live
    # work goes on until a tenth of it is left, then waits for the reset.
    rate_limit_reserve: int = 500
    # How long a single answer that says "rate limited" may block before the pass gives
    # up on that repository; longer waits happen between requests, where SIGTERM works.
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
    # Runs become visible in listings a little after their created_at.
    overlap_minutes: float = 10.0
    # The daemon re-reads repository metadata, workflows and branches when a new run shows
    # a push, and at least this often.
    metadata_minutes: float = 60.0
    # How many runs the backfill may store per pass once the live work is done.
    backfill_runs_per_pass: int = 500
    # How often a pass that is not on a terminal logs a sync.progress event.
    progress_seconds: float = 10.0


@dataclass(frozen=True)
class MetricsConfig:
    # node_exporter's textfile collector: rewritten atomically after every pass.
    textfile: str | None = None
    # host:port of the HTTP endpoint (127.0.0.1 unless a host is given); off unless set.
    listen: str | None = None
    # The opt-in CI metrics of the mirrored data (runs, queue times), and whether they
    # carry a label per repository (more series; README, "Metrics").
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
    # Not from config.toml: the organisation's listing says when anything was last pushed
    # (None for [[repos]]), which tells the daemon when to re-read branches and workflows.
    pushed_at: str | None = None


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


Checker = Callable[[Any], Any]

SECTIONS: dict[str, dict[str, Checker]] = {
    "github": {
        "api_url": checks.http_url,
        "timeout_seconds": checks.positive_number,
        "requests_per_minute": checks.positive_number,
        "concurrency": checks.concurrency,
        "seconds_between_requests": checks.non_negative_number,
        "max_retries": checks.non_negative_int,
        "retry_backoff_seconds": checks.non_negative_number,
        "rate_limit_reserve": checks.non_negative_int,
        "max_rate_limit_wait_seconds": checks.non_negative_number,
        "secondary_rate_wait_seconds": checks.non_negative_number,
        "app_id": checks.positive_int,
        "installation_id": checks.positive_int,
        "private_key_file": checks.readable_file,
    },
    "database": {"url": checks.database_url},
    "schedule": {
        "interval_minutes": checks.positive_number,
        "jitter_seconds": checks.non_negative_number,
    },
    "sync": {
        "lookback_days": checks.non_negative_number,
        "rerun_horizon_days": checks.non_negative_number,
        "rerun_sweep_minutes": checks.non_negative_number,
        "rerun_sweep_old_days": checks.non_negative_number,
        "rerun_sweep_old_minutes": checks.non_negative_number,
        "metadata_minutes": checks.non_negative_number,
        "overlap_minutes": checks.non_negative_number,
        "backfill_runs_per_pass": checks.positive_int,
        "progress_seconds": checks.positive_number,
    },
    "metrics": {
        "textfile": checks.prom_file,
        "listen": checks.listen_address,
        "ci": checks.boolean,
        "ci_per_repository": checks.boolean,
        "stale_after_minutes": checks.positive_number,
    },
}
REPO_KEYS: dict[str, Checker] = {
    "name": checks.repo_name,
    "max_runs": checks.positive_int,
    "since": checks.since,
    "max_commits": checks.positive_int,
    "branches": checks.branch_list,
    "docker_workflows": checks.pattern_list,
    "runner_os": checks.os_map,
    "installation_id": checks.positive_int,
}
ORG_KEYS: dict[str, Checker] = {
    **{key: checker for key, checker in REPO_KEYS.items() if key != "name"},
    "name": checks.org_name,
    "include": checks.pattern_list,
    "exclude": checks.pattern_list,
}


def resolve_path(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """``--config``, else ``$SHARK_POLLER_CONFIG``, else ``./config.toml``."""
    return Path(cli_path or environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def load(path: Path) -> Config:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return parse(document, path)


def parse(document: Mapping[str, Any], path: Path) -> Config:
    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {where}: {problem}")

    known = [*SECTIONS, "repos", "orgs", "runner_os"]
    for key, value in document.items():
        if key not in known:
            raise fail(*_unknown(key, value, known))

    sections: dict[str, dict[str, Any]] = {}
    for section, checkers in SECTIONS.items():
        table = document.get(section, {})
        if not isinstance(table, dict):
            raise fail(f"[{section}]", "must be a table")
        sections[section] = _check_table(table, checkers, f"[{section}]", fail)

    try:
        label_os = checks.os_map(document.get("runner_os", {}))
    except ValueError as error:
        raise fail("[runner_os]", str(error)) from None
    repos = _parse_repos(document.get("repos", []), fail)
    orgs = _parse_orgs(document.get("orgs", []), fail)
    if not repos and not orgs:
        raise fail("[[repos]]", "at least one repository (or [[orgs]]) is required")

    installations = _installations(sections["github"], repos, orgs, fail)
    return Config(
        path=path,
        github=GitHubConfig(**sections["github"]),
        database=DatabaseConfig(**sections["database"]),
        schedule=ScheduleConfig(**sections["schedule"]),
        sync=SyncConfig(**sections["sync"]),
        metrics=MetricsConfig(**sections["metrics"]),
        repos=tuple(repos),
        orgs=tuple(orgs),
        runner_os=label_os,
        installations=installations,
    )


def _installations(
    github: Mapping[str, Any],
    repos: list[RepoConfig],
    orgs: list[OrgConfig],
    fail: Callable[[str, str], ConfigError],
) -> tuple[tuple[str, int], ...]:
    """Each owner's installation from [[orgs]] and [[repos]]; App auth checked whole. An
    App is installed once per account, so one owner has one installation."""
    if ("app_id" in github) != ("private_key_file" in github):
        missing = "private_key_file" if "app_id" in github else "app_id"
        raise fail(
            f"[github].{missing}", "GitHub App auth needs app_id and private_key_file together"
        )
    entries = [
        (repo.name.split("/")[0], repo.installation_id, f"[[repos]] {repo.name}") for repo in repos
    ]
    entries += [(org.name, org.template.installation_id, f"[[orgs]] {org.name}") for org in orgs]
    if "installation_id" in github:
        entries.append(("", github["installation_id"], "[github]"))
    found: dict[str, int] = {}
    for owner, installation, where in entries:
        if installation is None:
            continue
        if "app_id" not in github:
            raise fail(
                f"{where}.installation_id",
                "needs GitHub App auth: set [github] app_id and private_key_file",
            )
        if owner and found.setdefault(owner.lower(), installation) != installation:
            raise fail(
                f"{where}.installation_id",
                f"{owner} already has installation {found[owner.lower()]}: an App is "
                "installed once per account",
            )
    return tuple(sorted(found.items()))


def _unknown(key: str, value: Any, known: list[str]) -> tuple[str, str]:
    """Where and what: an unknown table is named as one (``[[repo]]``), with the known
    name it is closest to."""
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        where, kind = f"[[{key}]]", "unknown table"
    elif isinstance(value, dict):
        where, kind = f"[{key}]", "unknown table"
    else:
        where, kind = key, "unknown key"
    close = difflib.get_close_matches(key, known, n=1)
    if not close:
        return where, kind
    suggestion = f"[[{close[0]}]]" if close[0] in ("repos", "orgs") else f"[{close[0]}]"
    return where, f"{kind}; did you mean {suggestion}?"


def _named_tables(
    value: Any, key: str, checkers: Mapping[str, Checker], fail: Callable[[str, str], ConfigError]
) -> list[dict[str, Any]]:
    """The checked values of each ``[[key]]`` table, which must have a unique ``name``."""
    if isinstance(value, dict):
        raise fail(
            f"[{key}]", f"must be an array of tables: write [[{key}]] (two brackets) for each"
        )
    if not isinstance(value, list):
        raise fail(f"[[{key}]]", "must be an array of tables")
    tables = []
    for index, table in enumerate(value):
        where = f"[[{key}]] #{index + 1}"
        if not isinstance(table, dict):
            raise fail(where, "must be a table")
        if "name" not in table:
            raise fail(f"{where}.name", "missing")
        tables.append(_check_table(table, checkers, where, fail))
    names = [table["name"].lower() for table in tables]
    for name in names:
        if names.count(name) > 1:
            raise fail(f"[[{key}]].name", f"{name!r} is listed twice")
    return tables


def _parse_repos(value: Any, fail: Callable[[str, str], ConfigError]) -> list[RepoConfig]:
    return [RepoConfig(**values) for values in _named_tables(value, "repos", REPO_KEYS, fail)]


def _parse_orgs(value: Any, fail: Callable[[str, str], ConfigError]) -> list[OrgConfig]:
    orgs = []
    for values in _named_tables(value, "orgs", ORG_KEYS, fail):
        name = values.pop("name")
        patterns = {key: values.pop(key) for key in ("include", "exclude") if key in values}
        orgs.append(OrgConfig(name, **patterns, template=RepoConfig(name="", **values)))
    return orgs


def _check_table(
    table: Mapping[str, Any],
    checkers: Mapping[str, Checker],
    where: str,
    fail: Callable[[str, str], ConfigError],
) -> dict[str, Any]:
    values = {}
    for key, value in table.items():
        checker = checkers.get(key)
        if checker is None:
            raise fail(f"{where}.{key}", "unknown key")
        try:
            values[key] = checker(value)
        except ValueError as error:
            raise fail(f"{where}.{key}", str(error)) from None
    return values


def load_secrets(environ: Mapping[str, str] = os.environ) -> Secrets:
    """Secrets from the environment, else from systemd credentials."""
    return Secrets(
        github_token=_secret(environ, TOKEN_ENV, TOKEN_CREDENTIAL),
        db_password=_secret(environ, DB_PASSWORD_ENV, DB_PASSWORD_CREDENTIAL),
    )


def _secret(environ: Mapping[str, str], variable: str, credential: str) -> str | None:
    value = environ.get(variable, "").strip()
    if value:
        return value
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        try:
            value = (Path(directory) / credential).read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ConfigError(f"credential {credential}: cannot read: {error.strerror}") from None
        return value or None
    return None
