"""The dashboard's query shapes use an index on MariaDB, not a full scan of the runs.

A year of 1,000 repositories is 4 million runs; the landing page's three queries filter
on ``createtime`` alone, which only an index leading with it serves. Here a smaller year
(40,000 runs) is enough for the optimizer to choose as it would at full size; the
timings at 4 million are in ``benchmarks/dashboard_queries.py`` and docs/benchmarks.md.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from dashboard_sql import QUERIES, explain, fill
from mariadb import MariaDB
from poller.store.schema import ensure_schema


@pytest.fixture(scope="module")
def year(mariadb_server: MariaDB):
    database = mariadb_server.create_database("t_dashboard_indexes")
    with database.open() as db:
        ensure_schema(db)
    connection = mariadb_server.root("t_dashboard_indexes")
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    busiest = fill(connection, runs=40_000, repos=1000, now=now)
    yield connection, busiest
    connection.close()


@pytest.mark.mariadb
@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_each_dashboard_query_uses_its_index(year, query):
    connection, busiest = year
    with connection.cursor() as cursor:
        plan = {row["table"]: row for row in explain(cursor, query, busiest)}
    step = plan[query.table]
    assert step["key"] == query.index, plan
    assert step["type"] != "ALL", plan
    if query.join:
        # Runs first, as the newest 50 want: each run's commit is one lookup on the
        # whole (repo, hash) key (the _ci hash compares in commits.hash's _bin), not a
        # search among all of the repository's commits.
        forced = dataclasses.replace(
            query, sql=query.sql.replace("SELECT", "SELECT STRAIGHT_JOIN", 1)
        )
        with connection.cursor() as cursor:
            runs_first = {row["table"]: row for row in explain(cursor, forced, busiest)}
        assert runs_first["c"]["type"] == "eq_ref", runs_first
    if query.landing and query.name != "newest run":
        # Counting needs no row: the index holds createtime and conclusion.
        assert "Using index" in (step["extra"] or ""), plan
