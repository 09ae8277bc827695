"""A staff token for a benchmark's producer, made as an editor would: ``ticker token create``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping


def create_token(env: Mapping[str, str], *, name: str = "bench", scope: str = "publish") -> str:
    """A new token (replacing one of that name) for the Redis and prefix that ``env`` names
    (``TICKER_REDIS_URL``, ``TICKER_PREFIX``)."""
    command = [sys.executable, "-m", "ticker.cli", "token", "create", "--name", name, "--scope", scope, "--replace"]
    done = subprocess.run(command, env=dict(env), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ticker token create failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]
