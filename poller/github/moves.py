"""Repositories GitHub has moved, as one client learns them from redirects.

GitHub answers a renamed or transferred repository's old API URLs with ``301 Moved
Permanently`` to ``/repositories/{id}/...``, query string included (GitHub changelog,
2015-07-21, "automatic redirects for renamed repositories"; a recorded answer in
node-gh/gh#579: ``location: .../repositories/119537897/issues?state=open&labels=``).
The client follows the whole Location (``retry.Redirected``). Once one URL of a
repository was moved, every later request for it goes straight to ``/repositories/{id}``,
so a moved repository costs one redirect, not one per request; and the pass learns the
move here (``moved_id``) to store the repository under its new name.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

# A path of one repository by name, and the same repository by id.
BY_NAME = re.compile(r"^(?P<prefix>.*?)/repos/(?P<owner>[^/?]+)/(?P<name>[^/?]+)(?P<rest>.*)$")
BY_ID = re.compile(r"/repositories/(?P<id>\d+)(?:[/?]|$)")


class Moves:
    """Old ``owner/name`` (lower case) -> GitHub's id of the repository it now is."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.lock = threading.Lock()

    def note(self, requested: str, location: str) -> None:
        """A request for ``requested`` (a path or URL) was redirected to ``location``."""
        named = BY_NAME.match(urlsplit(requested).path)
        by_id = BY_ID.search(urlsplit(location).path)
        if named and by_id:
            with self.lock:
                self.ids[f"{named['owner']}/{named['name']}".lower()] = int(by_id["id"])

    def moved_id(self, full_name: str) -> int | None:
        with self.lock:
            return self.ids.get(full_name.lower())

    def forget(self, full_name: str) -> None:
        with self.lock:
            self.ids.pop(full_name.lower(), None)

    def rewrite(self, url: str) -> str:
        """``/repos/OLD/NAME/...`` as ``/repositories/ID/...`` once OLD/NAME is known to
        have moved: the request GitHub would redirect to, sent at once."""
        named = BY_NAME.match(url)
        if named is None:
            return url
        with self.lock:
            repository_id = self.ids.get(f"{named['owner']}/{named['name']}".lower())
        if repository_id is None:
            return url
        return f"{named['prefix']}/repositories/{repository_id}{named['rest']}"
