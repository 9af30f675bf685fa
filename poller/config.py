"""Read and validate ``config.toml``; read secrets from the environment.

Every problem becomes one :class:`ConfigError` whose message names the file, the key and
what is wrong, so ``__main__`` can print it on one line and exit 2. Unknown keys are
errors: a typo such as ``max_run = 20`` must never be silently ignored.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

DEFAULT_CONFIG_PATH = "config.toml"
CONFIG_ENV = "SHARK_POLLER_CONFIG"
TOKEN_ENV = "GITHUB_TOKEN"
DB_PASSWORD_ENV = "SHARK_POLLER_DB_PASSWORD"
# systemd's LoadCredential= puts these files under $CREDENTIALS_DIRECTORY.
TOKEN_CREDENTIAL = "github_token"
DB_PASSWORD_CREDENTIAL = "db_password"

# What a mysql:// url may add to pymysql's connect(); TLS is what Azure needs.
MYSQL_URL_PARAMETERS = (
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "ssl_verify_cert",
    "ssl_verify_identity",
    "ssl_disabled",
)
MYSQL_BOOLEAN_PARAMETERS = ("ssl_verify_cert", "ssl_verify_identity", "ssl_disabled")

ORG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")
REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")


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
    # GitHub App installation auth, instead of GITHUB_TOKEN: all three together.
    app_id: int | None = None
    installation_id: int | None = None
    private_key_file: str | None = None


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
class RepoConfig:
    name: str
    max_runs: int | None = None
    since: datetime | None = None
    # Bounds the first download of a branch's history; later passes stop at the last head.
    max_commits: int = 1000
    branches: tuple[str, ...] = ()
    # Glob patterns for the workflows that build images, matched against name or path.
    docker_workflows: tuple[str, ...] = ()


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
    repos: tuple[RepoConfig, ...] = ()
    orgs: tuple[OrgConfig, ...] = ()


@dataclass(frozen=True)
class Secrets:
    """Secrets never live in config.toml or on the command line, and never in a repr."""

    github_token: str | None = field(default=None, repr=False)
    db_password: str | None = field(default=None, repr=False)


# --- value checkers: each returns the converted value or raises ValueError(reason) ---


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value}")
    return float(value)


def _non_negative_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return float(value)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, not {value!r}")
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value}")
    return value


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, not {value!r}")
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


def _concurrency(value: Any) -> int:
    number = _positive_int(value)
    if number > 16:
        raise ValueError(f"must be at most 16, got {number}: GitHub asks for few at once")
    return number


def _http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _readable_file(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a file path")
    if not os.access(value, os.R_OK):
        raise ValueError(f"cannot read {value}")
    return value


def _database_url(value: Any) -> str:
    """The whole url is checked here, so a typo is a config error (exit 2), never a
    traceback from the driver. Messages never repeat the url: it may hold a password."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    parts = urlsplit(value)
    if parts.scheme == "sqlite":
        _check_sqlite_url(value, parts)
    elif parts.scheme == "mysql":
        _check_mysql_url(parts)
    else:
        raise ValueError(f"must start with sqlite:/// or mysql://, got scheme {parts.scheme!r}")
    return value


def _check_sqlite_url(value: str, parts: SplitResult) -> None:
    if not value.startswith("sqlite:///") or parts.netloc:
        raise ValueError(
            f"{value!r} is not a sqlite url: write sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db (three or four slashes)"
        )
    path = parts.path[1:]
    if not path or path.endswith("/"):
        raise ValueError(f"{value!r} names no database file")
    if parts.query:
        raise ValueError("a sqlite url takes no parameters")


def _check_mysql_url(parts: SplitResult) -> None:
    example = "mysql://user@host:3306/database"
    if not parts.hostname:
        raise ValueError(f"the host is missing: write {example}")
    try:
        parts.port  # noqa: B018  (urllib checks the port when it is read)
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    database = parts.path[1:]
    if not database:
        raise ValueError(f"the database name is missing: write {example}")
    if "/" in database:
        raise ValueError(f"the database name cannot contain '/': write {example}")
    for key, setting in parse_qsl(parts.query, keep_blank_values=True):
        if key not in MYSQL_URL_PARAMETERS:
            raise ValueError(
                f"unknown parameter {key!r}; accepted: {', '.join(MYSQL_URL_PARAMETERS)}"
            )
        if key in MYSQL_BOOLEAN_PARAMETERS and setting.lower() not in ("true", "false"):
            raise ValueError(f"parameter {key} must be true or false")
        if not setting:
            raise ValueError(f"parameter {key} has no value")


def _repo_name(value: Any) -> str:
    if not isinstance(value, str) or not REPO_NAME.match(value):
        raise ValueError(f"must be 'owner/name', got {value!r}")
    return value


def _org_name(value: Any) -> str:
    if not isinstance(value, str) or not ORG_NAME.match(value):
        raise ValueError(f"must be an organisation's login, like 'iree-org', got {value!r}")
    return value


def _since(value: Any) -> datetime:
    # TOML has native dates ("since = 2024-01-01"); accept those and quoted ISO strings.
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a date like 2024-01-01, got {value!r}") from None
    else:
        raise ValueError(f"must be a date like 2024-01-01, got {value!r}")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _branch_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(b, str) and b for b in value):
        raise ValueError("must be a list of branch names")
    return tuple(dict.fromkeys(value))


def _pattern_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ValueError('must be a list of patterns, like ["*docker*", "publish.yml"]')
    return tuple(dict.fromkeys(value))


Checker = Callable[[Any], Any]

SECTIONS: dict[str, dict[str, Checker]] = {
    "github": {
        "api_url": _http_url,
        "timeout_seconds": _positive_number,
        "requests_per_minute": _positive_number,
        "concurrency": _concurrency,
        "seconds_between_requests": _non_negative_number,
        "max_retries": _non_negative_int,
        "retry_backoff_seconds": _non_negative_number,
        "rate_limit_reserve": _non_negative_int,
        "max_rate_limit_wait_seconds": _non_negative_number,
        "secondary_rate_wait_seconds": _non_negative_number,
        "app_id": _positive_int,
        "installation_id": _positive_int,
        "private_key_file": _readable_file,
    },
    "database": {"url": _database_url},
    "schedule": {"interval_minutes": _positive_number, "jitter_seconds": _non_negative_number},
    "sync": {
        "lookback_days": _non_negative_number,
        "rerun_horizon_days": _non_negative_number,
        "rerun_sweep_minutes": _non_negative_number,
        "metadata_minutes": _non_negative_number,
        "overlap_minutes": _non_negative_number,
        "backfill_runs_per_pass": _positive_int,
        "progress_seconds": _positive_number,
    },
}
REPO_KEYS: dict[str, Checker] = {
    "name": _repo_name,
    "max_runs": _positive_int,
    "since": _since,
    "max_commits": _positive_int,
    "branches": _branch_list,
    "docker_workflows": _pattern_list,
}
ORG_KEYS: dict[str, Checker] = {
    **{key: checker for key, checker in REPO_KEYS.items() if key != "name"},
    "name": _org_name,
    "include": _pattern_list,
    "exclude": _pattern_list,
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

    for key, value in document.items():
        if key not in SECTIONS and key not in ("repos", "orgs"):
            raise fail(f"[{key}]" if isinstance(value, dict) else key, "unknown key")

    sections: dict[str, dict[str, Any]] = {}
    for section, checkers in SECTIONS.items():
        table = document.get(section, {})
        if not isinstance(table, dict):
            raise fail(f"[{section}]", "must be a table")
        sections[section] = _check_table(table, checkers, f"[{section}]", fail)

    repos = _parse_repos(document.get("repos", []), fail)
    orgs = _parse_orgs(document.get("orgs", []), fail)
    if not repos and not orgs:
        raise fail("[[repos]]", "at least one repository (or [[orgs]]) is required")

    app_keys = [
        key
        for key in ("app_id", "installation_id", "private_key_file")
        if key in sections["github"]
    ]
    if app_keys and len(app_keys) != 3:
        missing = sorted({"app_id", "installation_id", "private_key_file"} - set(app_keys))
        raise fail(
            f"[github].{missing[0]}",
            "GitHub App auth needs app_id, installation_id and private_key_file together",
        )
    return Config(
        path=path,
        github=GitHubConfig(**sections["github"]),
        database=DatabaseConfig(**sections["database"]),
        schedule=ScheduleConfig(**sections["schedule"]),
        sync=SyncConfig(**sections["sync"]),
        repos=tuple(repos),
        orgs=tuple(orgs),
    )


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
