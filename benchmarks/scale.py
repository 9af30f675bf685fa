"""1,000 repositories on one installation, polled by 1, then 2, then 3 real daemons on one
MariaDB, against a fake GitHub that answers in 100 ms and enforces the secondary limit
(900 requests in any minute, 100 in flight) and a primary limit of 15,000 an hour.

The organisation holds about 5% busy repositories (200 runs a day), 25% active (10) and
70% quiet (one run every three days). Their history is backfilled first, fast and
unmeasured. Then, in real time, runs are created, queue, run and finish (success, failure
or cancelled); pushes move ``main``; some failed runs are re-run; and runs one to three
days old are re-run and finish. Meanwhile one ``python -m poller`` daemon runs, then a
second and a third join, each for ``--phase-intervals`` intervals; then the first is
killed with SIGKILL and the other two go on. A watcher reads the database every second.

It prints, per phase: freshness (a run completing on GitHub to its final row) p50, p95
and max; requests a minute, mean and peak, beside the floor of one listing per repository
per interval; rate-limited requests an hour beside the primary limit; secondary-limit
answers; duplicate polls (a repository claimed twice within an interval); and requests
per pass of an idle repository. Then the takeover time after the kill.

    scripts/scale [--repos 1000] [--latency-ms 100] [--interval-minutes 5]
                  [--phase-intervals 2] [--history-days 3] [--auth app] [--token-minutes 60]

With ``--auth app`` the pollers read GitHub as a GitHub App installed on the organisation,
whose installation tokens expire after ``--token-minutes`` (GitHub's: 60), with ETags per
token as GitHub's are; the installation has the primary and secondary limits. The pollers
run on one host and share its cache directory, so they share the installation's token.
Shorter-lived tokens only add cost, so a run with ``--token-minutes 10`` bounds the
hourly one from above; ``scripts/scale-budget`` measures the hourly case itself, over
hours of simulated time, which this real-time benchmark cannot afford after a 30-day
backfill.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_github import FakeGitHub, FakeRepo, SecondaryLimit  # noqa: E402
from mariadb import start_mariadb  # noqa: E402
from poller.clock import SYSTEM  # noqa: E402
from poller.config import loader as config_module  # noqa: E402
from poller.config.settings import SyncConfig  # noqa: E402
from poller.github.pool import connect  # noqa: E402
from poller.rules import windows  # noqa: E402
from poller.service import logs  # noqa: E402
from poller.shutdown import Stop  # noqa: E402
from poller.store.locks import NoLocks  # noqa: E402
from poller.store.schema import ensure_schema  # noqa: E402
from poller.sync.engine import Engine  # noqa: E402
from support import TOKEN, LogTail, PollerSetup, github_app  # noqa: E402

ORG = "bench"
KINDS = {"busy": (0.05, 200.0), "active": (0.25, 10.0), "quiet": (0.70, 1 / 3)}  # runs a day
RUN_MINUTES = {"busy": (4, 15), "active": (2, 8), "quiet": (1, 4)}
PRIMARY_LIMIT = 15_000


class Activity:
    """What happens on GitHub, on the wall clock; records when each run attempt completed."""

    def __init__(
        self,
        fake: FakeGitHub,
        count: int,
        seed: int,
        clock: Callable[[], float] = time.time,
        orgs: tuple[str, ...] = (ORG,),
    ) -> None:
        self.fake = fake
        self.now = clock  # epoch seconds: the wall clock, or scale_budget's simulated one
        self.random = random.Random(seed)
        self.repos: dict[str, list[tuple[FakeRepo, int]]] = defaultdict(list)
        self.kind_of: dict[str, str] = {}
        for index in range(count):
            share = index / count
            kind = "busy" if share < 0.05 else "active" if share < 0.30 else "quiet"
            repo = fake.add_repo(f"{orgs[index % len(orgs)]}/{kind}-{index:04d}")
            self.repos[kind].append((repo, fake.add_workflow(repo, "CI")))
            self.kind_of[repo.full_name] = kind
        self.events: list[tuple[float, int, str, dict[str, Any]]] = []
        self.order = itertools.count()
        self.lock = threading.Lock()
        # (run id, attempt) -> (repository kind, "new" or "re-run" or "old re-run", when done)
        self.completed: dict[tuple[int, int], tuple[str, str, float]] = {}
        self.history_runs: list[tuple[FakeRepo, int]] = []

    def history(self, days: float) -> int:
        now = self.utcnow()
        for kind, (_, per_day) in KINDS.items():
            for repo, workflow in self.repos[kind]:
                self.fake.add_commit(repo, "main", when=now - timedelta(days=days + 1))
                moment = now - timedelta(days=days)
                while (moment := moment + timedelta(days=self.random.expovariate(per_day))) < now:
                    run = self.fake.add_run(
                        repo, workflow, created=moment - timedelta(minutes=20), job_seconds=300
                    )
                    if moment < now - timedelta(days=1):
                        self.history_runs.append((repo, run))
        return sum(len(repo.runs) for repos in self.repos.values() for repo, _ in repos)

    def plan(self, seconds: float, old_reruns_per_hour: float) -> None:
        start = self.now()
        for kind, (_, per_day) in KINDS.items():
            rate = per_day * len(self.repos[kind]) / 86400  # runs a second, all repositories
            moment = start
            while (moment := moment + self.random.expovariate(rate)) < start + seconds:
                self.at(moment, "create", kind=kind)
        moment = start
        while (moment := moment + self.random.expovariate(old_reruns_per_hour / 3600)) < (
            start + seconds
        ):
            self.at(moment, "old_rerun")

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def at(self, moment: float, action: str, **data: Any) -> None:
        with self.lock:
            heapq.heappush(self.events, (moment, next(self.order), action, data))

    def run_until(self, stop: threading.Event) -> None:
        while not stop.wait(0.2):
            self.apply_until(self.now())

    def apply_until(self, moment: float, advance: Callable[[float], None] | None = None) -> None:
        """Apply every event due by ``moment``; ``advance`` moves a simulated clock to each
        event's time first."""
        while True:
            with self.lock:
                if not self.events or self.events[0][0] > moment:
                    break
                due, _, action, data = heapq.heappop(self.events)
            if advance:
                advance(due)
            try:
                getattr(self, action)(**data)
            except Exception as error:  # a bug here must not silently stop the activity
                print(f"activity: {action} failed: {error!r}", file=sys.stderr)

    # --- actions ---

    def create(self, kind: str) -> None:
        repo, workflow = self.random.choice(self.repos[kind])
        event = self.random.choices(["push", "pull_request", "schedule"], [5, 4, 1])[0]
        sha = self.fake.add_commit(repo, "main", when=self.utcnow()) if event == "push" else None
        run = self.fake.add_run(
            repo, workflow, created=self.utcnow(), sha=sha, status="queued", conclusion=None
        )
        with self.fake.lock:
            repo.runs[run]["event"] = event
        self.at(self.now() + self.random.uniform(10, 60), "start", repo=repo, run=run, kind=kind)

    def start(self, repo: FakeRepo, run: int, kind: str, label: str = "new") -> None:
        self.fake.start_run(repo, run, at=self.utcnow())
        low, high = RUN_MINUTES[kind]
        done = self.now() + 60 * self.random.uniform(low, high)
        self.at(done, "complete", repo=repo, run=run, kind=kind, label=label)

    def complete(self, repo: FakeRepo, run: int, kind: str, label: str) -> None:
        conclusion = self.random.choices(["success", "failure", "cancelled"], [8, 2, 1])[0]
        self.fake.complete_run(repo, run, conclusion=conclusion, job_seconds=60)
        attempt = int(repo.runs[run]["run_attempt"])
        with self.lock:
            self.completed[(run, attempt)] = (kind, label, self.now())
        if conclusion == "failure" and attempt == 1 and self.random.random() < 0.3:
            self.at(self.now() + 60 * self.random.uniform(1, 5), "rerun", repo=repo, run=run)

    def rerun(self, repo: FakeRepo, run: int, label: str = "re-run") -> None:
        self.fake.rerun(repo, run, at=self.utcnow(), conclusion=None)
        kind = self.kind_of[repo.full_name]
        self.at(self.now() + 60 * self.random.uniform(1, 4), "complete_rerun", repo=repo,
                run=run, kind=kind, label=label)  # fmt: skip

    def complete_rerun(self, repo: FakeRepo, run: int, kind: str, label: str) -> None:
        self.complete(repo, run, kind, label)

    def old_rerun(self) -> None:
        repo, run = self.random.choice(self.history_runs)
        if repo.runs[run]["status"] == "completed":
            self.rerun(repo, run, label="old re-run")


class Watcher:
    """Reads the database every second: when did each completed attempt reach its row?"""

    def __init__(self, activity: Activity, connect: Any) -> None:
        self.activity = activity
        self.connect = connect
        self.seen: dict[tuple[int, int], float] = {}

    def run_until(self, stop: threading.Event) -> None:
        with self.connect() as connection:
            while not stop.wait(1.0):
                self.look(connection, time.time())

    def look(self, connection: Any, now: float) -> None:
        """Mark, as seen at ``now``, each completed attempt whose final state is stored."""
        with self.activity.lock:
            pending = [key for key in self.activity.completed if key not in self.seen]
        if not pending:
            return
        ids = ",".join(str(run) for run, _ in pending)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT gitid, runattempt, status FROM workflowruns WHERE gitid IN ({ids})"
            )
            rows = {gitid: (attempt, status) for gitid, attempt, status in cursor}
        for run, attempt in pending:
            stored = rows.get(run)
            # The attempt's final state is in the row, or, once a later attempt is stored,
            # in workflowrun_attempts.
            if stored and (stored[0] > attempt or stored == (attempt, "completed")):
                self.seen[(run, attempt)] = now


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def syncs(daemons: dict[str, LogTail]) -> list[tuple[str, str, float, int, str]]:
    """Every sync: (poller, repository, claimed at, requests, kind of repository)."""
    found = []
    for label, daemon in daemons.items():
        for event in daemon.events("sync.repo_done"):
            end = datetime.fromisoformat(event["timestamp"]).timestamp()
            requests = event["requests_spent"] + event["requests_not_modified"]
            changed = any(
                c["inserted"] or c["updated"] or c["deleted"] for c in event["counts"].values()
            )
            found.append((label, event["repo"], end - event["seconds"], requests, str(changed)))
    return sorted(found, key=lambda sync: sync[2])


def report(args: argparse.Namespace, phases: list[tuple[str, float, float]], fake: FakeGitHub,
           activity: Activity, watcher: Watcher, daemons: dict[str, LogTail],
           killed: tuple[str, float]) -> None:  # fmt: skip
    interval = args.interval_minutes * 60
    all_syncs = syncs(daemons)
    print("| pollers | minutes | completions | freshness p50 / p95 / max | requests a minute, "
          "mean / peak | rate-limited an hour | secondary-limit answers | duplicate polls "
          "| requests per idle repository per pass |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, start, end in phases:
        lags = [
            watcher.seen.get(key, time.time()) - done
            for key, (_, kind, done) in activity.completed.items()
            if start <= done < end and kind != "old re-run"
        ]
        requests = [r for r in fake.requests if start <= r.at < end]
        minutes = Counter(int((r.at - start) // 60) for r in requests)
        full = [minutes.get(m, 0) for m in range(max(1, int((end - start) // 60)))]
        per_hour = sum(1 for r in requests if r.rate_limited) * 3600 / (end - start)
        refused = sum(1 for r in requests if r.refused)
        phase_syncs = [s for s in all_syncs if start <= s[2] < end]
        idle = [s[3] for s in phase_syncs if "quiet" in s[1] and s[4] == "False"]
        duplicates = 0
        last: dict[str, float] = {}
        for _, repo, claimed, _, _ in all_syncs:
            if repo in last and claimed - last[repo] < interval - 2 and start <= claimed < end:
                duplicates += 1
            last[repo] = claimed
        print(
            f"| {label} | {(end - start) / 60:.0f} | {len(lags)} | "
            f"{percentile(lags, 0.5):.0f} s / {percentile(lags, 0.95):.0f} s / "
            f"{max(lags, default=float('nan')):.0f} s | "
            f"{statistics.mean(full or [0]):.0f} / {max(full, default=0)} | "
            f"{per_hour:.0f} ({per_hour / PRIMARY_LIMIT:.0%} of {PRIMARY_LIMIT:,}) | "
            f"{refused} | {duplicates} | "
            f"{statistics.mean(idle or [float('nan')]):.2f} |"
        )
    old = [
        watcher.seen.get(key, time.time()) - done
        for key, (_, kind, done) in activity.completed.items()
        if kind == "old re-run"
    ]
    victim, at = killed
    last_before: dict[str, str] = {}
    for poller, repo, claimed, _, _ in all_syncs:
        if claimed < at:
            last_before[repo] = poller
    mine = {repo for repo, poller in last_before.items() if poller == victim}
    taken = {}
    for poller, repo, claimed, _, _ in all_syncs:
        if repo in mine and poller != victim and claimed > at and repo not in taken:
            taken[repo] = claimed - at
    waits = sorted(taken.values())
    print(
        f"\nTakeover after SIGKILL of poller {victim}: {len(taken)} of the {len(mine)} "
        f"repositories it had synced last were synced again by the others, p50 "
        f"{percentile(waits, 0.5):.0f} s, max {max(waits, default=float('nan')):.0f} s "
        f"({max(waits, default=float('nan')) / interval:.2f} intervals; goal: 2)."
    )
    print(
        f"Re-runs of runs one to three days old: {len(old)}, mirrored within p50 "
        f"{percentile(old, 0.5):.0f} s, max {max(old, default=float('nan')):.0f} s (the sweep "
        f"re-reads the horizon older than lookback_days once per rerun_sweep_minutes, 60; "
        f"past rerun_sweep_old_days, 7, once per rerun_sweep_old_minutes, 360)."
    )
    print(
        f"Floor: {args.repos / args.interval_minutes:.0f} requests a minute (one listing per "
        f"repository per interval). Goal for freshness p95: interval + 60 s = "
        f"{interval + 60:.0f} s. Secondary limit in the fake: 900 a minute, 100 in flight."
    )


def sweep_projection(args: argparse.Namespace, repos: dict[str, int]) -> str:
    """What the sweeps would cost with a full 30-day horizon of history, from the real
    window partition of each kind's daily counts (the benchmark backfills fewer days):
    the windows of the last ``rerun_sweep_old_days`` once an hour, the older ones once per
    ``rerun_sweep_old_minutes``."""
    sync = SyncConfig()
    today = windows.floor_day(datetime(2026, 11, 28))
    lookback = today - timedelta(days=2)
    boundary = today - timedelta(days=sync.rerun_sweep_old_days)
    extra = 0.0
    parts = []
    for kind, (_, per_day) in KINDS.items():
        counts = {
            (today - timedelta(days=d)).date(): int(per_day * (d + 1)) - int(per_day * d)
            for d in range(31)
        }
        cut = windows.partition(
            today - timedelta(days=30), lookback, counts, keep_empty_after=lookback,
            merge_before=lookback,
        )  # fmt: skip
        older = [w for w in cut if w.high <= lookback]
        old = sum(1 for w in older if w.high <= boundary)
        per_hour = len(older) - old + old * 60 / sync.rerun_sweep_old_minutes
        extra += per_hour * repos[kind] / 60
        parts.append(f"{kind} {len(older)} windows ({per_hour:.1f} an hour)")
    return (
        f"With 30 days of history instead of {args.history_days:g}, the sweeps of the "
        f"re-run horizon would cost about {extra:.0f} requests a minute in all: "
        + ", ".join(parts)
        + "."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--interval-minutes", type=float, default=5)
    parser.add_argument("--phase-intervals", type=float, default=2)
    parser.add_argument("--history-days", type=float, default=3)
    parser.add_argument("--old-reruns-per-hour", type=float, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--dump", type=Path, help="write the raw measurements here (JSON)")
    parser.add_argument("--auth", choices=["token", "app"], default="token")
    parser.add_argument("--token-minutes", type=float, default=60)
    args = parser.parse_args()
    logs.configure("warning")
    interval = args.interval_minutes * 60
    phase = args.phase_intervals * interval
    fake = FakeGitHub(token=TOKEN, rate_limit=10**9).start()
    activity = Activity(fake, args.repos, args.seed)
    runs = activity.history(args.history_days)
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        server = start_mariadb(work / "mariadb", durable=True)
        database = server.create_database("scale")
        setup = PollerSetup(work, fake.url, database, orgs=[{"name": ORG}])
        os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # this host's cache directory
        app: dict[str, Any] = {}
        token: str | None = TOKEN
        if args.auth == "app":
            fake.installation_rate_limit = 10**9  # the backfill is not measured
            app = {**github_app(fake, work, {1: ORG}), "installation_id": 1}
            fake.token_lifetime = args.token_minutes * 60
            setup.token, token = None, None
        setup.github = {"concurrency": 16, **app}
        with database.open() as db:
            ensure_schema(db)
            started = time.monotonic()
            fast = config_module.load(setup.write())
            reports = Engine(fast, connect(fast, token, SYSTEM, Stop()), NoLocks()).run_all()
            assert not any(r.error for r in reports), [r.error for r in reports if r.error]
        print(
            f"{args.repos} repositories, {runs} runs over {args.history_days:g} days backfilled "
            f"in {time.monotonic() - started:.0f} s (unmeasured). Interval "
            f"{args.interval_minutes:g} min, latency {args.latency_ms:g} ms, "
            f"{args.phase_intervals:g} intervals a phase.\n"
        )
        fake.reset_counts()
        fake.latency = args.latency_ms / 1000
        fake.secondary = SecondaryLimit(900, concurrency=100)
        fake.budget.limit = fake.budget.remaining = PRIMARY_LIMIT
        fake.budget.reset = int(time.time()) + 3600
        for installation in fake.installations.get(4242, {}).values():
            installation.budget.limit = installation.budget.remaining = PRIMARY_LIMIT
            installation.budget.reset = int(time.time()) + 3600
        setup.github = {"requests_per_minute": 800, "concurrency": 4, **app}
        setup.schedule = {"interval_minutes": args.interval_minutes}
        stop = threading.Event()
        activity.plan(4 * phase, args.old_reruns_per_hour)
        watcher = Watcher(activity, lambda: server.root("scale"))
        threads = [threading.Thread(target=t.run_until, args=(stop,)) for t in (activity, watcher)]
        for thread in threads:
            thread.start()
        daemons: dict[str, LogTail] = {}
        phases = []
        for label in ("A", "B", "C"):
            (work / label).mkdir()
            setup.tmp_path = work / label
            # One host: the pollers share its cache directory, and so the App's token.
            daemons[label] = LogTail(setup.popen(XDG_CACHE_HOME=str(work / "cache")))
            start = time.time()
            time.sleep(phase)
            phases.append((str(len(daemons)), start, time.time()))
        daemons["A"].process.send_signal(signal.SIGKILL)
        killed = ("A", time.time())
        time.sleep(phase)
        phases.append(("2 (A killed)", killed[1], time.time()))
        # No new runs or re-runs from here, while those under way finish; a last interval
        # lets the final completions land.
        with activity.lock:
            activity.events = [e for e in activity.events if e[2] not in ("create", "old_rerun")]
            heapq.heapify(activity.events)
        time.sleep(interval + 60)
        stop.set()
        for thread in threads:
            thread.join()
        rss = {}
        for label, daemon in daemons.items():
            status = Path(f"/proc/{daemon.process.pid}/status")
            if daemon.process.poll() is None and status.exists():
                peak = [line for line in status.read_text().splitlines() if "VmHWM" in line]
                rss[label] = peak[0].split(":")[1].strip() if peak else "?"
            daemon.process.send_signal(signal.SIGTERM)
        for daemon in daemons.values():
            daemon.process.wait(timeout=60)
        report(args, phases, fake, activity, watcher, daemons, killed)
        if args.dump:
            raw = {
                "phases": phases,
                "completed": [[*key, *value] for key, value in activity.completed.items()],
                "seen": [[*key, at] for key, at in watcher.seen.items()],
                "syncs": syncs(daemons),
                "requests": [[r.at, r.path, r.status, r.refused] for r in fake.requests],
            }
            args.dump.write_text(json.dumps(raw))
        print(f"Peak memory of each poller still running (VmHWM): {rss}.")
        if args.auth == "app":
            print(
                f"GitHub App: {len(fake.installation_tokens)} installation tokens minted, each "
                f"living {args.token_minutes:g} min, shared by the pollers on this host."
            )
        print(sweep_projection(args, {k: len(v) for k, v in activity.repos.items()}))
        server.executor.stop()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
