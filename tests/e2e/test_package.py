"""The distribution as a packager ships it: sdist and wheel built and checked with twine, the
wheel installed in a fresh virtualenv, and the installed ``ticker`` serving the pages from a
folder that holds no source."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support import units, wait_for
from ticker.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = "ticker-live"


def run(*args: str | Path, cwd: Path = ROOT, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=units(timeout), check=False
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist, and the wheel built from it (as ``python -m build`` does by default)."""
    out = tmp_path_factory.mktemp("dist")
    # Without isolation: the test environment already holds the declared build backend, and an
    # isolated build would install it twice more on every run.
    # Run from the output folder: a build/ folder a local build left in the checkout would
    # otherwise stand in for the "build" package.
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, cwd=out)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_both_pass_twine_and_carry_the_license(dists: dict[str, Path]) -> None:
    report = run(sys.executable, "-m", "twine", "check", "--strict", dists["sdist"], dists["wheel"])
    assert report.count("PASSED") == 2, report
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = wheel.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = wheel.read(metadata).decode()
    assert f"Name: {DISTRIBUTION}\n" in text and "License-Expression: MIT\n" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "ticker/cli.py" in names and any(n.endswith("/ticker.js") for n in names)
    with tarfile.open(dists["sdist"]) as sdist:
        assert any(n.endswith("/LICENSE") for n in sdist.getnames())


@pytest.fixture(scope="module")
def installed(dists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with nothing but the wheel and its dependencies; its ``bin`` folder."""
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--disable-pip-version-check",
        dists["wheel"],
    )
    return venv / "bin"


def test_the_installed_wheel_serves_the_pages_from_another_folder(
    installed: Path, settings: Settings, tmp_path: Path
) -> None:
    assert settings.redis_url
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Nothing of the checkout: no PYTHONPATH, no TICKER_* of the test run, a folder with no source.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKER_", "PYTHON", "COV_", "VIRTUAL_ENV"))}
    env.update(TICKER_REDIS_URL=settings.redis_url, TICKER_PREFIX=settings.prefix, TICKER_STATE_DIR=str(tmp_path))
    assert run(installed / "ticker", "--version", cwd=elsewhere).startswith("ticker ")
    server = subprocess.Popen(
        [installed / "ticker", "serve", "--port", "0", "--log-level", "warning"],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        found = re.search(r"Ticker serving on (http://\S+)", banner)
        assert found, banner + (server.stderr.read() if server.stderr else "")
        with httpx.Client(base_url=found.group(1), timeout=units(10)) as http:
            wait_for(lambda: http.get("/readyz").status_code == 200, timeout=30, what="the installed server")
            for page in ("/", "/desk"):
                answer = http.get(page)
                assert answer.status_code == 200 and "text/html" in answer.headers["content-type"], page
                assets = re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css|svg)(?:\?[^"]*)?)"', answer.text)
                assert assets, f"{page} names no script or stylesheet"
                for asset in assets:
                    assert http.get(asset).status_code == 200, asset
            assert http.get("/api/items").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=units(30))
    assert server.returncode == 0 and "Traceback" not in errors, errors
