"""config.toml validation, secrets, and the one-line errors the command prints."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from poller.config import loader as config
from poller.config import settings
from support import REPO_ROOT

MINIMAL = '[[repos]]\nname = "iree-org/iree"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid_and_small_enough_for_no_token():
    shipped = config.load(REPO_ROOT / "config.toml")
    assert shipped.database.url == "sqlite:///shark_dashboard.db"
    assert shipped.github.api_url == "https://api.github.com"
    [repo] = shipped.repos
    assert repo.name == "iree-org/iree"
    assert repo.max_runs is not None and repo.max_runs <= 20


def test_the_documented_example_parses(tmp_path):
    loaded = config.load(
        write(
            tmp_path,
            """
[github]
api_url = "https://ghe.example.com/api/v3/"
[database]
url = "mysql://user@host:3306/shark_dashboard_db"
[schedule]
interval_minutes = 5
[[repos]]
name = "iree-org/iree"
max_runs = 1000
since = "2024-01-01"
[[repos]]
name = "nod-ai/SHARK"
since = 2024-02-01
branches = ["main", "release"]
""",
        )
    )
    assert loaded.github.api_url == "https://ghe.example.com/api/v3"
    assert loaded.schedule.interval_minutes == 5
    first, second = loaded.repos
    assert (first.max_runs, first.since) == (1000, datetime(2024, 1, 1))
    assert second.since == datetime(2024, 2, 1)
    assert second.branches == ("main", "release")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[github]\napi_ur = "x"\n' + MINIMAL, "[github].api_ur: unknown key"),
        ('[[repos]]\nname = "a/b"\nmax_run = 3\n', "[[repos]] #1.max_run: unknown key"),
        ('[databse]\nurl = "x"\n' + MINIMAL, "[databse]: unknown table; did you mean [database]?"),
        ('[[repo]]\nname = "a/b"\n', "[[repo]]: unknown table; did you mean [[repos]]?"),
        ('[runner_os]\n"gpu-*" = "BSD"\n' + MINIMAL, "[runner_os]: 'gpu-*' = 'BSD': the OS must"),
        ('[[repos]]\nname = "a/b"\nmax_runs = 0\n', "max_runs: must be greater than 0"),
        ('[[repos]]\nname = "a/b"\nmax_runs = "ten"\n', "max_runs: must be a whole number"),
        ('[[repos]]\nname = "iree"\n', "name: must be 'owner/name'"),
        ('[[repos]]\nname = "a/b"\nsince = "yesterday"\n', "since: must be a date"),
        ('[database]\nurl = "postgres://x/y"\n' + MINIMAL, "url: must start with sqlite:///"),
        ("[schedule]\ninterval_minutes = -1\n" + MINIMAL, "interval_minutes: must be greater"),
        ('[github]\napi_url = "api.github.com"\n' + MINIMAL, "api_url: must be an http(s) URL"),
        ("", "[[repos]]: at least one repository (or [[orgs]]) is required"),
        ("[[repos]]\nmax_runs = 3\n", "[[repos]] #1.name: missing"),
        (MINIMAL + MINIMAL, "is listed twice"),
        ("[[repos]\n", "not valid TOML"),
        (
            '[metrics]\ntextfile = "/var/m.txt"\n' + MINIMAL,
            "textfile: must be a path ending in .prom",
        ),
        ('[metrics]\nlisten = "127.0.0.1:99999"\n' + MINIMAL, 'listen: must be "host:port"'),
        ('[metrics]\nci = "yes"\n' + MINIMAL, "[metrics].ci: must be true or false"),
        ("[metrics]\nstale_after_minutes = 0\n" + MINIMAL, "stale_after_minutes: must be greater"),
    ],
)
def test_each_problem_is_one_error_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_each_account_has_one_app_installation_from_orgs_repos_or_github(tmp_path):
    key = tmp_path / "app.pem"
    key.write_text("a key")
    app = f'[github]\napp_id = 9\nprivate_key_file = "{key}"\n'
    loaded = config.load(
        write(
            tmp_path,
            app + 'installation_id = 5\n[[orgs]]\nname = "iree-org"\ninstallation_id = 11\n'
            '[[repos]]\nname = "Nod-AI/shark"\ninstallation_id = 22\n'
            '[[repos]]\nname = "nod-ai/turbine"\n',
        )
    )
    assert loaded.installation_for("IREE-org") == 11
    assert loaded.installation_for("nod-ai") == 22  # one owner, whichever repository says
    assert loaded.installation_for("elsewhere") == 5  # [github]'s, for every other account
    found = config.load(write(tmp_path, app + MINIMAL))
    assert found.github.uses_app and found.installation_for("a") is None  # found from GitHub


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[repos]]\nname = "a/b"\ninstallation_id = 3\n',
            "[[repos]] a/b.installation_id: needs GitHub App auth: set [github] app_id",
        ),
        (
            "[github]\ninstallation_id = 3\n" + MINIMAL,
            "[github].installation_id: needs GitHub App auth",
        ),
        (
            "[github]\napp_id = 3\n" + MINIMAL,
            "[github].private_key_file: GitHub App auth needs app_id and private_key_file",
        ),
        (
            '[github]\napp_id = 3\nprivate_key_file = "KEY"\n'
            '[[repos]]\nname = "a/b"\ninstallation_id = 3\n'
            '[[repos]]\nname = "a/c"\ninstallation_id = 4\n',
            "[[repos]] a/c.installation_id: a already has installation 3: an App is installed "
            "once per account",
        ),
    ],
)
def test_app_installation_mistakes_name_the_key(tmp_path, text, message):
    key = tmp_path / "app.pem"
    key.write_text("a key")
    path = write(tmp_path, text.replace("KEY", str(key)))
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.load(path)


def test_config_path_precedence(tmp_path):
    assert config.resolve_path("a.toml", {"SHARK_POLLER_CONFIG": "b.toml"}) == Path("a.toml")
    assert config.resolve_path(None, {"SHARK_POLLER_CONFIG": "b.toml"}) == Path("b.toml")
    assert config.resolve_path(None, {}) == Path("config.toml")


def test_secrets_come_from_the_environment_then_systemd_credentials(tmp_path):
    (tmp_path / "github_token").write_text("from-credential\n")
    (tmp_path / "db_password").write_text("db-from-credential\n")
    from_env = config.load_secrets(
        {"GITHUB_TOKEN": "from-env", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    )
    assert from_env.github_token == "from-env"
    assert from_env.db_password == "db-from-credential"
    assert "from-env" not in repr(from_env)
    assert config.load_secrets({}).github_token is None


def test_bad_config_exits_2_with_one_line_and_no_traceback(tmp_path):
    path = write(tmp_path, '[[repos]]\nname = "a/b"\nmax_run = 3\n')
    result = subprocess.run(
        [sys.executable, "-m", "poller", "--once", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"shark-poller: error: {path}: [[repos]] #1.max_run: unknown key"
    ]


def test_missing_config_file_is_named(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "poller", "--once"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SHARK_POLLER_CONFIG": "nope.toml"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "shark-poller: error: nope.toml: file not found"


def test_metrics_listen_on_localhost_unless_a_host_is_given_and_staleness_follows_the_interval(
    tmp_path,
):
    bare = config.load(write(tmp_path, "[metrics]\nlisten = 9464\n" + MINIMAL))
    assert bare.metrics.listen == "127.0.0.1:9464"
    assert bare.stale_after_minutes == 15  # three 5-minute intervals
    wide = config.load(
        write(
            tmp_path,
            '[metrics]\nlisten = "0.0.0.0:9100"\nstale_after_minutes = 45\n'
            "[schedule]\ninterval_minutes = 2\n" + MINIMAL,
        )
    )
    assert (wide.metrics.listen, wide.stale_after_minutes) == ("0.0.0.0:9100", 45)
    assert config.load(write(tmp_path, MINIMAL)).metrics == settings.MetricsConfig()
