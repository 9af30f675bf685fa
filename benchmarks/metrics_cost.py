"""What one metrics collection costs as the history grows: the same 1,000 repositories
and 60 unfinished runs, under 1M and then 4M stored runs (docs/monitoring.md).

It fills a SQLite database, or with ``--mariadb`` a throwaway mariadbd, with runs and
times a collection of everything the endpoint serves (the CI metrics on), a few times
each; on MariaDB it also counts the rows the engine read (``Handler_read%``). A
collection that read the history would take four times as long at 4M.

    scripts/metrics-cost            # SQLite
    scripts/metrics-cost --mariadb  # MariaDB, with mariadbd installed
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import peewee
from prometheus_client import generate_latest

from poller.config import loader as config_module
from poller.github.pool import GitHubPool
from poller.service import logs
from poller.service.exposition import Exporter
from poller.store import models
from poller.store.models import SyncStatus, Workflow, WorkflowRun
from poller.store.schema import ensure_schema

REPOS = 1_000  # --repos
UNFINISHED = 60
T0 = datetime(2025, 12, 1)


def fill(db: peewee.Database, total: int, already: int) -> None:
    """Runs up to ``total``: a year of history over REPOS repositories, 5 workflows each,
    completed but for the newest UNFINISHED."""
    rng = random.Random(already)
    batch: list[dict[str, Any]] = []
    for gitid in range(already + 1, total + 1):
        repo = f"org/repo{gitid % REPOS:04d}"
        created = T0 + timedelta(seconds=gitid * (365 * 86400 // 4_000_000))
        batch.append(
            {
                "gitid": gitid,
                "repo": repo,
                "workflowname": f"wf{gitid % 5}",
                "createtime": created,
                "status": "completed",
                "conclusion": "success" if rng.random() > 0.1 else "failure",
                "runtime": 300.0,
                "queuetime": 20,
                "url": "",
            }
        )
        if len(batch) == 5_000:
            with db.atomic():
                WorkflowRun.insert_many(batch).execute()
            batch = []
    if batch:
        with db.atomic():
            WorkflowRun.insert_many(batch).execute()
    WorkflowRun.update(status="completed").where(WorkflowRun.status == "queued").execute()
    newest = WorkflowRun.gitid > total - UNFINISHED
    WorkflowRun.update(status="queued", conclusion=None).where(newest).execute()


def prepare(db: peewee.Database) -> None:
    now = datetime.now().replace(microsecond=0)
    with db.atomic():
        SyncStatus.insert_many(
            [
                {"repo": f"org/repo{i:04d}", "lastpass": now, "lastsuccess": now}
                for i in range(REPOS)
            ]
        ).execute()
        Workflow.insert_many(
            [
                {"gitid": i * 10 + w, "repo": f"org/repo{i:04d}", "name": f"wf{w}", "url": ""}
                for i in range(REPOS)
                for w in range(5)
            ]
        ).execute()


def rows_read(db: peewee.Database) -> int | None:
    if not isinstance(db, peewee.MySQLDatabase):
        return None
    rows = db.execute_sql("SHOW SESSION STATUS LIKE %s", ("Handler_read%",)).fetchall()
    return sum(int(value) for _, value in rows)


def measure(exporter: Exporter, db: peewee.Database) -> tuple[float, int | None, int, int]:
    seconds = []
    read = None
    size = series = 0
    for _ in range(5):
        before = rows_read(db)
        started = time.perf_counter()
        text = generate_latest(exporter.registry)
        seconds.append(time.perf_counter() - started)
        size = len(text)
        series = sum(1 for line in text.decode().splitlines() if line and line[0] != "#")
        after = rows_read(db)
        if before is not None and after is not None:
            read = after - before
    return statistics.median(seconds), read, size, series


def main() -> None:
    global REPOS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mariadb", action="store_true")
    parser.add_argument("--sizes", default="1000000,4000000")
    parser.add_argument("--repos", type=int, default=REPOS)
    args = parser.parse_args()
    REPOS = args.repos
    logs.configure("error")
    with tempfile.TemporaryDirectory() as tmp:
        server, password = None, None
        if args.mariadb:
            from mariadb import start_mariadb

            server = start_mariadb(Path(tmp), buffer_pool="1G")
            database = server.create_database("metrics_cost")
            url, password = database.url, database.password
        else:
            url = f"sqlite:///{tmp}/metrics.db"
        config_path = Path(tmp) / "config.toml"
        repos = "".join(f'[[repos]]\nname = "org/repo{i:04d}"\n' for i in range(REPOS))
        config_path.write_text(f'[database]\nurl = "{url}"\n[metrics]\nci = true\n{repos}')
        config = config_module.load(config_path)
        db = models.open_database(url, password)
        db.connect()
        ensure_schema(db)
        prepare(db)
        exporter = Exporter(config, GitHubPool(config, None))
        print(f"{REPOS} repositories, 5 workflows each, {UNFINISHED} runs not completed")
        print("runs stored | collection (median of 5) | rows read | series | bytes")
        stored = 0
        for size in (int(s) for s in args.sizes.split(",")):
            fill(db, size, stored)
            stored = size
            seconds, read, length, series = measure(exporter, db)
            shown = "n/a (SQLite)" if read is None else f"{read:,}"
            print(f"{size:,} | {seconds * 1000:.1f} ms | {shown} | {series:,} | {length:,}")
        db.close()
        if server is not None:
            server.executor.stop()


if __name__ == "__main__":
    main()
