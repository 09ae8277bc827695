"""docker-compose.yml, the Dockerfile and nginx.conf must match what the app really reads.

Docker does not run in CI, so these files are checked by reading them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ticker import config

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_services_are_redis_two_tickers_and_a_load_balancer() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "ticker", "lb"}
    assert services["ticker"]["deploy"]["replicas"] >= 2
    assert "ticker" in services["lb"]["depends_on"]


def test_redis_persists_with_an_append_only_file() -> None:
    redis = compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_ticker_environment_is_what_the_settings_read() -> None:
    env = compose()["services"]["ticker"]["environment"]
    assert set(env) <= set(config.ENV_VARS.values()), set(env) - set(config.ENV_VARS.values())
    settings = config.load({k: str(v) for k, v in env.items()})
    assert settings.host == "0.0.0.0"
    redis_host = urlsplit(settings.redis_url or "").hostname
    assert redis_host in compose()["services"], "TICKER_REDIS_URL must name the redis service"


def test_ports_agree_across_compose_nginx_and_dockerfile() -> None:
    port = config.load({k: str(v) for k, v in compose()["services"]["ticker"]["environment"].items()}).port
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(rf"server\s+ticker:{port};", nginx)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {port}" in dockerfile and f"TICKER_PORT={port}" in dockerfile
    lb = compose()["services"]["lb"]
    assert any(p.endswith(":80") for p in lb["ports"]) and "listen 80;" in nginx
    assert any(v.startswith("./deploy/nginx.conf:") for v in lb["volumes"])


def test_load_balancer_passes_websocket_upgrades_and_streams_sse() -> None:
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade;" in nginx
    assert "proxy_set_header Connection $connection_upgrade;" in nginx
    assert "proxy_http_version 1.1;" in nginx
    assert "proxy_buffering off;" in nginx
    limit = re.search(r"client_max_body_size (\d+)k;", nginx)
    assert limit and int(limit.group(1)) * 1024 >= config.DEFAULT_MAX_BODY_BYTES


def test_image_runs_the_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ticker"] == "ticker.cli:main"
    assert 'CMD ["ticker", "serve"]' in (ROOT / "Dockerfile").read_text()


def test_package_data_ships_every_file_the_server_reads() -> None:
    """A non-editable install (the Docker image's) must carry the pages, scripts and samples."""
    from fnmatch import fnmatch

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        name: ROOT / setuptools.get("package-dir", {}).get(name, name.replace(".", "/"))
        for name in setuptools["packages"]
    }
    missing = []
    for name, folder in folders.items():
        globs = setuptools["package-data"].get(name, [])
        files = [p.relative_to(folder).as_posix() for p in folder.glob("*") if p.is_file() and p.suffix != ".py"]
        missing += [f"{folder.relative_to(ROOT)}/{f}" for f in files if not any(fnmatch(f, g) for g in globs)]
    assert {"ticker.web", "ticker.lua"} <= set(folders) and (folders["ticker.web"] / "ticker.js").is_file()
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
