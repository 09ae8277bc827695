"""Fuzzing: Schemathesis generates requests from the running server's ``/openapi.json``.

Every check but one is on (see the command): no 500, every status, header and body as documented, what
the document allows is accepted, what it forbids is refused, and the stateful
phase chains create, read, edit and retract through the document's links. A
failure prints Schemathesis' report with a ``curl`` line that reproduces it.
The run is bounded by ``TICKER_FUZZ_SECONDS`` (default 45); each run draws new
cases, and the seed to repeat one is in the report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ServerThread, units

DEFAULT_SECONDS = 45


def test_the_api_keeps_every_promise_of_its_openapi_document(
    server: ServerThread, admin_token: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seconds = int(os.environ.get("TICKER_FUZZ_SECONDS", DEFAULT_SECONDS))
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        f"--config-file={Path(__file__).parent / 'schemathesis.toml'}",
        "run",
        f"{server.url}/openapi.json",
        "--checks=all",
        # A retraction is a tombstone, never a delete: the item's history (staff only) still
        # answers 200 after DELETE, as the audit trail, and Schemathesis takes any sub-path of a
        # deleted item for the item itself. GET /api/items/{id} answering 404 once retracted is
        # tested in tests/e2e/test_api.py.
        "--exclude-checks=use_after_free",
        f"--max-time={seconds}",
        "--workers=1",
        f"--header=Authorization: Bearer {admin_token}",
        "--output-truncate=false",
        f"--report-dir={tmp_path}",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=units(seconds + 60), env={**os.environ, "NO_COLOR": "1"}
    )
    generated = re.search(r"(\d+) generated", done.stdout)
    assert done.returncode == 0 and generated, done.stdout + done.stderr
    with capsys.disabled():
        print(f"\nschemathesis: {generated.group(1)} cases, every check passed")
