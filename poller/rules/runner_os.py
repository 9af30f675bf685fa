"""Which OS a job ran on, in GitHub's own ``runner.os`` names: ``Linux``, ``Windows``,
``macOS``.

A job payload carries the labels that ``runs-on`` asked for, not the runner's OS. Hosted
images name it (``ubuntu-24.04``, ``windows-2022``, ``macos-14``); self-hosted fleets
often do so somewhere inside the label (IREE's ``azure-windows-scale``,
``ah-ubuntu_22_04-c7g_4x-50``), and sometimes not at all (``nodai-amdgpu-mi300-x86-64``).
So, for each job, in this order:

1. the operator's map in ``config.toml`` (label globs to an OS), which is explicit;
2. an OS word anywhere in a label (``ubuntu``, ``windows``, ``macos``, ...);
3. what GitHub says about the runner that ran the job (its ``os``), where the token may
   read the repository's self-hosted runners (see ``github.GitHub.runners``).

A job whose labels name two OSes, or none that anything resolves, stays unknown. Nothing
guesses: unknown jobs are counted, and ``status`` lists their labels so the operator
knows what to map. Everything here is pure.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from poller.rules.payloads import JobItem, RunnerItem

LINUX, WINDOWS, MACOS = "Linux", "Windows", "macOS"
OS_NAMES = (LINUX, WINDOWS, MACOS)
_BY_LOWER = {name.lower(): name for name in OS_NAMES}

# Whole words inside a label (split at anything but a letter or a digit).
OS_WORDS = {
    "linux": LINUX,
    "ubuntu": LINUX,
    "debian": LINUX,
    "fedora": LINUX,
    "centos": LINUX,
    "rhel": LINUX,
    "rocky": LINUX,
    "almalinux": LINUX,
    "alpine": LINUX,
    "windows": WINDOWS,
    "win": WINDOWS,
    "win32": WINDOWS,
    "win64": WINDOWS,
    "macos": MACOS,
    "osx": MACOS,
    "mac": MACOS,
    "darwin": MACOS,
}
# Parts of a word that name an OS however they are glued on (manylinux2014, macos14).
OS_STEMS = (("linux", LINUX), ("ubuntu", LINUX), ("windows", WINDOWS), ("macos", MACOS))
_WORD = re.compile(r"[a-z0-9]+")


def canonical_os(name: str | None) -> str | None:
    """GitHub's spelling of an OS name given in any case (the runners API says ``linux``,
    an operator may write ``macos``); None for anything else."""
    return _BY_LOWER.get(name.strip().lower()) if name else None


def join_oses(names: Iterable[str]) -> str | None:
    """Distinct OS names sorted without case and comma-joined (``Linux,macOS,Windows``),
    the order the lowercase values of earlier versions had; None when there are none."""
    return ",".join(sorted(set(names), key=str.lower)) or None


def word_os(label: str) -> str | None:
    """The OS that words inside one label name, if exactly one does."""
    found = set()
    for word in _WORD.findall(label.lower()):
        if word in OS_WORDS:
            found.add(OS_WORDS[word])
            continue
        found.update(name for stem, name in OS_STEMS if stem in word)
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True)
class LabelMap:
    """``config.toml``'s label globs to OS names, matched without case, first match wins.
    A repository's own entries come before the global ones."""

    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, *tables: Mapping[str, str]) -> LabelMap:
        return cls(tuple((glob, os) for table in tables for glob, os in table.items()))

    def os_of(self, label: str) -> str | None:
        lowered = label.lower()
        for glob, os in self.rules:
            if fnmatch.fnmatchcase(lowered, glob.lower()):
                return os
        return None


@dataclass(frozen=True)
class Runner:
    """A self-hosted runner as GitHub's runners listing describes it."""

    id: int | None
    name: str | None
    os: str | None


def labels_os(labels: Iterable[str], label_map: LabelMap = LabelMap()) -> str | None:
    """The OS a job's labels name: by the map where it matches a label, else by words.
    None when they name none, or more than one."""
    labels = [str(label) for label in labels]
    mapped = {os for label in labels if (os := label_map.os_of(label))}
    if mapped:
        return mapped.pop() if len(mapped) == 1 else None
    named = {os for label in labels if (os := word_os(label))}
    return named.pop() if len(named) == 1 else None


def runner_from(item: RunnerItem) -> Runner:
    """A runner of GitHub's listing, with its OS: its ``os``, else the one its labels
    name (they include Linux, Windows or macOS where ``os`` is missing)."""
    labels = (label.get("name", "") for label in item.get("labels") or ())
    return Runner(item["id"], item.get("name"), canonical_os(item.get("os")) or labels_os(labels))


def runner_of(job: JobItem, runners: Iterable[Runner]) -> Runner | None:
    """The runner that ran ``job``, by id, else by name (ephemeral ones are gone)."""
    runner_id, runner_name = job.get("runner_id"), job.get("runner_name")
    for runner in runners:
        if runner_id is not None and runner.id == runner_id:
            return runner
    for runner in runners:
        if runner_name and runner.name == runner_name:
            return runner
    return None
