"""An idle daemon pass over many quiet repositories, against a fake GitHub that answers
in 100 ms: how long it takes, and what it costs per repository.

The repositories are backfilled first (fast, unmeasured). Then the real pass logic runs
daemon passes, with the daemon's options and the default governor (800 requests a minute,
4 in flight), and the script prints each measured pass beside the serial figure
(concurrency 1) and the theoretical floor that the budget sets, and the same passes with
``[metrics]`` on (the textfile, CI metrics included, written after each pass as the
daemon does), which must cost no request and no measurable time. Then the same passes
under a GitHub App whose token changes every hour (by a simulated clock): the first
pass under each new token pays one point per URL it reads, since GitHub's ETags, and
the fake's, are specific to the token.

    scripts/idle-pass [--repos 100] [--latency-ms 100] [--runs-per-repo 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_github import FakeGitHub  # noqa: E402
from poller.clock import SYSTEM, epoch  # noqa: E402
from poller.config import loader as config_module  # noqa: E402
from poller.config.settings import Config  # noqa: E402
from poller.github.pool import connect  # noqa: E402
from poller.service import logs  # noqa: E402
from poller.service.exposition import Exporter  # noqa: E402
from poller.shutdown import Stop  # noqa: E402
from poller.store.locks import NoLocks  # noqa: E402
from poller.store.schema import ensure_schema  # noqa: E402
from poller.sync.engine import Engine  # noqa: E402
from poller.sync.options import PassOptions  # noqa: E402
from support import TOKEN, Database, FakeClock, PollerSetup, github_app  # noqa: E402


def daemon_pass(
    config: Config, now: datetime, token: str | None = TOKEN, clock: FakeClock | None = None
) -> tuple[float, int, int]:
    """One daemon pass: seconds, rate-limited requests, all requests. With ``[metrics]``
    in ``config``, the textfile is written after it, as the daemon does, and timed."""
    pool = connect(config, token, clock or SYSTEM, Stop())
    engine = Engine(config, pool, NoLocks())
    options = PassOptions(
        backfill_budget=config.sync.backfill_runs_per_pass,
        sweep_minutes=config.schedule.interval_minutes,
        metadata_minutes=config.sync.metadata_minutes,
    )
    started = time.monotonic()
    try:
        reports = engine.run_all(options, now=now)
        Exporter(config, engine.github).write()  # nothing unless [metrics] textfile is set
    finally:
        engine.close()
    assert not any(r.error for r in reports), [r.error for r in reports if r.error]
    stats = engine.github.stats
    return time.monotonic() - started, stats.spent, stats.sent


def app_rows(
    args: argparse.Namespace,
    fake: FakeGitHub,
    setup: PollerSetup,
    start: datetime,
    rows: list[tuple[object, int, float, int, int]],
) -> None:
    """Passes under a GitHub App, its token renewed by the simulated clock."""
    clock = FakeClock(start)
    fake.clock = lambda: epoch(clock.now())
    fake.installation_rate_limit = 10**9
    os.environ["XDG_CACHE_HOME"] = str(setup.tmp_path / "cache")  # the App's kept token
    setup.github = {
        "requests_per_minute": 800,
        "concurrency": 4,
        **github_app(fake, setup.tmp_path, {1: ""}),
        "installation_id": 1,
    }
    config = config_module.load(setup.write())
    for number, step in ((1, timedelta(0)), (2, timedelta(minutes=5)), (3, timedelta(hours=1))):
        clock.advance(step)
        fake.reset_counts()
        seconds, spent, sent = daemon_pass(config, clock.now(), None, clock)
        rows.append(("App", number, seconds, spent, sent))


def series_in(textfile: Path) -> dict[str, int]:
    """Series in a metrics textfile: all, those with a repository label, the CI ones."""
    from prometheus_client.parser import text_string_to_metric_families

    found = [
        (family.name, sample)
        for family in text_string_to_metric_families(textfile.read_text())
        for sample in family.samples
    ]
    return {
        "all": len(found),
        "repo": sum(1 for _, sample in found if "repo" in sample.labels),
        "ci": sum(1 for name, _ in found if name.startswith(("cicd_", "shark_poller_job_queue"))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--runs-per-repo", type=int, default=8)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    logs.configure("warning")
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    fake = FakeGitHub(token=TOKEN).start()
    fake.budget.limit = fake.budget.remaining = 10**9
    names = [f"quiet/repo-{i:04d}" for i in range(args.repos)]
    for name in names:
        repo = fake.add_repo(name)
        workflow = fake.add_workflow(repo, "CI")
        fake.add_commit(repo, "main", when=(now - timedelta(days=40)).replace(tzinfo=UTC))
        for day in range(args.runs_per_repo):
            created = now - timedelta(days=1 + 20 * day / args.runs_per_repo)
            fake.add_run(repo, workflow, created=created.replace(tzinfo=UTC))
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        database = Database(f"sqlite:///{work / 'idle.db'}")
        setup = PollerSetup(work, fake.url, database, repos=[{"name": n} for n in names])
        fast = config_module.load(setup.write())
        fast = dataclasses.replace(fast, github=dataclasses.replace(fast.github, concurrency=16))
        with database.open() as db:
            ensure_schema(db)
            Engine(fast, connect(fast, TOKEN, SYSTEM, Stop()), NoLocks()).run_all(
                now=now
            )  # the backfill, unmeasured
            fake.latency = args.latency_ms / 1000
            textfile = work / "shark_poller.prom"
            for concurrency, metrics in ((4, {}), (4, {"textfile": str(textfile), "ci": True}),
                                         (1, {})):  # fmt: skip
                setup.github = {"requests_per_minute": 800, "concurrency": concurrency}
                setup.metrics = metrics
                config = config_module.load(setup.write())
                label = f"{concurrency}, metrics on" if metrics else concurrency
                for index in range(args.passes):
                    moment = now + timedelta(minutes=5 * (len(rows) + 1))
                    fake.reset_counts()
                    seconds, spent, sent = daemon_pass(config, moment)
                    rows.append((label, index + 1, seconds, spent, sent))
            series = series_in(textfile)
            setup.metrics = {}
            app_rows(args, fake, setup, now + timedelta(minutes=5 * (len(rows) + 1)), rows)
    fake.stop()
    print(
        f"Idle daemon passes: {args.repos} quiet repositories ({args.runs_per_repo} runs "
        f"each over 20 days), {args.latency_ms:g} ms a request, 800 requests a minute.\n"
    )
    print("| concurrency | pass | seconds | rate-limited requests | all requests | per repo |")
    print("| --- | --- | --- | --- | --- | --- |")
    for concurrency, number, seconds, spent, sent in rows:
        print(
            f"| {concurrency} | {number} | {seconds:.1f} | {spent} | {sent} | "
            f"{sent / args.repos:.2f} |"
        )
    print(
        "\nApp passes (concurrency 4): 1 is the first under the App's first token, 2 five "
        "minutes later with the same token, 3 an hour later under the next token."
    )
    print(
        f"\nMetrics on: the textfile with the CI metrics, written after each pass as the "
        f"daemon does, holds {series['all']} series for {args.repos} repositories "
        f"({series['repo']} of them per repository, {series['ci']} CI)."
    )
    floor = rows[0][4] / (800 / 60)
    print(
        f"\nFloor set by the budget for the first pass's {rows[0][4]} requests: "
        f"{floor:.1f} s (at 800 a minute, after a burst of 4)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
