"""What 1,000 repositories cost an App installation an hour, measured over hours of
simulated time: the budget half of ``scripts/scale``, which runs in real time and so
cannot afford two token lifetimes after a 30-day backfill.

The organisation and its activity are ``scale``'s (5% busy repositories at 200 runs a
day, 25% active, 70% quiet; runs queue, run, finish, fail and are re-run; pushes move
``main``; runs up to 30 days old are re-run). Their history is backfilled first,
unmeasured. Then the real pass logic syncs every repository once per simulated interval,
as one daemon does, on a simulated clock that the fake GitHub shares: installation tokens
expire by it (one hour, GitHub's lifetime), and ETags are per token, as GitHub's are.

It prints, per simulated hour: rate-limited requests beside the 60% of 15,000 that the
goal allows, with the jobs listings among them, all requests, the installation tokens
used, and how many completions the next pass stored. Then the lag of re-runs of old
runs, beside the sweep's documented bounds.

    scripts/scale-budget [--repos 1000] [--history-days 30] [--hours 3] [--auth app]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale import ORG, PRIMARY_LIMIT, Activity, Watcher  # noqa: E402

from fake_github import FakeGitHub  # noqa: E402
from mariadb import start_mariadb  # noqa: E402
from poller.clock import epoch  # noqa: E402
from poller.config import loader as config_module  # noqa: E402
from poller.github.pool import connect  # noqa: E402
from poller.service import logs  # noqa: E402
from poller.shutdown import Stop  # noqa: E402
from poller.store.locks import NoLocks  # noqa: E402
from poller.store.schema import ensure_schema  # noqa: E402
from poller.sync.engine import Engine  # noqa: E402
from poller.sync.options import PassOptions  # noqa: E402
from support import TOKEN, FakeClock, PollerSetup, github_app  # noqa: E402

GOAL_SHARE = 0.60


def simulated(clock: FakeClock) -> Callable[[], float]:
    return lambda: epoch(clock.now())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--interval-minutes", type=float, default=5)
    parser.add_argument("--history-days", type=float, default=30)
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--old-reruns-per-hour", type=float, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--auth", choices=["token", "app"], default="app")
    parser.add_argument(
        "--installations",
        type=int,
        default=1,
        help="with --auth app: spread the repositories over this many organisations, the "
        "App installed on each, and report each installation's cost apart",
    )
    args = parser.parse_args()
    logs.configure("warning")
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    fake = FakeGitHub(token=TOKEN, rate_limit=10**9).start()
    fake.clock = simulated(clock)  # token expiry by the simulated clock
    fake.installation_rate_limit = 10**9  # counted, not enforced: the figure is the cost
    orgs = (
        (ORG,)
        if args.installations == 1
        else tuple(f"{ORG}-{number}" for number in range(1, args.installations + 1))
    )
    activity = Activity(fake, args.repos, args.seed, clock=simulated(clock), orgs=orgs)
    runs = activity.history(args.history_days)
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        server = start_mariadb(work / "mariadb", buffer_pool="1G")
        database = server.create_database("budget")
        setup = PollerSetup(work, fake.url, database, orgs=[{"name": org} for org in orgs])
        os.environ["XDG_CACHE_HOME"] = str(work / "cache")
        app: dict[str, Any] = {}
        token: str | None = TOKEN
        if args.auth == "app":
            # Each organisation's installation is found from GitHub's list of them.
            app = github_app(fake, work, dict(enumerate(orgs, start=1)))
            setup.token, token = None, None
        setup.github = {"concurrency": 16, **app}
        setup.schedule = {"interval_minutes": args.interval_minutes}
        config = config_module.load(setup.write())
        engine = Engine(config, connect(config, token, clock, Stop()), NoLocks(), clock)
        daemon = PassOptions(
            backfill_budget=config.sync.backfill_runs_per_pass,
            sweep_minutes=config.schedule.interval_minutes,
            metadata_minutes=config.sync.metadata_minutes,
        )
        interval = timedelta(minutes=args.interval_minutes)
        per_hour = round(timedelta(hours=1) / interval)
        rows = []
        try:
            with database.open() as db, server.root("budget") as connection:
                ensure_schema(db)
                reports = engine.run_all(now=clock.now())  # the backfill, as --once does
                assert not any(r.error for r in reports), [r.error for r in reports if r.error]
                print(
                    f"{args.repos} repositories, {runs} runs over {args.history_days:g} days "
                    f"backfilled (unmeasured); then {args.hours} simulated hours, a pass "
                    f"every {args.interval_minutes:g} min, auth {args.auth}.\n"
                )
                activity.plan(args.hours * 3600, args.old_reruns_per_hour)
                watcher = Watcher(activity, lambda: connection)
                tokens_before = len(fake.installation_tokens)
                for hour in range(args.hours):
                    spent = jobs = total = 0
                    apart: Counter[int] = Counter()
                    completions = on_time = 0
                    for _ in range(per_hour):
                        moment = clock.now() + interval
                        activity.apply_until(
                            epoch(moment),
                            lambda due: clock.advance(
                                datetime.fromtimestamp(due, UTC).replace(tzinfo=None) - clock.now()
                            ),
                        )
                        clock.advance(moment - clock.now())
                        fake.reset_counts()
                        reports = engine.run_all(daemon, now=moment)
                        failed = [r.error for r in reports if r.error]
                        assert not failed, failed[:3]
                        spent += fake.count()
                        apart.update(by_installation(fake))
                        jobs += fake.count("/jobs")
                        total += fake.count(rate_limited=False)
                        watcher.look(connection, epoch(moment))
                        since = epoch(moment - interval)
                        for key, (_, label, done) in activity.completed.items():
                            if since <= done < epoch(moment) and label != "old re-run":
                                completions += 1
                                on_time += key in watcher.seen
                    tokens = len(fake.installation_tokens) - tokens_before
                    tokens_before = len(fake.installation_tokens)
                    rows.append((hour + 1, spent, jobs, total, tokens, completions, on_time, apart))
                old = old_reruns(activity, watcher, config.sync, epoch(clock.now()))
        finally:
            engine.close()
            server.executor.stop()
            fake.stop()
    print("| hour | rate-limited | of which jobs | share of 15,000 | all requests "
          "| tokens | completions stored by the next pass |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for hour, spent, jobs, total, tokens, completions, on_time, apart in rows:
        share = f"{spent / PRIMARY_LIMIT:.0%}"
        if len(orgs) > 1:  # each installation has its own 15,000
            share = " / ".join(f"{apart[i] / PRIMARY_LIMIT:.0%}" for i in range(1, len(orgs) + 1))
            spent_text = " + ".join(f"{apart[i]:,}" for i in range(1, len(orgs) + 1))
        else:
            spent_text = f"{spent:,}"
        print(
            f"| {hour} | {spent_text} | {jobs:,} | {share} (goal ≤ {GOAL_SHARE:.0%}) "
            f"| {total:,} | {tokens} | {on_time} of {completions} |"
        )
    sync = config.sync
    print(
        f"\nRe-runs of runs 1 to {args.history_days:g} days old, by the sweep's bound on "
        f"their lag ({sync.rerun_sweep_minutes:g} min + an interval up to "
        f"{sync.rerun_sweep_old_days:g} days old, {sync.rerun_sweep_old_minutes:g} min + an "
        f"interval past that): {old}."
    )
    return 0


def by_installation(fake: FakeGitHub) -> Counter[int]:
    """The rate-limited requests since the last reset, by the installation whose token
    they carried (0: none)."""
    owner = {
        token: installation.id
        for installations in fake.installations.values()
        for installation in installations.values()
        for token in installation.tokens
    }
    with fake.lock:
        return Counter(owner.get(r.credential, 0) for r in fake.requests if r.rate_limited)


def old_reruns(activity: Activity, watcher: Watcher, sync: Any, now: float) -> str:
    """How the re-runs of old runs fared against their bound: mirrored within it (with the
    longest lag), not yet mirrored with the bound still ahead, or late."""
    created = {
        run: datetime.fromisoformat(repo.runs[run]["created_at"]).timestamp()
        for repo, run in activity.history_runs
    }
    within, lags, ahead, late = 0, [0.0], 0, 0
    interval = 5 * 60
    for (run, attempt), (_, label, done) in activity.completed.items():
        if label != "old re-run":
            continue
        past = done - created[run] > sync.rerun_sweep_old_days * 86400 - 3600 - interval
        bound = 60 * (sync.rerun_sweep_old_minutes if past else sync.rerun_sweep_minutes)
        bound += interval
        seen = watcher.seen.get((run, attempt))
        if seen is not None and seen - done <= bound:
            within, lags = within + 1, [*lags, seen - done]
        elif seen is None and now - done <= bound:
            ahead += 1
        else:
            late += 1
    return (
        f"{within} within their bound (longest lag {max(lags) / 60:.0f} min), {ahead} not "
        f"yet mirrored and still within it, {late} late"
    )


if __name__ == "__main__":
    sys.exit(main())
