"""A job's OS in GitHub's runner.os names, from the labels real fleets use."""

from __future__ import annotations

import json

import pytest

from poller.config import loader as config_module
from poller.rules.runner_os import LabelMap, Runner, canonical_os, join_oses, labels_os, runner_of
from support import REPO_ROOT

# What IREE's and GitHub-hosted jobs ask for, with the OS each runs on.
REAL_LABELS = [
    (["ubuntu-24.04"], "Linux"),
    (["ubuntu-latest"], "Linux"),
    (["ubuntu-24.04-arm"], "Linux"),
    (["azure-linux-scale"], "Linux"),
    (["ah-ubuntu_22_04-c7g_4x-50"], "Linux"),  # IREE's ARM64 CI
    (["self-hosted", "Linux", "X64"], "Linux"),
    (["manylinux2014"], "Linux"),
    (["windows-2022"], "Windows"),
    (["azure-windows-scale"], "Windows"),  # IREE's Windows MSVC CI
    (["self-hosted", "Windows", "X64"], "Windows"),
    (["macos-14"], "macOS"),
    (["macos-14-xlarge"], "macOS"),
    (["self-hosted", "macOS", "ARM64"], "macOS"),
    (["osx"], "macOS"),
    # Names that say nothing about the OS: the map or the runner must tell.
    (["nodai-amdgpu-mi300-x86-64"], None),
    (["self-hosted", "gpu"], None),
    (["X64"], None),
    ([], None),
    # Two OSes in one job's labels is no answer at all: never guess.
    (["windows-2022", "ubuntu-22.04"], None),
    # Words, not letters: "darwin" and "winter" do not contain the word "win".
    (["winter-runner"], None),
]


@pytest.mark.parametrize(("labels", "expected"), REAL_LABELS)
def test_labels_name_the_os_anywhere_in_a_label(labels, expected):
    assert labels_os(labels) == expected


IREE_MAP = LabelMap.of({"nodai-amdgpu-*": "Linux"}, {"*": "Windows"})


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["nodai-amdgpu-mi300-x86-64"], "Linux"),
        (["NODAI-AMDGPU-MI250"], "Linux"),  # globs match without case
        # The map is explicit, so it wins over words; first match wins.
        (["ubuntu-22.04"], "Windows"),
        ([], None),
    ],
)
def test_the_label_map_comes_first_and_the_first_match_wins(labels, expected):
    assert labels_os(labels, IREE_MAP) == expected


def test_names_are_githubs_and_several_are_sorted_without_case():
    assert canonical_os("linux") == "Linux"
    assert canonical_os("MACOS") == "macOS"
    assert canonical_os("bsd") is None
    assert join_oses(["Windows", "Linux", "macOS", "Linux"]) == "Linux,macOS,Windows"
    assert join_oses([]) is None


def test_the_runner_is_found_by_id_then_by_name():
    runners = [Runner(7, "mi300-a", "Linux"), Runner(8, "mi300-b", "Windows")]
    assert runner_of({"runner_id": 8, "runner_name": "mi300-a"}, runners) == runners[1]
    assert runner_of({"runner_id": 99, "runner_name": "mi300-a"}, runners) == runners[0]
    assert runner_of({"runner_id": None, "runner_name": "gone"}, runners) is None


FLEET = json.loads((REPO_ROOT / "tests" / "fixtures" / "fleet-runner-labels.json").read_text())
DEPLOYMENT = REPO_ROOT / "systemd" / "config.toml"


@pytest.mark.parametrize(
    "entry", FLEET["label_sets"], ids=[",".join(e["labels"]) for e in FLEET["label_sets"]]
)
def test_the_dashboards_deployment_resolves_every_label_set_of_its_fleet(entry):
    """systemd/config.toml, as the product loads it, gives every label set that the five
    repositories' workflows use the OS of the machines it names, in each repository."""
    config = config_module.load(DEPLOYMENT)
    assert sorted(repo.name for repo in config.repos) == [
        "iree-org/iree", "iree-org/iree-test-suites", "iree-org/iree-turbine",
        "nod-ai/SHARK-TestSuite", "nod-ai/shark-ai",
    ]  # fmt: skip
    for repo in config.repos:
        assert labels_os(entry["labels"], config.label_map(repo)) == entry["os"], repo.name


def test_a_glob_over_both_scale_sets_would_store_ireees_linux_jobs_as_windows():
    """Why the map's globs name one kind of machine: the map wins over label words."""
    wrong = LabelMap.of({"azure-*-scale": "Windows"})
    assert labels_os(["azure-linux-scale"], wrong) == "Windows"
    assert labels_os(["azure-linux-scale"]) == "Linux"
