"""Prints the lowest versions pyproject.toml allows, as exact pins for ``pip install``.

Every runtime dependency, and each test tool named as an argument (those the
lowest-versions pass runs), must declare a ``>=`` lower bound;
the pass installs exactly that version, so a bound that is not true fails
the pass instead of failing a user.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REQUIREMENT = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)\s*(?:,\s*<[^,;\s]+\s*)?(;.*)?$"
)


def pins(requirements: list[str]) -> list[str]:
    """``name[extras]==lowest`` for each ``name[extras]>=lowest`` requirement."""
    pinned = []
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"lowest_pins: {requirement!r} needs a '>=' lower bound (and at most a '<' upper one)")
        name, extras, version, marker = match.groups()
        pinned.append(f"{name}{extras or ''}=={version}{marker or ''}")
    return pinned


def main(tools: list[str]) -> None:
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    test = {REQUIREMENT.sub(r"\1", r).lower(): r for r in project["optional-dependencies"]["test"]}
    unknown = [tool for tool in tools if tool.lower() not in test]
    if unknown:
        raise SystemExit(f"lowest_pins: {', '.join(unknown)} not in the test extra")
    print("\n".join(pins([*project["dependencies"], *(test[tool.lower()] for tool in tools)])))


if __name__ == "__main__":
    main(sys.argv[1:])
