"""GitHub App auth: one installation token per installation, shared by the process's
clients, renewed by the injected clock; and which installation covers which account.

GitHub's ETags are specific to the token: "It's currently expected for ETags to be auth
token specific" (GitHub support, eclipse-csi/otterdog#201). PyGithub's
``AppInstallationAuth`` mints a token per client, so four clients would hold four tokens
and a URL read by one would answer 200 again to the next. Here every client of an
installation presents the same token, and a URL costs a point once per token: once an
hour, since an installation token lives one hour.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from github import Auth, GithubException, GithubIntegration

from poller import metrics
from poller.clock import Clock

log = structlog.get_logger(__name__)

# Renew this long before GitHub's expires_at, so that no page of a listing is sent with a
# token that expires on the way (PyGithub renews 20 s before; a page may take longer).
RENEW_BEFORE = timedelta(minutes=1)


@contextlib.contextmanager
def integration(app: Auth.AppAuth, api_url: str, timeout: int) -> Iterator[GithubIntegration]:
    """PyGithub's client for what the App does with its own JWT."""
    client = GithubIntegration(auth=app, base_url=api_url, timeout=timeout)
    try:
        yield client
    finally:
        client.close()


def cache_directory(environ: Mapping[str, str] = os.environ) -> Path:
    """Where installation tokens are kept between processes."""
    if environ.get("CACHE_DIRECTORY"):  # systemd's CacheDirectory=
        return Path(environ["CACHE_DIRECTORY"].split(":")[0])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shark-poller"


class InstallationToken(Auth.Auth):
    """The installation's current token, minted with the App's JWT when there is none or
    the one held is about to expire. Thread-safe: clients on several threads share it."""

    def __init__(
        self,
        app: Auth.AppAuth,
        installation_id: int,
        api_url: str,
        timeout: int,
        clock: Clock,
        directory: Path | None = None,
    ) -> None:
        self.app = app
        self.installation_id = installation_id
        self.api_url = api_url
        self.timeout = timeout
        self.clock = clock
        self.lock = threading.Lock()
        self._token: str | None = None
        self.expires_at: datetime | None = None  # naive UTC
        self.rejected: str | None = None  # a token GitHub refused: never taken again
        # One file per App, installation and API host: a token is good for those only.
        where = f"{app.app_id}:{installation_id}:{api_url}".encode()
        name = f"installation-{installation_id}-{hashlib.sha256(where).hexdigest()[:12]}.json"
        self.path = (directory or cache_directory()) / name

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        with self.lock:
            if self._token is None or not self._fresh(self.expires_at):
                self._mint()
            assert self._token is not None
            return self._token

    def _fresh(self, expires_at: datetime | None) -> bool:
        """Whether a token expiring then still has more than RENEW_BEFORE to live."""
        return expires_at is not None and expires_at - RENEW_BEFORE > self.clock.now()

    def forget(self) -> None:
        """GitHub refused the token (401): the next request mints a new one."""
        with self.lock:
            self.rejected, self._token, self.expires_at = self._token, None, None
            self.path.unlink(missing_ok=True)

    def _mint(self) -> None:
        if self._load():
            return
        path = f"/app/installations/{self.installation_id}/access_tokens"
        with integration(self.app, self.api_url, self.timeout) as client:
            try:
                authorization = client.get_access_token(self.installation_id)
            except GithubException as error:
                metrics.count_request(path, error.status, error.headers)
                raise
        metrics.count_request(path, 201)
        self._token = authorization.token
        self.expires_at = authorization.expires_at.replace(tzinfo=None)
        log.info(
            "github.installation_token",
            installation=self.installation_id,
            expires_at=self.expires_at.isoformat(),
        )
        self._save()

    def _load(self) -> bool:
        """Take the token a previous process kept, if it has time left."""
        try:
            kept = json.loads(self.path.read_text())
            token, expires_at = str(kept["token"]), datetime.fromisoformat(kept["expires_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if token == self.rejected or not self._fresh(expires_at):
            return False
        self._token, self.expires_at = token, expires_at
        return True

    def _save(self) -> None:
        assert self._token is not None and self.expires_at is not None
        kept = {"token": self._token, "expires_at": self.expires_at.isoformat()}
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(kept, handle)
            temporary.replace(self.path)
        except OSError as error:
            # Without the file each process mints its own token: dearer, never wrong.
            log.warning("github.token_not_kept", path=str(self.path), error=error.strerror)

    @property
    def _masked_token(self) -> str:
        return "token (installation token removed)"


def installations(app: Auth.AppAuth, api_url: str, timeout: int) -> dict[str, int]:
    """The App's installations, by account login in lower case (``GET /app/installations``,
    with the App's JWT: no installation's rate limit is spent)."""
    with integration(app, api_url, timeout) as client:
        return {
            str(item.raw_data["account"]["login"]).lower(): item.id
            for item in client.get_installations()
        }
