"""The value checkers of ``config.toml``: what each accepts, what it makes of it, and the
reason it gives for what it refuses (``test_config`` covers the line that names the key)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from poller.config import checks


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (checks.positive_number, 2, 2.0),
        (checks.positive_number, 0.5, 0.5),
        (checks.non_negative_number, 0, 0.0),
        (checks.positive_int, 3, 3),
        (checks.non_negative_int, 0, 0),
        (checks.concurrency, 16, 16),
        (checks.http_url, "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3"),
        (checks.database_url, "sqlite:///shark.db", "sqlite:///shark.db"),
        (checks.database_url, "sqlite:////var/lib/x.db", "sqlite:////var/lib/x.db"),
        (
            checks.database_url,
            "mysql://poller@db:3306/ci?ssl_ca=/etc/os-release&ssl_verify_cert=true",
            "mysql://poller@db:3306/ci?ssl_ca=/etc/os-release&ssl_verify_cert=true",
        ),
        (checks.repo_name, "iree-org/iree", "iree-org/iree"),
        (checks.repo_name, "nod-ai/SHARK.Turbine", "nod-ai/SHARK.Turbine"),
        (checks.org_name, "iree-org", "iree-org"),
        (checks.since, date(2024, 1, 2), datetime(2024, 1, 2)),
        (checks.since, "2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5)),
        # An offset is turned into naive UTC, as every stored time is.
        (
            checks.since,
            datetime(2024, 1, 2, 3, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2024, 1, 2, 1, 0),
        ),
        (checks.branch_list, ["main", "release", "main"], ("main", "release")),
        (checks.pattern_list, ["*docker*"], ("*docker*",)),
        (
            checks.os_map,
            {"nodai-*": "linux", "azure-win-*": "WINDOWS"},
            (("nodai-*", "Linux"), ("azure-win-*", "Windows")),
        ),
    ],
)
def test_accepted_values_are_converted(check, value, expected):
    assert check(value) == expected


@pytest.mark.parametrize(
    ("check", "value", "reason"),
    [
        (checks.positive_number, True, "must be a number, not bool"),
        (checks.positive_number, 0, "must be greater than 0, got 0"),
        (checks.non_negative_number, -1, "must be 0 or more, got -1"),
        (checks.positive_int, 1.5, "must be a whole number, not 1.5"),
        (checks.non_negative_int, "3", "must be a whole number, not '3'"),
        (checks.concurrency, 17, "must be at most 16, got 17"),
        (checks.http_url, "api.github.com", "must be an http(s) URL"),
        (checks.readable_file, "/nonexistent/app.pem", "cannot read /nonexistent/app.pem"),
        (checks.database_url, "postgres://x/y", "must start with sqlite:/// or mysql://"),
        (checks.database_url, "sqlite://shark.db", "three or four slashes"),
        (checks.database_url, "sqlite:///dir/", "names no database file"),
        (checks.database_url, "sqlite:///x.db?mode=ro", "takes no parameters"),
        (checks.database_url, "mysql:///ci", "the host is missing"),
        (checks.database_url, "mysql://db:99999/ci", "the port must be a number"),
        (checks.database_url, "mysql://db:3306/", "the database name is missing"),
        (checks.database_url, "mysql://db/ci?charset=latin1", "unknown parameter 'charset'"),
        (checks.database_url, "mysql://db/ci?ssl_disabled=yes", "must be true or false"),
        (checks.database_url, "mysql://db/ci?ssl_ca=", "has no value"),
        (checks.database_url, "mysql://db/ci?ssl_ca=/no/ca.pem", "ssl_ca: no file /no/ca.pem"),
        (checks.repo_name, "iree", "must be 'owner/name'"),
        (checks.org_name, "iree-org/iree", "must be an organisation's login"),
        (checks.since, "last tuesday", "must be a date like 2024-01-01"),
        (checks.branch_list, "main", "must be a list of branch names"),
        (checks.pattern_list, [""], "must be a list of patterns"),
        (checks.os_map, {"x-*": "solaris"}, "the OS must be one of Linux, Windows, macOS"),
        (checks.os_map, ["x-*"], "must be a table of label globs"),
    ],
)
def test_refused_values_say_why(check, value, reason):
    with pytest.raises(ValueError, match=None) as refused:
        check(value)
    assert reason in str(refused.value)


def test_a_database_url_error_never_repeats_the_password():
    with pytest.raises(ValueError) as refused:
        checks.database_url("mysql://poller:s3cret@db:3306/")
    assert "s3cret" not in str(refused.value)
