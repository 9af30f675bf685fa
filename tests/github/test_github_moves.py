"""Moved repositories as one client learns them from redirects (``github_moves``)."""

from __future__ import annotations

import pytest

from poller.github.moves import Moves


@pytest.mark.parametrize(
    ("requested", "location", "learnt"),
    [
        ("/repos/Octo/Demo/actions/runs?created=x", "/repositories/42/actions/runs?created=x", 42),
        ("/repos/octo/demo", "https://api.github.com/repositories/42", 42),
        (
            "/api/v3/repos/octo/demo/branches",
            "https://ghe.example/api/v3/repositories/7/branches",
            7,
        ),
        ("/orgs/octo/repos", "/organizations/9/repos", None),  # not a repository
        ("/repos/octo/demo/commits", "/repos/octo/other/commits", None),  # not by id
    ],
)
def test_a_redirect_to_an_id_teaches_the_move(requested, location, learnt):
    moves = Moves()
    moves.note(requested, location)
    assert moves.moved_id("octo/demo") == learnt


def test_later_requests_go_straight_to_the_id_with_their_query():
    moves = Moves()
    moves.note("/repos/octo/demo/actions/runs", "/repositories/42/actions/runs")
    assert (
        moves.rewrite("/repos/OCTO/demo/actions/runs/5/jobs?filter=all&per_page=100")
        == "/repositories/42/actions/runs/5/jobs?filter=all&per_page=100"
    )
    assert moves.rewrite("/repos/octo/demo?x=1") == "/repositories/42?x=1"
    assert moves.rewrite("/repos/octo/demo-2/branches") == "/repos/octo/demo-2/branches"
    assert moves.rewrite("/rate_limit") == "/rate_limit"
