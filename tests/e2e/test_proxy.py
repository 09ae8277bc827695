"""A real nginx in front of two ``ticker serve`` processes: client addresses through a trusted proxy.

nginx connects upstream from 127.0.0.2 (``proxy_bind``), an address that
stands for a proxy on another host, and the servers trust only it
(``TICKER_TRUSTED_PROXIES=127.0.0.2``). Clients bind to their own source
addresses (127.0.1.x) so nginx sees each as a different host. The abuse cases
(spoofed ``X-Forwarded-For``, foreign ``Origin``, a direct peer lying about
its address) run here too, each under a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.clients import ServerProcess, lines
from tests.conftest import make_token
from tests.support import bound_socket, run, units, wait_for
from ticker.auth import Scope
from ticker.config import Settings
from ticker.store import Store, connect

PROXY = "127.0.0.2"
CAP = 3
"""Per-address cap on each server process."""
PARTNER = "https://partner.example"

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ""      "";
    }}
    upstream ticker {{
        server {a} max_fails=0;
        server {b} max_fails=0;
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://ticker;
            proxy_bind {proxy};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_connect_timeout 1s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            proxy_read_timeout 1h;
            proxy_buffering off;
        }}
    }}
}}
"""


@dataclass
class Deployment:
    url: str
    ws_url: str
    servers: list[ServerProcess]
    settings: Settings
    env: dict[str, str]
    tmp: Path
    stack: contextlib.ExitStack


def nginx_path() -> str:
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(path).exists():
        pytest.fail("the proxy tests need nginx: run scripts/test (it installs Debian's nginx-light)", pytrace=False)
    return path


def free_port() -> int:
    probe = bound_socket()
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@contextlib.contextmanager
def nginx(directory: Path, port: int, upstreams: list[str]) -> Iterator[str]:
    """nginx in the foreground with its own prefix, on ``port``; yields its URL."""
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, a=upstreams[0], b=upstreams[1], port=port, proxy=PROXY))
    process = subprocess.Popen([nginx_path(), "-p", str(directory), "-c", str(conf)], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, (
            (directory / "error.log").read_text() if (directory / "error.log").exists() else ""
        )
        try:
            return httpx.get(f"{url}/healthz", timeout=units(2)).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, timeout=20, what="nginx")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(units(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.fixture(scope="module")
def deployment(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("proxy")
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    port = free_port()
    env = {
        "TICKER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TICKER_TRUSTED_PROXIES": PROXY,
        "TICKER_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
        "TICKER_ALLOWED_ORIGINS": PARTNER,
    }
    settings = Settings(redis_url=redis_url, prefix=prefix, state_dir=tmp / "state")
    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(2) as pool:  # both start at once
            starting = [pool.submit(ServerProcess, redis_url, prefix, tmp, **env) for _ in range(2)]
        for future in starting:
            if future.exception() is None:
                stack.callback(future.result().stop)
        servers = [future.result() for future in starting]
        for server in servers:
            wait_for(server.ready, timeout=20, what="server ready")
        directory = tmp / "nginx"
        directory.mkdir()
        upstreams = [s.url.removeprefix("http://") for s in servers]
        url = stack.enter_context(nginx(directory, port, upstreams))
        yield Deployment(url, url.replace("http://", "ws://"), servers, settings, env, tmp, stack)

    async def clear() -> None:
        client = connect(redis_url)
        try:
            await Store(client, prefix=prefix).clear()
        finally:
            await client.aclose()

    run(clear())


async def open_ws(url: str, source: str, *, host: str | None = None, **headers: str) -> tuple[Any, int | None]:
    """A WebSocket from ``source``: (the open socket, None) once its snapshot came, or (None, close code).

    ``host`` is the name the handshake's ``Host`` header gives instead of the URL's.
    """
    options: dict[str, Any] = {"local_addr": (source, 0)}
    if host is not None:
        target = urlsplit(url)
        sock = socket.create_connection((target.hostname, target.port), source_address=(source, 0))
        options = {"sock": sock}
        url = target._replace(netloc=host).geturl()
    ws = await websockets.connect(url, additional_headers=headers, open_timeout=units(10), max_size=None, **options)
    try:
        first = lines(await asyncio.wait_for(ws.recv(), units(10)))
    except ConnectionClosed:
        return None, ws.close_code
    assert first[0]["type"] == "snapshot"
    return ws, None


@contextlib.asynccontextmanager
async def held(deadline: float) -> AsyncIterator[list[Any]]:
    """Sockets opened inside are closed at the end; the whole block runs under ``deadline`` units."""
    sockets: list[Any] = []
    try:
        async with asyncio.timeout(units(deadline)):
            yield sockets
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def attempts(url: str, source: str, count: int, **headers: Any) -> list[int | None]:
    """Open ``count`` sockets one after another from ``source``, holding the admitted ones."""
    codes: list[int | None] = []
    async with held(30) as sockets:
        for n in range(count):
            extra = {k: v.format(n=n) for k, v in headers.items()}
            ws, code = await open_ws(url, source, **extra)
            if ws is not None:
                sockets.append(ws)
            codes.append(code)
    return codes


def test_a_hundred_and_twenty_readers_behind_one_proxy_are_all_admitted(deployment: Deployment) -> None:
    """Each server sees each reader's own address, not nginx's: 120 readers, a cap of 3 per address."""
    token = make_token(deployment.settings, "proxy-desk", Scope.PUBLISH)

    async def scenario() -> None:
        async with held(40) as sockets:
            opened = await asyncio.gather(*(open_ws(f"{deployment.ws_url}/ws", f"127.0.1.{n}") for n in range(1, 121)))
            assert [code for _, code in opened] == [None] * 120
            sockets += [ws for ws, _ in opened]
            async with httpx.AsyncClient(base_url=deployment.url, timeout=units(10)) as http:
                answer = await http.post(
                    "/api/items", json={"headline": "Through the proxy"}, headers={"Authorization": f"Bearer {token}"}
                )
                assert answer.status_code == 201, answer.text

            async def event(ws: Any) -> str:
                message = lines(await ws.recv())[0]
                headline: str = message["item"]["headline"]
                return headline

            assert set(await asyncio.gather(*(event(ws) for ws in sockets))) == {"Through the proxy"}

    asyncio.run(scenario())


def test_one_forwarded_address_is_still_capped(deployment: Deployment) -> None:
    """CAP per server process: two processes admit 2 * CAP, then 4429."""
    codes = asyncio.run(attempts(f"{deployment.ws_url}/ws", "127.0.1.200", 2 * CAP + 2))
    assert codes.count(None) == 2 * CAP and set(codes) == {None, 4429}, codes


def test_a_client_writing_its_own_forwarded_for_cannot_escape_its_cap(deployment: Deployment) -> None:
    """nginx appends the real peer; the entries the client wrote, to its left, are never believed."""
    spoofed = {"X-Forwarded-For": "10.9.9.{n}, 127.0.0.2"}
    codes = asyncio.run(attempts(f"{deployment.ws_url}/ws", "127.0.1.201", 2 * CAP + 2, **spoofed))
    assert codes.count(None) == 2 * CAP and set(codes) == {None, 4429}, codes


def test_an_untrusted_peer_forwarded_for_is_ignored(deployment: Deployment) -> None:
    """Straight to a server from 127.0.0.3, claiming other addresses: counted as 127.0.0.3."""
    direct = deployment.servers[0].ws_url + "/ws"
    codes = asyncio.run(attempts(direct, "127.0.0.3", CAP + 1, **{"X-Forwarded-For": "127.0.1.{n}"}))
    assert codes == [None] * CAP + [4429], codes


def test_sse_is_capped_per_forwarded_address_the_same_way(deployment: Deployment) -> None:
    async def scenario() -> list[int]:
        transport = httpx.AsyncHTTPTransport(local_address="127.0.1.202")
        statuses = []
        async with (
            httpx.AsyncClient(base_url=deployment.url, transport=transport, timeout=units(10)) as http,
            contextlib.AsyncExitStack() as streams,
            asyncio.timeout(units(30)),
        ):
            for _ in range(2 * CAP + 2):
                response = await streams.enter_async_context(http.stream("GET", "/api/events"))
                statuses.append(response.status_code)
                if response.status_code == 429:
                    assert int(response.headers["retry-after"]) >= 1
                    assert (await response.aread()).startswith(b'{"error":{"code":"rate_limited"')
        return statuses

    statuses = asyncio.run(scenario())
    assert statuses.count(200) == 2 * CAP and set(statuses) == {200, 429}, statuses


def test_origin_games_on_both_streams(deployment: Deployment) -> None:
    """A browser Origin not on the list is refused on /ws (1008) and /api/events (403), whatever Host
    says (a Host that matches the forged Origin included); no Origin, the public URL's own origin and an
    allowed partner are admitted."""
    ws_url = f"{deployment.ws_url}/ws"

    async def scenario() -> None:
        source = "127.0.1.210"
        assert (await open_ws(ws_url, source, Origin="https://evil.example"))[1] == 1008
        assert (await open_ws(ws_url, source, host="ticker.example", Origin="https://evil.example"))[1] == 1008
        assert (await open_ws(ws_url, source, host="evil.example", Origin="http://evil.example"))[1] == 1008
        async with held(30) as sockets:
            for headers in ({}, {"Origin": PARTNER}, {"Origin": deployment.url}):
                ws, code = await open_ws(ws_url, f"127.0.1.{211 + len(sockets)}", **headers)
                assert code is None, headers
                sockets.append(ws)
        async with httpx.AsyncClient(base_url=deployment.url, timeout=units(10)) as http:
            for headers in (
                {"Origin": "https://evil.example"},
                {"Origin": "https://evil.example", "Host": "x.example"},
            ):
                refused = await http.get("/api/events", headers=headers)
                assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
            for headers in ({}, {"Origin": PARTNER}, {"Origin": deployment.url}):
                async with http.stream("GET", "/api/events", headers=headers) as response:
                    assert response.status_code == 200, headers

    asyncio.run(asyncio.wait_for(scenario(), units(40)))


def test_a_restarted_server_is_back_in_rotation_at_once(deployment: Deployment) -> None:
    """The upstream failure settings of deploy/nginx.conf (max_fails=0, next upstream on error): while a
    server is down every request reaches the other; the first readers after its restart reach it again.
    With nginx's defaults it would be kept out for fail_timeout after the failures it caused."""
    old = deployment.servers[1]
    port = int(old.url.rsplit(":", 1)[1])
    old.stop()
    with httpx.Client(base_url=deployment.url, timeout=units(10)) as http:
        assert [http.get("/healthz").status_code for _ in range(6)] == [200] * 6
    restarted = ServerProcess(
        deployment.settings.redis_url or "", deployment.settings.prefix, deployment.tmp, port=port, **deployment.env
    )
    deployment.stack.callback(restarted.stop)
    deployment.servers[1] = restarted
    wait_for(restarted.ready, timeout=20, what="the restarted server ready")

    def live_connections() -> int:
        text = httpx.get(f"{restarted.url}/metrics", timeout=units(5)).text
        return sum(
            int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines() if line.startswith("ticker_connections{")
        )

    async def scenario() -> int:
        async with held(30) as sockets:
            for n in range(4):
                ws, code = await open_ws(f"{deployment.ws_url}/ws", f"127.0.1.{230 + n}")
                assert code is None
                sockets.append(ws)
            return await asyncio.to_thread(live_connections)

    assert asyncio.run(scenario()) >= 1
