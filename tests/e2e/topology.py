"""Real Redis topologies on loopback for the failover tests: Debian's redis-server and
redis-sentinel on free ports, a primary with replicas and Sentinels, or a Redis Cluster."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support import units, wait_for

SERVICE = "ticker"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binary(name: str) -> str:
    """A Redis binary from PATH; scripts/test installs them with apt. Never skipped."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run scripts/test (it installs it) or apt-get install {name}")
    return path


class Node:
    """One redis-server (or redis-sentinel) process on a free port, with its own directory."""

    def __init__(self, tmp: Path, *args: str, sentinel_of: tuple[str, int] | None = None) -> None:
        self.port = free_port()
        self.dir = tmp / f"node-{self.port}"
        self.dir.mkdir()
        self.log = self.dir / "log"
        if sentinel_of is None:
            command = [binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
            command += ["--save", "", "--appendonly", "no", "--logfile", str(self.log), *args]
        else:
            host, port = sentinel_of
            config = self.dir / "sentinel.conf"
            config.write_text(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\nlogfile {self.log}\n"
                f"sentinel monitor {SERVICE} {host} {port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            command = [binary("redis-sentinel"), str(config)]
        self.command = command
        self.client = redis.Redis(port=self.port, decode_responses=True, socket_timeout=units(5))
        self.start()

    def start(self, *args: str) -> None:
        self.process = subprocess.Popen([*self.command, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.alive, timeout=10, what=f"redis on port {self.port}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"redis on port {self.port} exited: {self.log.read_text()[-2000:]}")
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def info(self, section: str = "replication") -> dict[str, Any]:
        reply: dict[str, Any] = self.client.info(section)
        return reply

    def kill(self) -> None:
        """kill -9: no shutdown, no goodbye to replicas or clients."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(units(10))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(units(10))
            except subprocess.TimeoutExpired:
                self.kill()
        self.client.close()


def replica_args(primary: Node) -> list[str]:
    return ["--replicaof", "127.0.0.1", str(primary.port), *SYNC_ARGS]


SYNC_ARGS = ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
"""Replicas resync at once, so a failover in a test never promotes one that is still syncing."""


def synced(replica: Node) -> bool:
    try:
        return replica.info().get("master_link_status") == "up"
    except redis.RedisError:
        return False


class SentinelSet:
    """A primary, two replicas and three Sentinels (quorum 2) watching them."""

    def __init__(self, tmp: Path) -> None:
        self.primary = Node(tmp, *SYNC_ARGS)
        self.replicas = [Node(tmp, *replica_args(self.primary)) for _ in range(2)]
        self.nodes = [self.primary, *self.replicas]
        for replica in self.replicas:
            wait_for(lambda r=replica: synced(r), timeout=20, what="replica in sync")  # type: ignore[misc]
        self.sentinels = [Node(tmp, sentinel_of=("127.0.0.1", self.primary.port)) for _ in range(3)]
        for sentinel in self.sentinels:
            wait_for(
                lambda s=sentinel: (
                    len(s.client.sentinel_slaves(SERVICE)) == 2  # type: ignore[misc]
                    and len(s.client.sentinel_sentinels(SERVICE)) == 2
                ),
                timeout=30,
                what="sentinels to find the replicas and each other",
            )

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(s.address for s in self.sentinels) + f"/{SERVICE}"

    def current_primary(self) -> Node | None:
        """The node every Sentinel names as primary and that says it is one, or None."""
        named = {tuple(s.client.sentinel_get_master_addr_by_name(SERVICE)) for s in self.sentinels}
        if len(named) != 1:
            return None
        port = int(next(iter(named))[1])
        node = next((n for n in self.nodes if n.port == port), None)
        if node is None or node.process.poll() is not None:
            return None
        try:
            return node if node.info().get("role") == "master" else None
        except redis.RedisError:
            return None

    def stop(self) -> None:
        for node in [*self.sentinels, *self.nodes]:
            node.stop()


class Cluster:
    """A Redis Cluster of three masters, made with ``redis-cli --cluster create``."""

    def __init__(self, tmp: Path) -> None:
        options = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        # A free port for the cluster bus too: port + 10000 may be taken or past 65535.
        self.nodes = [Node(tmp, *options, "--cluster-port", str(free_port())) for _ in range(3)]
        subprocess.run(
            [binary("redis-cli"), "--cluster", "create", *(n.address for n in self.nodes), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=units(60),
        )
        wait_for(self.stable, timeout=30, what="the cluster to agree on its slots")

    def stable(self) -> bool:
        return all("cluster_state:ok" in str(n.client.execute_command("CLUSTER", "INFO")) for n in self.nodes)

    def node_ids(self) -> dict[int, str]:
        return {node.port: str(node.client.execute_command("CLUSTER", "MYID")) for node in self.nodes}

    def owner(self, slot: int) -> Node:
        for start, end, primary, *_ in self.nodes[0].client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return next(n for n in self.nodes if n.port == int(primary[1]))
        raise AssertionError(f"no node owns slot {slot}")

    def migrate(self, slot: int, target: Node) -> None:
        """Move ``slot`` and its keys to ``target`` the way redis-cli's resharding does."""
        source = self.owner(slot)
        ids = self.node_ids()
        target.client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
        source.client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
        while keys := source.client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000):
            timeout_ms = int(units(10) * 1000)
            source.client.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, timeout_ms, "KEYS", *keys)
        for node in self.nodes:
            node.client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(n.address for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
