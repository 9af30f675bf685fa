"""Rows read against rows needed, for every query we ship, at a year of 1,000 repositories.

It fills a throwaway MariaDB, our own process on 127.0.0.1, with a year of history in the
product's schema (``tests/year_fill.py``: the scale mix, five jobs a run, ``--steps`` steps
a job, re-runs with their attempts), then runs each query once and prints what the
storage engine read from our tables (``tests/query_cost.py``), what the query must touch,
the time, and each table's size on disk. ``tests/store/test_query_cost.py`` holds the same
queries to three times what they must read, over a smaller year.

With ``--upgrade`` it then measures an upgrade in place: the two big tables are put back
as the previous release left them (its indexes, one column fewer), and two pollers start
together (``ensure_schema``) while a reader runs the dashboard's queries without pause;
it prints how long the upgrade took, how each start ended, and the reader's slowest
query meanwhile.

    scripts/query-cost [--runs 1000000] [--repos 1000] [--steps 4] [--upgrade]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from query_cost import (  # noqa: E402
    Cost,
    dashboard_queries,
    measure,
    measure_call,
    poller_reads,
    readme_queries,
)
from year_fill import fill_year  # noqa: E402

from dashboard_sql import QUERIES  # noqa: E402
from mariadb import MariaDB, mariadb_installed, start_mariadb  # noqa: E402
from poller.store.schema import ensure_schema  # noqa: E402

DATABASE = "shark_query_cost"


def row(name: str, cost: Cost) -> str:
    verdict = "ok" if cost.within else "OVER"
    return (
        f"| {name} | {cost.rows_read:,} | {cost.rows_needed:,} | "
        f"{cost.rows_read / max(cost.rows_needed, 1):.2f} | {verdict} | "
        f"{cost.seconds * 1000:,.1f} |"
    )


def sizes(connection: object) -> list[str]:
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "SELECT table_name, table_rows, data_length, index_length "
            "FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE' "
            "ORDER BY data_length + index_length DESC",
            (DATABASE,),
        )
        lines = [
            "| table | rows (estimate) | data MB | indexes MB |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, rows, data, index in cursor.fetchall():
            lines.append(f"| {name} | {rows:,} | {data / 2**20:,.0f} | {index / 2**20:,.0f} |")
    return lines


# The indexes shark-poller's previous release made on the two big tables.
PREVIOUS_INDEXES = {
    "workflowruns": (
        ("repo", "createtime"),
        ("commithash",),
        ("branchname", "createtime"),
        ("workflowid",),
        ("createtime", "conclusion"),
        ("repo", "branchname", "createtime"),
        ("status",),
    ),
    "jobs": (("runid",), ("starttime",), ("repo", "os")),
}


def as_previous_release(connection: object) -> None:
    """The two big tables as the previous release left them: its indexes, and without
    a column this one has."""
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        for table, indexes in PREVIOUS_INDEXES.items():
            cursor.execute(
                "SELECT DISTINCT index_name FROM information_schema.statistics "
                "WHERE table_schema = %s AND table_name = %s AND non_unique = 1",
                (DATABASE, table),
            )
            drops = [f"DROP INDEX `{name}`" for (name,) in cursor.fetchall()]
            adds = [
                f"ADD INDEX `{table}_{'_'.join(columns)}` ({', '.join(columns)})"
                for columns in indexes
            ]
            cursor.execute(f"ALTER TABLE {table} {', '.join(drops + adds)}")
        cursor.execute("ALTER TABLE workflowruns DROP COLUMN deletetime")


def index_names(connection: object) -> set[str]:
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "SELECT DISTINCT index_name FROM information_schema.statistics "
            "WHERE table_schema = %s AND table_name IN ('workflowruns', 'jobs')",
            (DATABASE,),
        )
        return {name for (name,) in cursor.fetchall()}


def upgrade(server: MariaDB, database: object) -> list[str]:
    """Time ensure_schema (what every start runs) upgrading the previous release's
    tables, while a reader runs the dashboard's queries without pause and a second
    poller starts at the same moment."""
    connection = server.root(DATABASE)
    as_previous_release(connection)
    before_indexes = index_names(connection)
    reader = server.root(DATABASE)
    slowest, reads, stop = [0.0], [0], threading.Event()
    outcomes: list[str] = []

    def read() -> None:
        with reader.cursor() as cursor:
            while not stop.is_set():
                for query in QUERIES:
                    started = time.perf_counter()
                    cursor.execute(query.sql, {"repo": "org0/repo0000"})
                    cursor.fetchall()
                    slowest[0] = max(slowest[0], time.perf_counter() - started)
                    reads[0] += 1

    def start_a_poller() -> None:
        started = time.perf_counter()
        try:
            with database.open() as db:  # type: ignore[attr-defined]
                ensure_schema(db)
        except Exception as error:  # reported, not raised
            outcomes.append(f"failed: {error}")
            return
        outcomes.append(f"{time.perf_counter() - started:.1f} s")

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(2)
    before = slowest[0]
    pollers = [threading.Thread(target=start_a_poller) for _ in range(2)]
    started = time.perf_counter()
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join()
    took = time.perf_counter() - started
    time.sleep(1)
    stop.set()
    thread.join()
    after = index_names(connection)
    return [
        f"Upgrading the previous release's tables ({len(after - before_indexes)} indexes "
        f"added, {len(before_indexes - after)} dropped, a column added) took {took:.1f} s; "
        f"the two pollers started together: {' and '.join(sorted(outcomes))}.",
        f"A reader ran {reads[0]:,} of the dashboard's queries meanwhile; the slowest took "
        f"{slowest[0] * 1000:,.0f} ms (before the upgrade: {before * 1000:,.0f} ms).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=4, help="steps per job")
    parser.add_argument("--buffer-pool", default="1G")
    parser.add_argument("--upgrade", action="store_true")
    args = parser.parse_args()
    if not mariadb_installed():
        raise SystemExit("mariadbd is not installed (Debian: apt-get install mariadb-server)")
    with tempfile.TemporaryDirectory() as base:
        server = start_mariadb(Path(base), buffer_pool=args.buffer_pool, counting=True)
        try:
            database = server.create_database(DATABASE)
            with database.open() as db:
                ensure_schema(db)
            connection = server.root(DATABASE)
            connection.autocommit(False)
            now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
            started = time.perf_counter()
            year = fill_year(
                connection, runs=args.runs, repos=args.repos, now=now, steps_per_job=args.steps
            )
            connection.autocommit(True)
            print(
                f"{year.runs:,} runs in {args.repos:,} repositories over a year, filled in "
                f"{time.perf_counter() - started:,.0f} s; MariaDB's buffer pool {args.buffer_pool}."
            )
            print()
            print("| query | rows read | rows needed | ratio | within 3x + 100 | ms |")
            print("| --- | ---: | ---: | ---: | --- | ---: |")
            with connection.cursor() as cursor:
                for query in dashboard_queries() + readme_queries():
                    params = {"repo": getattr(year, query.repo) if query.repo else None}
                    print(row(query.name, measure(cursor, query.sql, query.needed, params)))
                with database.open():
                    for name, call, needed in poller_reads(year):
                        cost, _ = measure_call(cursor, call, needed)
                        print(row(f"{name} ({args.repos:,} repositories)", cost))
            print()
            print("\n".join(sizes(connection)))
            if args.upgrade:
                print()
                print("\n".join(upgrade(server, database)))
        finally:
            server.executor.stop()


if __name__ == "__main__":
    main()
