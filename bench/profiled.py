"""Runs Ticker's command line with cProfile switched on by SIGUSR1 and off by SIGUSR2, which
writes that window's statistics to ``$BENCH_PROFILE-1.prof``, ``-2.prof`` and so on:
``bench/fanout.py --profile`` profiles only its measuring windows, not start-up and connecting.
Read them with ``python -m pstats``."""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from types import FrameType

from ticker.cli import main


def run() -> int:
    base = os.environ["BENCH_PROFILE"]
    windows: list[cProfile.Profile] = []

    def start(signum: int, frame: FrameType | None) -> None:
        windows.append(cProfile.Profile())
        windows[-1].enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        windows[-1].disable()
        windows[-1].dump_stats(f"{base}-{len(windows)}.prof")

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return main()


if __name__ == "__main__":
    sys.exit(run())
