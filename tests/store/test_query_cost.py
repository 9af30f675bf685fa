"""Every query we ship reads at most three times the rows it must (+100), on MariaDB.

A year of 1,000 repositories is 1 to 4 million runs. Here a smaller year of the same
shapes (``year_fill.py``: 60,000 runs in the scale mix, every run's jobs, steps and
attempts, the two busiest repositories larger) is enough for MariaDB's optimizer to choose
as it does at full size. What the engine read is counted, not estimated
(``query_cost.py``): the dashboard's queries, the docs', and every read of ``status``,
``status --check`` and a metrics collection. The figures at a year of 1,000 repositories
are ``benchmarks/query_cost.py``'s.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from query_cost import (
    CHECK_NEEDS,
    METRICS_NEEDS,
    STATUS_NEEDS,
    Cost,
    dashboard_queries,
    measure,
    measure_call,
    readme_queries,
)
from year_fill import Year, fill_year

from mariadb import mariadb_installed, start_mariadb
from poller.config.loader import parse
from poller.service import ci_metrics, exposition, status
from poller.store.schema import ensure_schema

QUERIES = dashboard_queries() + readme_queries()


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory):
    if not mariadb_installed():
        reason = "mariadbd is not installed (Debian: apt-get install mariadb-server)"
        if os.environ.get("SHARK_POLLER_REQUIRE_MARIADB"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = start_mariadb(tmp_path_factory.mktemp("cost"), buffer_pool="256M", counting=True)
    database = server.create_database("t_query_cost")
    with database.open() as db:
        ensure_schema(db)
    connection = server.root("t_query_cost")
    connection.autocommit(False)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    # The busiest two have 3,000 runs each, 5% of all: a repository so big beside the
    # LIMIT that MariaDB will not sort its runs, as at a million runs, and small enough a
    # share that walking every repository's runs instead reads far too many.
    filled = fill_year(
        connection, runs=60_000, repos=1000, now=now, steps_per_job=1, busiest_share=0.05
    )
    connection.autocommit(True)
    yield database, connection, filled
    connection.close()
    server.executor.stop()


def within(cost: Cost) -> str:
    return (
        f"read {cost.rows_read} rows where {cost.rows_needed} are needed "
        f"(budget {cost.budget}); {cost.temporary} more from temporary tables"
    )


@pytest.mark.mariadb
@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_each_shipped_query_reads_at_most_three_times_what_it_must(year, query):
    _, connection, filled = year
    params = {"repo": getattr(filled, query.repo) if query.repo else None}
    with connection.cursor() as cursor:
        cost = measure(cursor, query.sql, query.needed, params)
    assert cost.rows_returned > 0, query.name  # the fill gives every query an answer
    assert cost.within, within(cost)


def _config(filled: Year):
    """Every repository of the fill, followed as the organisations' members."""
    owners = sorted({name.split("/")[0] for name in filled.repos})
    document = {"database": {"url": "sqlite:///unused.db"}, "orgs": [{"name": o} for o in owners]}
    return parse(document, Path("config.toml"))


@pytest.mark.mariadb
def test_status_check_and_metrics_read_at_most_three_times_what_they_must(year):
    database, connection, filled = year
    config = _config(filled)
    collector = exposition.DataCollector(config, pool=None)  # type: ignore[arg-type]

    def collect() -> None:
        with exposition.reading():
            list(collector.repositories())
            list(ci_metrics.ci_families(per_repository=True))

    answers: dict[str, object] = {}

    def read_status() -> None:
        answers["status"] = status.stored_status(config, filled.now)[1]

    with database.open(), connection.cursor() as cursor:
        costs = {
            "status": measure_call(cursor, read_status, STATUS_NEEDS),
            "status --check": measure_call(
                cursor, lambda: status.health(config, filled.now), CHECK_NEEDS
            ),
            "a metrics collection": measure_call(cursor, collect, METRICS_NEEDS),
        }
    repos = answers["status"]
    assert isinstance(repos, list) and len(repos) == len(filled.repos)
    assert sum(repo.runs_unfinished for repo in repos) == 28
    for name, cost in costs.items():
        assert cost.within, f"{name}: {within(cost)}"
