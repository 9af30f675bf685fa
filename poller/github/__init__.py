"""The only room that talks to GitHub: PyGithub's requester with our retry policy,
conditional requests, redirects followed whole, GitHub's clock, the primary limit, the
request governor, App installation tokens, and one client pool per credential. It hands
out typed answers (``types``). May import ``config``, ``rules`` and the shared modules,
and ``pool`` the ETag store it builds each client with."""
