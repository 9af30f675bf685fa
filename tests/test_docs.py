"""The docs are tested: every SQL block is run by the test that names it, every script
they tell you to run exists, and every command line of the poller they show parses.
(`mkdocs build --strict`, in scripts/test, fails on a broken link or anchor.)"""

from __future__ import annotations

import os
import re
import shlex

import pytest

from poller.__main__ import parse_args
from support import DOCS, REPO_ROOT, sql_blocks

TESTS = "".join(path.read_text() for path in (REPO_ROOT / "tests").rglob("*.py"))


def shell_lines() -> list[tuple[str, str]]:
    """Each command of the docs' ```sh blocks (continuations joined, comments dropped),
    with the page it is on."""
    lines = []
    pages = [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    for page in pages:
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.S):
            for command in block.replace("\\\n", " ").splitlines():
                command = command.split(" #", 1)[0].strip()
                if command and not command.startswith("#"):
                    lines.append((page.name, command))
    return lines


@pytest.mark.parametrize("title", sorted(sql_blocks()))
def test_every_sql_block_is_run_by_a_test(title: str):
    # A block for one database of two is named with its database in brackets; the
    # test that runs both names the stem and picks the database.
    stem = title.split(" (")[0]
    assert f'"{title}"' in TESTS or f'"{stem} ({{kind}})"' in TESTS, title


def test_every_script_the_docs_name_exists_and_runs():
    named = {
        word
        for text in [p.read_text() for p in [REPO_ROOT / "README.md", *DOCS.glob("*.md")]]
        for word in re.findall(r"scripts/[a-z-]+", text)
    }
    assert named, "the docs name no script"
    for script in named:
        path = REPO_ROOT / script
        assert path.is_file() and os.access(path, os.X_OK), script


def test_every_poller_command_line_in_the_docs_parses():
    commands = [
        (page, command)
        for page, command in shell_lines()
        if "python -m poller" in command or "bin/shark-poller" in command
    ]
    assert len(commands) >= 5
    for page, command in commands:
        words = shlex.split(command)
        start = next(
            i for i, w in enumerate(words) if w == "poller" or w.endswith("bin/shark-poller")
        )
        args = parse_args(words[start + 1 :])  # exits 2, failing the test, if it does not
        assert args is not None, (page, command)
