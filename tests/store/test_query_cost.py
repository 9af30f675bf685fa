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

import pytest
from query_cost import (
    Cost,
    dashboard_queries,
    measure,
    measure_call,
    poller_reads,
    readme_queries,
)
from year_fill import fill_year

from mariadb import mariadb_installed, start_mariadb
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


@pytest.mark.mariadb
def test_status_check_and_metrics_read_at_most_three_times_what_they_must(year):
    database, connection, filled = year
    costs, answers = {}, {}
    with database.open(), connection.cursor() as cursor:
        for name, call, needed in poller_reads(filled):
            costs[name], answers[name] = measure_call(cursor, call, needed)
    repos = answers["status"]
    assert isinstance(repos, list) and len(repos) == len(filled.repos)
    assert sum(repo.runs_unfinished for repo in repos) == 28
    families = answers["a metrics collection"]
    assert "cicd_pipeline_run_active" in {family.name for family in families}
    for name, cost in costs.items():
        assert cost.within, f"{name}: {within(cost)}"
