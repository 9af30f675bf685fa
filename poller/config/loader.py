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
from pathlib import Path
from typing import Any

from poller.config import checks
from poller.config.settings import (
    Config,
    DatabaseConfig,
    GitHubConfig,
    MetricsConfig,
    OrgConfig,
    RepoConfig,
    ScheduleConfig,
    Secrets,
    SyncConfig,
)

DEFAULT_CONFIG_PATH = "config.toml"
CONFIG_ENV = "SHARK_POLLER_CONFIG"
TOKEN_ENV = "GITHUB_TOKEN"
DB_PASSWORD_ENV = "SHARK_POLLER_DB_PASSWORD"
# systemd's LoadCredential= puts these files under $CREDENTIALS_DIRECTORY.
TOKEN_CREDENTIAL = "github_token"
DB_PASSWORD_CREDENTIAL = "db_password"


class ConfigError(Exception):
    """A problem with the configuration, worded for the operator."""


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
        "active_reruns": checks.boolean,
        "metadata_minutes": checks.non_negative_number,
        "overlap_minutes": checks.non_negative_number,
        "backfill_runs_per_pass": checks.positive_int,
        "progress_seconds": checks.positive_number,
        "jobs_retention_days": checks.non_negative_number,
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
