"""Value checkers for ``config.toml``: each returns the converted value or raises
``ValueError`` with the reason, which ``config`` turns into one line naming the key."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from poller.rules import runner_os

# What a mysql:// url may add to pymysql's connect(); TLS is what Azure needs.
MYSQL_URL_PARAMETERS = (
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "ssl_verify_cert",
    "ssl_verify_identity",
    "ssl_disabled",
)
MYSQL_FILE_PARAMETERS = ("ssl_ca", "ssl_cert", "ssl_key")
MYSQL_BOOLEAN_PARAMETERS = ("ssl_verify_cert", "ssl_verify_identity", "ssl_disabled")

ORG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")
REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")


def positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value}")
    return float(value)


def non_negative_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return float(value)


def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, not {value!r}")
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value}")
    return value


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, not {value!r}")
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


def concurrency(value: Any) -> int:
    number = positive_int(value)
    if number > 16:
        raise ValueError(f"must be at most 16, got {number}: GitHub asks for few at once")
    return number


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


def prom_file(value: Any) -> str:
    if not isinstance(value, str) or not value.endswith(".prom"):
        raise ValueError(
            f"must be a path ending in .prom (node_exporter reads only those), got {value!r}"
        )
    return value


def listen_address(value: Any) -> str:
    """``host:port`` or ``port`` (then on 127.0.0.1): where the metrics endpoint listens."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        raise ValueError(f'must be "host:port", not {value!r}')
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'must be "host:port" with a port from 1 to 65535, got {value!r}')
    return f"{host.strip('[]') or '127.0.0.1'}:{port}"


def http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def readable_file(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a file path")
    if not os.access(value, os.R_OK):
        raise ValueError(f"cannot read {value}")
    return value


def database_url(value: Any) -> str:
    """The whole url is checked here, so a typo is a config error (exit 2), never a
    traceback from the driver. Messages never repeat the url: it may hold a password."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    parts = urlsplit(value)
    if parts.scheme == "sqlite":
        check_sqlite_url(value, parts)
    elif parts.scheme == "mysql":
        check_mysql_url(parts)
    else:
        raise ValueError(f"must start with sqlite:/// or mysql://, got scheme {parts.scheme!r}")
    return value


def check_sqlite_url(value: str, parts: SplitResult) -> None:
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


def check_mysql_url(parts: SplitResult) -> None:
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
        if key in MYSQL_FILE_PARAMETERS and not Path(setting).is_file():
            raise ValueError(f"parameter {key}: no file {setting} (a path on this machine)")


def repo_name(value: Any) -> str:
    if not isinstance(value, str) or not REPO_NAME.match(value):
        raise ValueError(f"must be 'owner/name', got {value!r}")
    return value


def org_name(value: Any) -> str:
    if not isinstance(value, str) or not ORG_NAME.match(value):
        raise ValueError(f"must be an organisation's login, like 'iree-org', got {value!r}")
    return value


def since(value: Any) -> datetime:
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


def branch_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(b, str) and b for b in value):
        raise ValueError("must be a list of branch names")
    return tuple(dict.fromkeys(value))


def pattern_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ValueError('must be a list of patterns, like ["*docker*", "publish.yml"]')
    return tuple(dict.fromkeys(value))


def os_map(value: Any) -> tuple[tuple[str, str], ...]:
    """Runner-label globs to GitHub's OS names: ``{ "nodai-amdgpu-*" = "Linux" }``."""
    example = '{ "nodai-amdgpu-*" = "Linux", "azure-windows-*" = "Windows" }'
    if not isinstance(value, dict):
        raise ValueError(f"must be a table of label globs to an OS, like {example}")
    rules = []
    for glob, name in value.items():
        os_name = runner_os.canonical_os(name) if isinstance(name, str) else None
        if os_name is None:
            raise ValueError(
                f"{glob!r} = {name!r}: the OS must be one of {', '.join(runner_os.OS_NAMES)}"
            )
        rules.append((glob, os_name))
    return tuple(rules)


# What each checker accepts, as the "type" column of docs/configuration.md says it
# (tests/config/test_reference.py holds the two together).
TYPES: dict[Callable[[Any], Any], str] = {
    positive_number: "number > 0",
    non_negative_number: "number ≥ 0",
    positive_int: "integer > 0",
    non_negative_int: "integer ≥ 0",
    concurrency: "integer, 1 to 16",
    boolean: "boolean",
    prom_file: "path to a .prom file",
    listen_address: "host:port, or a port",
    http_url: "http(s) URL",
    readable_file: "path to a readable file",
    database_url: "database URL",
    repo_name: "owner/name",
    org_name: "organisation login",
    since: "date",
    branch_list: "list of branch names",
    pattern_list: "list of globs",
    os_map: "table of glob = OS",
}
