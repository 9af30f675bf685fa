"""What went wrong talking to GitHub, as one line an operator can act on."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from github import GithubException


class GitHubError(Exception):
    """A GitHub answer we cannot sync through; the message is one line for the log."""


class RepoNotFound(GitHubError):
    pass


class AuthFailed(GitHubError):
    pass


CREDENTIALS_REJECTED = (
    "GitHub rejected the credentials (401): check GITHUB_TOKEN (or the github_token "
    "credential), or [github] app_id, installation_id and private_key_file"
)


def describe(error: Exception) -> str:
    """One line for the log, whatever went wrong talking to GitHub."""
    if isinstance(error, GitHubError):
        return str(error)
    if isinstance(error, GithubException) and error.status == 401:
        return CREDENTIALS_REJECTED
    if isinstance(error, GithubException):
        message = (error.data or {}).get("message") if isinstance(error.data, dict) else None
        return f"GitHub answered {error.status}: {message or error.data}"
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return unreachable(error)
    return f"{type(error).__name__}: {error}"


def unreachable(error: requests.RequestException) -> str:
    """No answer from GitHub at all: what failed, said plainly, and what to check. The
    driver's own text (a chain of 'Max retries exceeded ... Caused by ...') names the
    cause only deep inside."""
    url = error.request.url if error.request is not None and error.request.url else ""
    host = urlsplit(str(url)).hostname or "the [github] api_url"
    text = str(error)
    if isinstance(error, requests.Timeout):
        what = "it did not answer in time"
    elif "Failed to resolve" in text or "Name or service not known" in text:
        what = f"the name {host} does not resolve (DNS)"
    elif "Connection refused" in text:
        what = "the connection was refused"
    else:
        what = "the connection failed"
    return (
        f"cannot reach GitHub at {host}: {what}; check this machine's network and proxy "
        "(HTTPS_PROXY), and [github] api_url"
    )
