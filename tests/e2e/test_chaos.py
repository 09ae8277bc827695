"""A minute of chaos (``bench/chaos.py``): servers, Redis and clients killed, nothing lost, nothing twice.

The scenario runs as the command a person would run, ``python -m bench.chaos``;
``TICKER_CHAOS_SECONDS`` sets how long the faults go on (default 60). Its
figures (acknowledged, lost, duplicated, reconnect p50/p99) are printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import units

ROOT = Path(__file__).resolve().parents[2]


def test_a_minute_of_chaos_loses_nothing_and_repeats_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    seconds = int(os.environ.get("TICKER_CHAOS_SECONDS", "60"))
    done = subprocess.run(
        [sys.executable, "-m", "bench.chaos", f"--duration={seconds}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=units(seconds + 120),
    )
    with capsys.disabled():
        print("\n" + done.stdout.strip())
    assert done.returncode == 0, done.stdout + done.stderr
