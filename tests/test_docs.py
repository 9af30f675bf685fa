"""The docs are tested: every SQL block is run by the test that names it, every script
they tell you to run exists, every command line of the poller they show parses, and the
install block runs. (`mkdocs build --strict`, in scripts/test, fails on a broken link or
anchor.)"""

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


# What the install block asks that a test cannot do: the system's packages, an editor, a
# typed password, and systemd itself (tests/service/test_systemd.py runs the unit).
NOT_RUN = ("apt-get ", "$EDITOR ", "read ", "systemctl ", "journalctl ")


def test_the_install_blocks_commands_install_a_poller_that_systemd_accepts(tmp_path):
    """docs/install.md's install block, run as written, with /opt and /etc under a
    temporary root: pip installs this clone from the package index, as it would on the
    VM, and the unit it installs verifies against the program it installed."""
    import shutil
    import subprocess

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        reason = "systemd-analyze is not installed (Debian: apt-get install systemd)"
        if os.environ.get("SHARK_POLLER_REQUIRE_SYSTEMD"):
            pytest.fail(reason)
        pytest.skip(reason)
    [block] = [
        block
        for block in re.findall(r"```sh\n(.*?)```", (DOCS / "install.md").read_text(), re.S)
        if "python3 -m venv /opt/shark-poller/venv" in block
    ]
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)  # there on any systemd machine
    run, skipped = [], []
    for line in block.replace("\\\n", " ").splitlines():
        command = line.split(" #", 1)[0].strip()
        if not command or command.startswith("#"):
            continue
        if command.startswith(NOT_RUN):
            skipped.append(command.split()[0])
            continue
        for path in ("/opt/shark-poller", "/etc/shark-poller", "/etc/systemd/system"):
            command = command.replace(path, f"{root}{path}")
        run.append(command.replace("/path/to/shark-poller", str(REPO_ROOT)))
    assert skipped == ["apt-get", "$EDITOR", "read", "systemctl", "systemctl", "journalctl"]
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(run)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    program = root / "opt/shark-poller/venv/bin/shark-poller"
    helped = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--once" in helped.stdout, helped.stderr
    assert (root / "etc/shark-poller/config.toml").read_text() == (
        REPO_ROOT / "config.toml"
    ).read_text()
    assert oct((root / "etc/shark-poller/github_token").stat().st_mode)[-3:] == "600"
    unit = root / "etc/systemd/system/shark-poller.service"
    unit.write_text(unit.read_text().replace("/opt/shark-poller", f"{root}/opt/shark-poller"))
    verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
