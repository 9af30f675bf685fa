"""What went wrong talking to GitHub, as one line an operator can act on."""

from __future__ import annotations

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
    return f"{type(error).__name__}: {error}"
