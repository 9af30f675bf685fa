"""App installation tokens: one per installation, kept between processes for the rest of
its hour (readable by the user only), renewed before it expires, and never taken again
once GitHub refused it."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from github import Auth

from fake_github import FakeGitHub
from poller.clock import epoch
from poller.github.app_auth import InstallationToken, cache_directory
from support import FakeClock, github_app

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def token_for(fake: FakeGitHub, settings: dict, clock: FakeClock, directory: Path):
    app = Auth.AppAuth(settings["app_id"], Path(settings["private_key_file"]).read_text())
    return InstallationToken(app, 7, fake.url, 10, clock, directory)


def test_the_next_process_takes_the_token_the_last_one_kept(fake: FakeGitHub, tmp_path: Path):
    clock = FakeClock(NOW)
    fake.clock = lambda: epoch(clock.now())
    settings = github_app(fake, tmp_path, {7: "octo"})
    first = token_for(fake, settings, clock, tmp_path / "cache").token
    assert len(fake.installation_tokens) == 1
    kept = next((tmp_path / "cache").iterdir())
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700

    clock.advance(timedelta(minutes=50))  # cron's next --once, ten minutes before expiry
    assert token_for(fake, settings, clock, tmp_path / "cache").token == first
    assert len(fake.installation_tokens) == 1

    clock.advance(timedelta(minutes=9, seconds=30))  # within a minute of expiry: renewed
    renewed = token_for(fake, settings, clock, tmp_path / "cache").token
    assert renewed != first and len(fake.installation_tokens) == 2


def test_a_refused_token_is_forgotten_and_never_taken_again(fake: FakeGitHub, tmp_path: Path):
    clock = FakeClock(NOW)
    fake.clock = lambda: epoch(clock.now())
    settings = github_app(fake, tmp_path, {7: "octo"})
    holder = token_for(fake, settings, clock, tmp_path / "cache")
    refused = holder.token
    holder.forget()  # what a 401 does
    assert not list((tmp_path / "cache").iterdir())
    assert holder.token != refused
    assert len(fake.installation_tokens) == 2


def test_tokens_are_kept_where_systemd_or_xdg_say():
    assert cache_directory({"CACHE_DIRECTORY": "/var/cache/shark-poller"}) == Path(
        "/var/cache/shark-poller"
    )
    assert cache_directory({"XDG_CACHE_HOME": "/x"}) == Path("/x/shark-poller")
    assert cache_directory({}) == Path.home() / ".cache" / "shark-poller"
