"""docs/configuration.md's table of keys is the code's: every key the loader accepts, with
the type its checker takes and the default its settings class holds, and no other."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from typing import Any

from poller.config import checks, settings
from poller.config.loader import ORG_KEYS, REPO_KEYS, SECTIONS
from support import DOCS

SECTION_CLASSES = {
    "github": settings.GitHubConfig,
    "database": settings.DatabaseConfig,
    "schedule": settings.ScheduleConfig,
    "sync": settings.SyncConfig,
    "metrics": settings.MetricsConfig,
}
# Defaults the table says in words: computed, required, or another key's.
IN_WORDS = {
    "repos[].name": "(required)",
    "orgs[].name": "(required)",
    "metrics.stale_after_minutes": "3 intervals",
    "metrics.listen": "none (no port)",
    "[runner_os]": "empty",
    "orgs[].installation_id": "`github.installation_id`",
    "repos[].installation_id": "`github.installation_id`",
}
ORG_LIKE_REPOS = "as for `[[repos]]`"


def code_keys() -> dict[str, tuple[Any, Any]]:
    """Every key: its checker, and its default."""
    keys: dict[str, tuple[Any, Any]] = {}
    for section, checkers in SECTIONS.items():
        defaults = {f.name: f.default for f in dataclasses.fields(SECTION_CLASSES[section])}
        for key, checker in checkers.items():
            keys[f"{section}.{key}"] = (checker, defaults[key])
    repo = {f.name: f.default for f in dataclasses.fields(settings.RepoConfig)}
    org = {f.name: f.default for f in dataclasses.fields(settings.OrgConfig)}
    for key, checker in REPO_KEYS.items():
        keys[f"repos[].{key}"] = (checker, repo.get(key))
    for key, checker in ORG_KEYS.items():
        keys[f"orgs[].{key}"] = (checker, org.get(key, repo.get(key)))
    keys["[runner_os]"] = (checks.os_map, ())
    return keys


def table() -> list[tuple[list[str], str, str]]:
    """The rows of the table: their keys, type and default."""
    text = (DOCS / "configuration.md").read_text()
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`") or cells[0] == "`key`":
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        prefix = names[0].split(".")[0] + "." if "." in names[0] else ""
        keys = [name if "." in name or name.startswith("[") else prefix + name for name in names]
        rows.append((keys, cells[1], cells[2]))
    return rows


def value(text: str) -> Any:
    """A default as the table writes it, as Python would hold it."""
    if text == "none":
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def test_the_table_names_every_key_and_only_those():
    documented = [key for keys, _, _ in table() for key in keys]
    assert len(documented) == len(set(documented)), "a key twice"
    assert set(documented) == set(code_keys())


def test_each_keys_type_and_default_are_the_codes():
    keys = code_keys()
    for names, kind, default in table():
        if default == ORG_LIKE_REPOS:
            for name in names:
                repo_twin = name.replace("orgs[]", "repos[]")
                assert keys[name] == keys[repo_twin], name
            continue
        expected_kind = ", ".join(dict.fromkeys(checks.TYPES[keys[n][0]] for n in names))
        assert kind == expected_kind, names
        written = [part.strip() for part in default.split(", `")] if len(names) > 1 else [default]
        written = written if len(written) == len(names) else written * len(names)
        for name, text in zip(names, written, strict=True):
            if name in IN_WORDS:
                assert text == IN_WORDS[name], name
                continue
            doc = value(text.strip("`"))
            checker, code = keys[name]
            if checker is checks.os_map:  # pairs, read from a TOML table
                code = dict(code)
            code = list(code) if isinstance(code, tuple) else code
            assert doc == code, f"{name}: the docs say {text}, the code {code!r}"
