"""Who the process reads GitHub as: a personal token, a GitHub App's installations, or
nobody (60 requests an hour). Every decision about authentication is here: which
credential reads an account, what it presents, and whose ETags its answers are. A new
way to authenticate is a new branch of this module; the pool builds clients from what
it answers, and nothing else knows the modes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog
from github import Auth

from poller.config.settings import Config
from poller.github import app_auth
from poller.github.clock import GitHubClock
from poller.github.errors import GitHubError, describe
from poller.github.urls import identity

log = structlog.get_logger(__name__)

TOKEN = "token"  # the name of the personal token's credential


@dataclass(frozen=True)
class Credential:
    """What one credential presents: its name in logs and metrics, the identity its
    ETags are kept under (``urls.identity``), and PyGithub's auth (None: anonymous)."""

    name: str
    identity: str
    auth: Auth.Auth | None


class Authenticator:
    def __init__(self, config: Config, token: str | None, github_clock: GitHubClock) -> None:
        self.config = config
        self.token = token
        self.github_clock = github_clock  # an installation token's expiry is GitHub's time
        self.app: Auth.AppAuth | None = None
        if config.github.uses_app:
            assert config.github.app_id is not None and config.github.private_key_file
            key = Path(config.github.private_key_file).read_text()
            self.app = Auth.AppAuth(config.github.app_id, key)
        self.installations: dict[str, int] | None = None  # the App's, by owner, once listed

    @property
    def authenticated(self) -> bool:
        return self.app is not None or bool(self.token)

    def key_of(self, owner: str) -> int | None:
        """Which credential reads ``owner``'s repositories: the App's installation on the
        account, or None for the personal token (or nobody). Raises GitHubError when the
        App is not installed on the account."""
        if self.app is None:
            return None
        installation = self.config.installation_for(owner)
        if installation is None:
            installation = self._installations().get(owner.lower())
        if installation is None:
            raise GitHubError(
                f"GitHub App {self.config.github.app_id} is not installed on {owner}: "
                "install it on the account, or set installation_id in its [[orgs]] or "
                "[[repos]] entry"
            )
        return installation

    def credential(self, key: int | None) -> Credential:
        """What the credential ``key`` (``key_of``) presents."""
        settings = self.config.github
        if self.app is not None and key is not None:
            token = app_auth.InstallationToken(
                self.app, key, settings.api_url, int(settings.timeout_seconds), self.github_clock
            )
            return Credential(
                f"installation {key}", identity(f"app:{settings.app_id}:{key}"), token
            )
        auth = Auth.Token(self.token) if self.token else None
        return Credential(TOKEN, identity(f"token:{self.token or ''}"), auth)

    def _installations(self) -> dict[str, int]:
        if self.installations is None:
            assert self.app is not None
            try:
                self.installations = app_auth.installations(
                    self.app, self.config.github.api_url, int(self.config.github.timeout_seconds)
                )
            except Exception as error:
                raise GitHubError(
                    f"cannot list GitHub App {self.config.github.app_id}'s installations: "
                    f"{describe(error)}"
                ) from None
            log.info("github.installations", installations=self.installations)
        return self.installations
