"""What shark-poller costs, beside the legacy algorithm: requests, time, rows/s, memory.

Runs real ``python -m poller --once`` processes against the project's fake GitHub (with a
configurable latency per request) and a throwaway MariaDB, then the legacy algorithm
(benchmarks/legacy.py) against an identical repository. Prints a Markdown table.

    scripts/benchmark [--runs 5000] [--jobs-per-run 3] [--latency-ms 2] [--new-runs 50]

Rate-limited requests are those GitHub would count: everything except 304 answers to
conditional requests and /rate_limit, as the fake counts them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_github import FakeGitHub, FakeRepo  # noqa: E402
from mariadb import MariaDB, mariadb_installed, start_mariadb  # noqa: E402
from poller.rules import transform  # noqa: E402
from poller.service import logs  # noqa: E402
from poller.store import rows as store  # noqa: E402
from poller.store.models import WorkflowRun  # noqa: E402
from poller.store.schema import ensure_schema  # noqa: E402
from support import TOKEN, Database, PollerSetup  # noqa: E402

LABELS = [["ubuntu-22.04"], ["windows-2022"], ["macos-14"], ["self-hosted", "Linux", "X64"]]


@dataclass
class Measured:
    requests: int
    seconds: float
    peak_rss_mb: float
    rows: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# A forked child counts its parent's pages until exec, and keeps that high-water mark
# after it, so the processes are started from a small launcher, not from this process
# with its fake GitHub full of runs. The launcher reports its child's peak RSS.
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(command: list[str], env: dict[str, str], cwd: Path, fake: FakeGitHub) -> Measured:
    """Run a process to completion; its requests, wall time and peak RSS."""
    fake.reset_counts()
    rss_file = cwd / "peak-rss-kb"
    with open(cwd / "last.log", "w") as log:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(rss_file), *command],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=log,
        )
        seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"{command} failed:\n" + (cwd / "last.log").read_text()[-3000:])
    return Measured(fake.count(), seconds, int(rss_file.read_text()) / 1024)


def fill(fake: FakeGitHub, repo: FakeRepo, workflow: int, runs: int, jobs: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(runs):
        fake.add_run(
            repo,
            workflow,
            created=now - timedelta(days=3, minutes=3 * i),
            labels=[LABELS[(i + j) % len(LABELS)] for j in range(jobs)],
        )


def add_new_runs(fake: FakeGitHub, repo: FakeRepo, workflow: int, count: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(count):
        fake.add_run(repo, workflow, created=now - timedelta(minutes=i + 1))


def make_repo(fake: FakeGitHub, name: str, runs: int, jobs: int) -> tuple[FakeRepo, int]:
    repo = fake.add_repo(name)
    workflow = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    fill(fake, repo, workflow, runs, jobs)
    return repo, workflow


def rows_in(database: Database) -> int:
    with database.open() as db:
        return sum(
            db.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("workflowruns", "jobs", "workflowrun_attempts")
        )


def bench_poller(
    fake: FakeGitHub, server: MariaDB, work: Path, args: argparse.Namespace
) -> dict[str, Measured]:
    repo, workflow = make_repo(fake, "bench/poller", args.runs, args.jobs_per_run)
    poller = PollerSetup(
        work, fake.url, server.create_database("bench_poller"), repos=[{"name": "bench/poller"}]
    )
    results = {"backfill": run_measured(poller.command("--once"), poller.env(), work, fake)}
    results["backfill"].rows = rows_in(poller.database)
    results["first pass after"] = run_measured(poller.command("--once"), poller.env(), work, fake)
    results["idle pass"] = run_measured(poller.command("--once"), poller.env(), work, fake)
    add_new_runs(fake, repo, workflow, args.new_runs)
    results["incremental"] = run_measured(poller.command("--once"), poller.env(), work, fake)
    return results


def bench_legacy(
    fake: FakeGitHub, server: MariaDB, work: Path, args: argparse.Namespace
) -> dict[str, Measured]:
    repo, workflow = make_repo(fake, "bench/legacy", args.runs, args.jobs_per_run)
    database = server.create_database("bench_legacy")
    with database.open() as db:
        ensure_schema(db)
    env = {**os.environ, "GITHUB_TOKEN": TOKEN, "SHARK_POLLER_DB_PASSWORD": str(database.password)}

    def legacy(max_runs: int) -> list[str]:
        return [
            sys.executable,
            str(ROOT / "benchmarks" / "legacy.py"),
            fake.url,
            "bench/legacy",
            str(max_runs),
            database.url,
        ]

    results = {"backfill": run_measured(legacy(args.runs), env, work, fake)}
    results["backfill"].rows = rows_in(database)
    # The legacy way to catch up is to rerun the script with a small -m: it cannot tell
    # that nothing changed, so an idle catch-up costs the same as a real one.
    results["idle pass"] = run_measured(legacy(args.new_runs), env, work, fake)
    add_new_runs(fake, repo, workflow, args.new_runs)
    results["incremental"] = run_measured(legacy(args.new_runs), env, work, fake)
    return results


def bench_upserts(server: MariaDB, rows: int) -> tuple[float, float]:
    """Rows per second writing ``rows`` workflowruns rows: batched vs one row at a time."""
    template = transform.run_row(
        {
            "id": 0,
            "created_at": "2026-01-01T00:00:00Z",
            "status": "completed",
            "conclusion": "success",
            "name": "CI",
            "head_branch": "main",
            "head_sha": "a" * 40,
            "html_url": "https://github.com/bench/x/actions/runs/0",
            "actor": {"login": "me"},
        },
        [
            {
                "labels": ["ubuntu-22.04"],
                "started_at": "2026-01-01T00:00:30Z",
                "completed_at": "2026-01-01T00:02:30Z",
            }
        ],
        "bench/upserts",
    )
    data = [{**template, "gitid": 10**9 + i} for i in range(rows)]
    rates = []
    for name, batched in (("bench_batched", True), ("bench_rowwise", False)):
        with server.create_database(name).open() as db:
            ensure_schema(db)
            started = time.monotonic()
            if batched:
                with db.atomic():
                    store.upsert(WorkflowRun, data)
            else:
                for row in data:
                    with db.atomic():
                        store.upsert(WorkflowRun, [row])
            rates.append(rows / (time.monotonic() - started))
    return rates[0], rates[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--jobs-per-run", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=2.0)
    parser.add_argument("--new-runs", type=int, default=50)
    args = parser.parse_args()
    # The schema set-up done in this process would otherwise log above the table.
    logs.configure("warning")
    if not mariadb_installed():
        sys.exit("mariadbd is not installed (Debian: apt-get install mariadb-server)")

    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        server = start_mariadb(work / "mariadb", durable=True)
        fake = FakeGitHub(token=TOKEN, rate_limit=10**9).start()
        fake.latency = args.latency_ms / 1000
        try:
            print(
                f"{args.runs} runs of {args.jobs_per_run} jobs, {args.latency_ms} ms per "
                f"request, MariaDB with a durable commit log\n",
                flush=True,
            )
            ours = bench_poller(fake, server, work, args)
            legacy = bench_legacy(fake, server, work, args)
            small = PollerSetup(
                work,
                fake.url,
                server.create_database("bench_small"),
                repos=[{"name": "bench/small"}],
            )
            make_repo(fake, "bench/small", args.runs // 5, args.jobs_per_run)
            small_backfill = run_measured(small.command("--once"), small.env(), work, fake)
            batched, rowwise = bench_upserts(server, args.runs)
        finally:
            fake.stop()
            server.executor.stop()

    n = args.runs
    print("| measure | shark-poller | legacy algorithm |")
    print("| --- | --- | --- |")
    print(
        f"| rate-limited requests per run, {n}-run backfill | "
        f"{ours['backfill'].requests / n:.4f} ({ours['backfill'].requests}) | "
        f"{legacy['backfill'].requests / n:.4f} ({legacy['backfill'].requests}) |"
    )
    print(
        f"| requests, first pass after the backfill | {ours['first pass after'].requests} | n/a |"
    )
    print(
        f"| requests per idle pass | {ours['idle pass'].requests} | "
        f"{legacy['idle pass'].requests} (rerun with -m {args.new_runs}) |"
    )
    print(
        f"| requests per incremental pass, {args.new_runs} new runs | "
        f"{ours['incremental'].requests} | {legacy['incremental'].requests} |"
    )
    print(
        f"| backfill wall time | {ours['backfill'].seconds:.1f} s | "
        f"{legacy['backfill'].seconds:.1f} s |"
    )
    print(
        f"| backfill rows written per second | {ours['backfill'].rows_per_second:.0f} "
        f"({ours['backfill'].rows} rows: runs, jobs, attempts) | "
        f"{legacy['backfill'].rows_per_second:.0f} ({legacy['backfill'].rows} rows: runs) |"
    )
    print(
        f"| backfill peak RSS | {ours['backfill'].peak_rss_mb:.0f} MB "
        f"({small_backfill.peak_rss_mb:.0f} MB for {n // 5} runs) | "
        f"{legacy['backfill'].peak_rss_mb:.0f} MB |"
    )
    print(
        f"| MariaDB upserts, {n} rows | {batched:.0f} rows/s batched | "
        f"{rowwise:.0f} rows/s one row per transaction |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
