"""docker-compose.yml, the Dockerfile and nginx.conf must match what the app really reads.

Docker does not run in CI, so these files are checked by reading them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ticker import config
from ticker.proxies import Networks

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def services(prefix: str) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in compose()["services"].items() if name.startswith(prefix)}


def ticker_env(name: str = "ticker-1") -> dict[str, str]:
    return {k: str(v) for k, v in compose()["services"][name]["environment"].items()}


def nginx_conf() -> str:
    return (ROOT / "deploy" / "nginx.conf").read_text()


def address(service: dict[str, Any]) -> str:
    value: str = service["networks"]["ticker"]["ipv4_address"]
    return value


def test_services_are_redis_with_two_replicas_three_sentinels_two_tickers_and_nginx() -> None:
    assert set(compose()["services"]) == {
        "redis-primary",
        "redis-replica-1",
        "redis-replica-2",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
        "ticker-1",
        "ticker-2",
        "lb",
    }
    assert set(compose()["services"]["lb"]["depends_on"]) == set(services("ticker-"))


def test_every_service_has_a_fixed_address_on_one_subnet() -> None:
    subnet = ip_network(compose()["networks"]["ticker"]["ipam"]["config"][0]["subnet"])
    addresses = [address(spec) for spec in compose()["services"].values()]
    assert len(set(addresses)) == len(addresses)
    assert all(ip_address(a) in subnet for a in addresses)


def test_redis_persists_and_the_replicas_follow_the_primary() -> None:
    conf = (ROOT / "deploy" / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M) and re.search(r"^appendfsync everysec$", conf, re.M)
    primary = compose()["services"]["redis-primary"]
    replicas = list(services("redis-replica-").values())
    assert len(replicas) == 2, "two replicas: after a failover the new primary still has one to wait for"
    for redis in (primary, *replicas):
        assert "/usr/local/etc/redis/redis.conf" in redis["command"]
        assert any(v.startswith("./deploy/redis.conf:/usr/local/etc/redis/redis.conf") for v in redis["volumes"])
        assert any(v.endswith(":/data") for v in redis["volumes"])
    for replica in replicas:
        at = replica["command"].index("--replicaof")
        assert replica["command"][at + 1 : at + 3] == [address(primary), "6379"]


def test_sentinels_watch_the_primary_under_the_name_ticker_asks_for() -> None:
    conf = (ROOT / "deploy" / "sentinel.conf").read_text()
    monitor = re.search(r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", conf, re.M)
    assert monitor, "sentinel.conf must monitor the primary"
    name, host, port, quorum = monitor.groups()
    assert (host, port) == (address(compose()["services"]["redis-primary"]), "6379")
    sentinels = services("sentinel-")
    assert len(sentinels) == 3 and int(quorum) == 2
    assert re.search(r"^port 26379$", conf, re.M)
    target = config.parse_redis_url(ticker_env()["TICKER_REDIS_URL"])
    assert target.kind == "sentinel" and target.service == name
    assert sorted(target.nodes) == sorted((sentinel, 26379) for sentinel in sentinels)


def test_ticker_environment_is_what_the_settings_read() -> None:
    envs = [ticker_env(name) for name in services("ticker-")]
    assert all(env == envs[0] for env in envs)
    env = envs[0]
    assert set(env) <= set(config.ENV_VARS.values()), set(env) - set(config.ENV_VARS.values())
    settings = config.load(env)
    assert settings.host == "0.0.0.0" and settings.workers >= 2
    # Acknowledged writes survive a failover, and there are that many replicas to wait for.
    assert 1 <= settings.min_replicas < len(services("redis-replica-"))


def test_the_servers_trust_nginx_and_only_nginx() -> None:
    proxies = Networks.parse(config.load(ticker_env()).trusted_proxies)
    assert address(compose()["services"]["lb"]) in proxies
    others = [address(spec) for name, spec in compose()["services"].items() if name != "lb"]
    assert not [a for a in others if a in proxies]


def test_the_public_url_is_where_nginx_serves_tls() -> None:
    public = urlsplit(config.load(ticker_env()).public_url or "")
    lb = compose()["services"]["lb"]
    assert public.scheme == "https" and f"{public.port}:443" in lb["ports"]


def test_ports_agree_across_compose_nginx_and_dockerfile() -> None:
    port = config.load(ticker_env()).port
    nginx = nginx_conf()
    upstream = re.findall(r"^\s*server\s+(\S+):(\d+)\s+max_fails=0;", nginx, re.M)
    assert sorted(upstream) == sorted((name, str(port)) for name in services("ticker-"))
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {port}" in dockerfile and f"TICKER_PORT={port}" in dockerfile
    lb = compose()["services"]["lb"]
    assert {p.rsplit(":", 1)[1] for p in lb["ports"]} == {"80", "443"}
    https = next(p.split(":")[0] for p in lb["ports"] if p.endswith(":443"))
    assert "listen 80;" in nginx and "listen 443 ssl" in nginx and f"https://$host:{https}$request_uri" in nginx
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in lb["volumes"]


def test_nginx_passes_websockets_streams_sse_and_never_benches_a_server() -> None:
    nginx = nginx_conf()
    for line in (
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header Host $http_host;",
        "proxy_http_version 1.1;",
        "proxy_buffering off;",
        "proxy_next_upstream error timeout;",
    ):
        assert line in nginx, line
    connect = re.search(r"proxy_connect_timeout (\d+)s;", nginx)
    assert connect and int(connect.group(1)) <= 2, "a gone server must not hold requests long"
    limit = re.search(r"client_max_body_size (\d+)k;", nginx)
    assert limit and int(limit.group(1)) * 1024 >= config.DEFAULT_MAX_BODY_BYTES


def test_tls_with_hsts_from_the_certificate_the_script_makes() -> None:
    nginx = nginx_conf()
    assert re.search(r'add_header Strict-Transport-Security "max-age=\d+" always;', nginx)
    mount = next(v for v in compose()["services"]["lb"]["volumes"] if v.startswith("./deploy/certs:"))
    inside = mount.split(":")[1]
    script = (ROOT / "deploy" / "make-cert").read_text()
    for kind in ("certificate", "certificate_key"):
        path = re.search(rf"ssl_{kind} (\S+);", nginx)
        assert path and path.group(1).startswith(inside + "/")
        assert f'"$dir/{Path(path.group(1)).name}"' in script
    assert "deploy/certs/" in (ROOT / ".gitignore").read_text()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/make-cert, run for real."""
    directory = tmp_path_factory.mktemp("certs")
    done = subprocess.run([ROOT / "deploy" / "make-cert", "ticker.example", directory], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (directory / "ticker.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (directory / "ticker.key").stat().st_mode & 0o077 == 0
    return directory


def test_nginx_accepts_the_shipped_configuration(certificate: Path, tmp_path: Path) -> None:
    """``nginx -t`` on deploy/nginx.conf, with the servers' names and the certificates made local."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("this test needs nginx: run scripts/test (it installs Debian's nginx-light)", pytrace=False)
    conf = nginx_conf().replace("/etc/nginx/certs", str(certificate))
    for name in services("ticker-"):
        conf = conf.replace(f"{name}:", "127.0.0.1:")
    (tmp_path / "default.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n"
        + "".join(
            f"    {kind}_temp_path {tmp_path}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"    include {tmp_path}/default.conf;\n}}\n"
    )
    done = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_image_runs_the_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ticker"] == "ticker.cli:main"
    assert 'CMD ["ticker", "serve"]' in (ROOT / "Dockerfile").read_text()


def test_every_python_package_is_listed() -> None:
    """``packages`` is an explicit list: a new subpackage left out would be missing from the wheel."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ticker").rglob("__init__.py")}
    assert "ticker.store" in found
    assert found <= listed, f"not in [tool.setuptools] packages: {sorted(found - listed)}"


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
    dockerfile = (ROOT / "Dockerfile").read_text()
    for top in {folder.relative_to(ROOT).parts[0] for folder in folders.values()}:
        assert f"COPY {top} ./{top}" in dockerfile, f"the image must copy {top}/"
