"""Helpers the tests share: config files, poller subprocesses, database access."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import peewee

from poller.store import models

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "ghp_TestToken0123456789abcdefABCDEF0123"


@dataclass
class Database:
    """Where a test's poller writes: a url, plus the password it reads from the env."""

    url: str
    password: str | None = None
    kind: str = "sqlite"

    @contextmanager
    def open(self) -> Iterator[peewee.Database]:
        db = models.open_database(self.url, self.password)
        try:
            with db.connection_context():
                yield db
        finally:
            db.close()


@dataclass
class PollerSetup:
    """A config file pointing the poller at a fake GitHub and a database."""

    tmp_path: Path
    api_url: str
    database: Database
    repos: list[dict[str, Any]] = field(default_factory=list)
    orgs: list[dict[str, Any]] = field(default_factory=list)
    sync: dict[str, Any] = field(default_factory=dict)
    github: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    runner_os: dict[str, str] = field(default_factory=dict)
    token: str | None = TOKEN

    @property
    def config_path(self) -> Path:
        return self.tmp_path / "config.toml"

    def write(self) -> Path:
        github = {
            "api_url": self.api_url,
            "seconds_between_requests": 0,
            # The governor's pacing has its own tests; here it would only slow them.
            "requests_per_minute": 1_000_000,
            "retry_backoff_seconds": 0.01,
            "timeout_seconds": 10,
            **self.github,
        }
        lines = [
            "[github]",
            *_toml_items(github),
            "",
            "[database]",
            *_toml_items({"url": self.database.url}),
            "",
        ]
        sections = (
            ("sync", self.sync),
            ("schedule", self.schedule),
            ("metrics", self.metrics),
            ("runner_os", self.runner_os),
        )
        for section, values in sections:
            if values:
                lines += [f"[{section}]", *_toml_items(values), ""]
        for repo in self.repos:
            lines += ["[[repos]]", *_toml_items(repo), ""]
        for org in self.orgs:
            lines += ["[[orgs]]", *_toml_items(org), ""]
        self.config_path.write_text("\n".join(lines))
        return self.config_path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in (
                "GITHUB_TOKEN",
                "SHARK_POLLER_DB_PASSWORD",
                "SHARK_POLLER_CONFIG",
                "SHARK_POLLER_LOG_LEVEL",
                "CACHE_DIRECTORY",
            )
        }
        # Installation tokens are kept in the cache directory: each test its own.
        env["XDG_CACHE_HOME"] = str(self.tmp_path / "cache")
        if self.token:
            env["GITHUB_TOKEN"] = self.token
        if self.database.password:
            env["SHARK_POLLER_DB_PASSWORD"] = self.database.password
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "poller", "--config", str(self.write()), *args]

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        """``python -m poller --once`` (or ``args``) as a real subprocess."""
        return subprocess.run(
            self.command(*(args or ("--once",))),
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp_path,
        )

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.tmp_path,
        )


def _toml_items(values: dict[str, Any]) -> list[str]:
    return [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in values.items()]


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum()
    return key if bare else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{ "
            + ", ".join(f"{_toml_value(k)} = {_toml_value(v)}" for k, v in value.items())
            + " }"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def scratch_sync(poller: PollerSetup, database: Database, tmp_path: Path) -> PollerSetup:
    """A from-scratch sync of the fake's current state into an empty database."""
    fresh = replace(poller, tmp_path=tmp_path, database=database)
    tmp_path.mkdir(exist_ok=True)
    result = fresh.run()
    assert result.returncode == 0, result.stderr
    return fresh


def table_rows(
    db: peewee.Database, table: str, *, exclude: Sequence[str] = ("Id",)
) -> list[tuple[Any, ...]]:
    """Every row of a table, sorted, without the columns named in ``exclude``."""
    columns = [c.name for c in db.get_columns(table) if c.name not in exclude]
    quote = "`" if isinstance(db, peewee.MySQLDatabase) else '"'
    select = ", ".join(f"{quote}{c}{quote}" for c in columns)
    rows = db.execute_sql(f"SELECT {select} FROM {quote}{table}{quote}").fetchall()
    return sorted((tuple(row) for row in rows), key=repr)


MIRRORED_TABLES = (
    "repos",
    "branches",
    "commits",
    "workflows",
    "workflowruns",
    "jobs",
    "steps",
    "workflowrun_attempts",
)


def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """All mirrored tables, Ids included: a second pass must not change a single value."""
    with database.open() as db:
        return {table: table_rows(db, table, exclude=()) for table in MIRRORED_TABLES}


def mirror(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """The mirrored tables without Ids: what two syncs of one GitHub state must agree on."""
    with database.open() as db:
        return {table: table_rows(db, table) for table in MIRRORED_TABLES}


def repo_done_events(stderr: str) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in stderr.splitlines() if '"sync.repo_done"' in line]


class LogTail:
    """Reads a poller subprocess's stderr in a thread, so a test can wait for events."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        import threading

        self.process = process
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def events(self, name: str) -> list[dict[str, Any]]:
        import json

        found = []
        for line in list(self.lines):
            if f'"{name}"' in line:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == name:
                    found.append(event)
        return found

    def wait_for(self, name: str, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found
            if self.process.poll() is not None:
                self.thread.join(timeout=5)
                break
            time.sleep(0.05)
        raise AssertionError(
            f"no {count}x {name} within {timeout}s; log tail:\n" + "\n".join(self.lines[-30:])
        )

    def text(self) -> str:
        return "\n".join(self.lines)


class FakeClock:
    """A clock the test holds (``poller.clock.Clock``): time moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.moment = start.replace(tzinfo=None)
        self.seconds = 1000.0

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, by: timedelta) -> None:
        self.moment += by
        self.seconds += by.total_seconds()


def github_app(
    fake: Any, tmp_path: Path, installations: dict[int, str], app_id: int = 4242
) -> dict[str, Any]:
    """Register a GitHub App with the fake, installed as ``installations`` (id -> account,
    "" for every account), and return the ``[github]`` settings that use its key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file = tmp_path / f"app-{app_id}.pem"
    key_file.write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fake.apps[app_id] = public.decode()
    for installation, account in installations.items():
        fake.install(app_id, installation, account)
    return {"app_id": app_id, "private_key_file": str(key_file)}


DOCS = REPO_ROOT / "docs"


def sql_blocks() -> dict[str, str]:
    """Every ```sql block of the docs, by its first line's title (``-- title``)."""
    blocks = {}
    for page in sorted(DOCS.glob("*.md")):
        for block in re.findall(r"```sql\n(.*?)```", page.read_text(), re.S):
            title = block.split("\n", 1)[0].removeprefix("-- ").strip()
            assert title not in blocks, f"two sql blocks titled {title!r}"
            blocks[title] = block.strip().rstrip(";")
    return blocks


def docs_sql(title: str) -> str:
    """The docs' ```sql block whose first line is ``-- {title}``: the docs are tested."""
    blocks = sql_blocks()
    if title not in blocks:
        raise AssertionError(f"docs/ has no sql block titled {title!r}")
    return blocks[title]


def small_repo(fake: Any, name: str = "octo/demo", runs: int = 3) -> tuple[Any, int]:
    """A repository with a workflow, a commit and ``runs`` runs created three days ago."""
    now = datetime.now(UTC).replace(microsecond=0)
    repo = fake.add_repo(name)
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    for i in range(runs):
        fake.add_run(repo, ci, created=now - timedelta(days=3, minutes=7 * i))
    return repo, ci
