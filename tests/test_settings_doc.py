"""docs/settings.md against ticker/config.py: every variable it reads has one row, with its true default."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any

from ticker import config
from ticker.cli import _parser
from ticker.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "settings.md"
ROW = re.compile(r"^\| `(TICKER_[A-Z0-9_]+)` \|([^|]*)\|([^|]*)\|", re.MULTILINE)


def rows() -> dict[str, tuple[str, str]]:
    """Variable -> (flag cell, default cell) of the table."""
    found: dict[str, tuple[str, str]] = {}
    for match in ROW.finditer(TABLE.read_text(encoding="utf-8")):
        assert match.group(1) not in found, f"docs/settings.md has two rows for {match.group(1)}"
        found[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    return found


def read_by_config() -> set[str]:
    """Every TICKER_* name config.py reads: the parsed settings and any it names outright."""
    source = Path(config.__file__).read_text(encoding="utf-8")
    return set(config.ENV_VARS.values()) | set(re.findall(r"TICKER_[A-Z0-9_]+", source))


def shown(value: Any) -> str | None:
    """A default as the table writes it; ``None`` where the table explains it in words."""
    if value is None or value is dataclasses.MISSING or isinstance(value, Path):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def flags() -> set[str]:
    def walk(parser: argparse.ArgumentParser) -> set[str]:
        found = set()
        for action in parser._actions:
            found.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    found |= walk(child)
        return found

    return walk(_parser())


def test_every_variable_config_reads_has_a_row() -> None:
    table = rows()
    fields = {field.name: field for field in dataclasses.fields(Settings)}
    missing = []
    for var in sorted(read_by_config() - set(table)):
        name = next((n for n, v in config.ENV_VARS.items() if v == var), None)
        default = shown(fields[name].default) if name in fields else None
        missing.append(f"{var} (Settings.{name}, default {default})" if name else var)
    assert not missing, "docs/settings.md has no row for " + ", ".join(missing) + ": add one to its table"
    stale = sorted(set(table) - read_by_config())
    assert not stale, f"docs/settings.md lists {', '.join(stale)}, which ticker/config.py does not read"


def test_defaults_and_flags_in_the_table_are_true() -> None:
    table = rows()
    known_flags = flags()
    for field in dataclasses.fields(Settings):
        var = config.ENV_VARS.get(field.name)
        if var is None or var not in table:
            continue
        flag, default = table[var]
        want = shown(field.default)
        if want is not None:
            assert default.strip("`") == want, f"docs/settings.md: {var} defaults to {want}, not {default}"
        for named in re.findall(r"`(--[a-z-]+)`", flag):
            assert named in known_flags, f"docs/settings.md: {var}'s flag {named} is not a ticker option"


def test_the_table_is_the_only_one() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if doc == TABLE:
            continue
        assert not ROW.search(doc.read_text(encoding="utf-8")), f"{doc.name} has a settings row; it goes in settings.md"
    assert "settings.md" in (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "settings.md" in (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
