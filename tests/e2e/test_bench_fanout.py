"""The fan-out benchmark at a tiny scale: it runs end to end and its checks hold.

Behaviour only (every event delivered once, the figures printed), never timings:
this runs on busy shared machines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import units

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("naive", "broadcast", "ours", "ours-asgi")


def test_fanout_benchmark_runs_every_server_at_tiny_scale(tmp_path: Path) -> None:
    report = tmp_path / "runs.json"
    command = [
        sys.executable,
        "-m",
        "bench.fanout",
        "--clients",
        "20",
        "--rate",
        "5",
        "--duration",
        "2",
        "--storm",
        "--storm-events",
        "5",
        "--drain",
        str(units(30)),
        "--servers",
        ",".join(SERVERS),
        "--json",
        str(report),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=units(240), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads(report.read_text())
    assert sorted(run["server"] for run in runs) == sorted(SERVERS)
    for run in runs:
        figures, notes = run["figures"], run["notes"]
        assert figures, (run["server"], notes)
        assert figures["connected"] == 20, (run["server"], notes)
        assert figures["lost"] == 0, (run["server"], notes)
        assert figures["duplicates"] == 0, (run["server"], notes)
        assert figures["delivered"] == figures["expected"] == 10 * 21, (run["server"], notes)
        assert figures["storm_caught_up"] == 21, (run["server"], notes)
        assert figures["storm_lost"] == 0, (run["server"], notes)
        assert figures["storm_duplicates"] == 0, (run["server"], notes)
        for key in (
            "deliveries_s",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "cpu_s_per_1k",
            "rss_mib",
            "idle_kib_per_conn",
            "loadgen_core",
            "storm_redis_cmds",
        ):
            assert figures[key] is not None, (run["server"], key)
    assert "medians of 1 run(s)" in done.stdout
    for server in SERVERS:
        assert f"\n{server:>9}" in done.stdout or f"\n{server}" in done.stdout
    assert "ours/naive: CPU per delivery" in done.stdout
