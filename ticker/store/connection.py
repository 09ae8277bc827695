"""Reaching Redis and making a change durable there: the part every concern of the store shares.

:func:`connect` opens any of the Redis topologies a URL names (one server, a
Sentinel-watched primary, a Cluster); the same code runs on each. :class:`Connection`
holds the client, the key names and the Lua scripts, turns "not now" errors into
:class:`~ticker.errors.Unavailable`, waits for replicas after a change, and answers
whether a write would succeed now (``/readyz``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MasterDownError,
    MovedError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ticker.config import (
    DEFAULT_MIN_REPLICAS,
    DEFAULT_PREFIX,
    DEFAULT_REPLICA_WAIT_MS,
    DEFAULT_STREAM_MAXLEN,
    parse_redis_url,
)
from ticker.errors import Unavailable
from ticker.store.keys import Keys

WRITE_CHECK_TTL = 0.5
"""Seconds a "would a write succeed?" answer is reused (``/readyz`` may be polled often)."""
REPLICA_LAG_SLACK = 2
"""Seconds since a replica's last acknowledgement past which it no longer counts as connected."""
TRANSIENT = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    ClusterDownError,
    MasterDownError,
    TryAgainError,
    RedisClusterException,
)
"""Errors that mean "not now": a failover, a slot moving, a primary restarting. Writes answer 503."""
TRANSIENT_REPLIES = ("UNBLOCKED", "NOREPLICAS", "LOADING")
"""Error replies with the same meaning that redis-py has no class for."""

Client = aioredis.Redis | RedisCluster


class SentinelClient(aioredis.Redis):
    """The client of a Sentinel-watched primary; closing it closes the Sentinel connections too."""

    sentinels: list[aioredis.Redis] | None = None
    service: str = ""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for client in self.sentinels or []:
            await client.aclose()

    async def confirms(self, host: str, port: int) -> bool:
        """Whether a majority of the Sentinels name ``host:port`` as the primary, none disagrees,
        and none is failing over: a deposed primary keeps accepting writes for a while."""

        async def ask(sentinel: aioredis.Redis) -> Any:
            try:
                state = await sentinel.execute_command("SENTINEL", "MASTER", self.service)  # type: ignore[no-untyped-call]
            except (RedisError, OSError):
                return None
            return {_text(k): _text(v) for k, v in dict(state).items()}

        sentinels = self.sentinels or []
        answers = [a for a in await asyncio.gather(*(ask(s) for s in sentinels)) if a]
        agree = [
            a
            for a in answers
            if a["ip"] == host and int(a["port"]) == port and "failover_in_progress" not in str(a["flags"])
        ]
        return len(agree) == len(answers) and len(agree) > len(sentinels) // 2


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def connect(url: str, **kwargs: Any) -> Client:
    """A client for ``url`` (any form :func:`ticker.config.parse_redis_url` takes) that decodes
    replies as text. ``kwargs`` are redis-py connection options (timeouts, health checks).

    A Sentinel client asks the Sentinels for the primary on every new connection, and a
    connection that finds its server demoted (``READONLY``) is dropped, so the client
    follows failovers; a Cluster client follows ``MOVED``/``ASK`` and slot migrations.
    """
    target = parse_redis_url(url)
    if target.kind == "single":
        single: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True, **kwargs)
        return single
    options = dict(target.options)
    tls: dict[str, Any] = {}
    if target.tls:
        tls = {"ssl": True, **({"ssl_ca_certs": options["ssl_ca_certs"]} if "ssl_ca_certs" in options else {})}
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.nodes]
        return RedisCluster(startup_nodes=nodes, decode_responses=True, **auth, **tls, **kwargs)
    sentinel_kwargs: dict[str, Any] = {
        "username": options.get("sentinel_username"),
        "password": options.get("sentinel_password"),
        **tls,
        **{k: v for k, v in kwargs.items() if k.startswith("socket_")},
    }
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    client = sentinel.master_for(
        target.service, redis_class=SentinelClient, db=target.db, decode_responses=True, **auth, **tls, **kwargs
    )
    assert isinstance(client, SentinelClient)
    client.sentinels = list(sentinel.sentinels)
    client.service = target.service
    return client


def unavailable(exc: RedisError) -> Unavailable:
    return Unavailable(f"Redis is unavailable ({type(exc).__name__}: {exc}); retry shortly")


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis cannot serve right now (retry later), not a bad request."""
    if isinstance(exc, (*TRANSIENT, OSError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(TRANSIENT_REPLIES)


_INCLUDE = re.compile(r"^--#include (_\w+)$", re.MULTILINE)
"""A line of a script that stands for a shared part (``ticker/lua/_<name>.lua``): Redis
scripts cannot call each other, so what two share is written into both."""


def _scripts() -> dict[str, str]:
    """The source of every script in ``ticker/lua/`` by name, its shared parts written in."""
    folder = resources.files("ticker").joinpath("lua")
    files = {p.name.removesuffix(".lua"): p.read_text() for p in folder.iterdir() if p.name.endswith(".lua")}
    return {
        name: _INCLUDE.sub(lambda part: files[part.group(1)], source)
        for name, source in files.items()
        if not name.startswith("_")
    }


class Connection:
    """The client, the key names and the Lua scripts one :class:`~ticker.store.Store` works with;
    each part of the store (items, schedule, groups...) is a subclass."""

    def __init__(
        self,
        redis: Client,
        *,
        prefix: str = DEFAULT_PREFIX,
        stream_maxlen: int = DEFAULT_STREAM_MAXLEN,
        min_replicas: int = DEFAULT_MIN_REPLICAS,
        replica_wait_ms: int = DEFAULT_REPLICA_WAIT_MS,
    ) -> None:
        """``min_replicas``: a change is acknowledged only once that many replicas have it."""
        self.redis = redis
        self.prefix = prefix
        self.stream_maxlen = stream_maxlen
        self.min_replicas = min_replicas
        self.replica_wait_ms = replica_wait_ms
        self.keys = Keys(prefix)
        self.stream_key = self.keys.stream
        self._checked: tuple[float, list[str]] | None = None
        self._failed: tuple[float, str] | None = None
        """When and why the last call failed for want of Redis: readiness reports it until a
        write is confirmed, or for one write's worst case (:meth:`_failure_hold`)."""
        self.scripts = {name: redis.register_script(source) for name, source in _scripts().items()}
        """``ticker/lua/<name>.lua`` by name (registering computes the SHA1 here; Redis loads a script on first use)."""

    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await op()
        except (RedisError, RedisClusterException, OSError) as exc:
            if not transient(exc):
                raise
            failure = unavailable(exc if isinstance(exc, RedisError) else RedisConnectionError(str(exc)))
            self._call_failed(str(failure))
            raise failure from exc

    def _call_failed(self, reason: str) -> None:
        """A call failed for want of Redis: ``/readyz`` says so until a write is confirmed
        (asking ``INFO`` again could say "ready" while the next write's ``WAIT`` still fails)."""
        self._checked = None
        self._failed = (time.monotonic(), reason)

    def _failure_hold(self) -> float:
        """Seconds a failure stays reported without a confirmed write: longer than one attempt."""
        return self.replica_wait_ms / 1000 + 1.0

    async def _primary(self) -> dict[str, Any]:
        """Where a keyless command (``WAIT``, ``INFO``) must go: on a Cluster, the deployment's slot owner."""
        if isinstance(self.redis, RedisCluster):
            await self.redis.initialize()  # learns the slots on first use; no-op after
            return {"target_nodes": self.redis.get_node_from_key(self.stream_key)}
        return {}

    @contextlib.asynccontextmanager
    async def _writer(self, *, one_connection: bool = False) -> AsyncIterator[Client]:
        """The client a change is made with: with ``min_replicas``, one connection for the change
        and its ``WAIT`` (which counts the replicas that have that connection's writes).
        ``one_connection`` asks for one connection anyway (to learn which server answered)."""
        if isinstance(self.redis, RedisCluster) or not (self.min_replicas or one_connection):
            yield self.redis
            return
        single = aioredis.Redis(connection_pool=self.redis.connection_pool, single_connection_client=True)
        try:
            yield single
        finally:
            await single.aclose()

    async def _replicated(self, writer: Client) -> None:
        """Return once ``min_replicas`` replicas have every change ``writer`` made, or raise Unavailable."""
        if self.min_replicas:
            if isinstance(writer, RedisCluster):
                await self._replicated_on_cluster()
            else:
                await self._replicated_on(writer)
        self._failed = None  # a confirmed write: readiness stops reporting the last failure

    async def _replicated_on(self, writer: aioredis.Redis) -> None:
        """``WAIT`` on one server. A counter is written first, so the wait also covers a change
        made earlier by another connection (the first attempt of a repeated publish):
        replication is in order. Behind Sentinel, the server must also still be the primary
        the Sentinels name: a deposed one accepts writes until it is reconfigured."""
        await self._call(lambda: writer.incr(self.keys.sync))
        wait = ("WAIT", self.min_replicas, self.replica_wait_ms)
        acked = int(await self._call(lambda: writer.execute_command(*wait)))  # type: ignore[no-untyped-call]
        self._check_acked(acked)
        if isinstance(self.redis, SentinelClient):
            connection = writer.connection
            host, port = getattr(connection, "host", ""), getattr(connection, "port", 0)
            if not await self.redis.confirms(host, port):
                await self.reconnect()
                reason = "the change reached a server that is no longer the primary (a failover is under way); retry"
                self._call_failed(reason)
                raise Unavailable(reason)

    def _check_acked(self, acked: int) -> None:
        if acked >= self.min_replicas:
            return
        reason = (
            f"the change reached the primary but only {acked} of {self.min_replicas} replicas confirmed it "
            f"within {self.replica_wait_ms} ms; retry (a publish with its id is safe to repeat)"
        )
        self._call_failed(reason)
        raise Unavailable(reason)

    async def _replicated_on_cluster(self) -> None:
        for _ in range(3):
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(self.keys.sync)
            pipe.execute_command("WAIT", self.min_replicas, self.replica_wait_ms, **await self._call(self._primary))
            # On a Cluster both go to the slot's owner; a redirection means it moved meanwhile.
            run = pipe.execute(allow_redirections=False) if isinstance(pipe, ClusterPipeline) else pipe.execute()
            try:
                replies = await self._call(lambda: run)  # noqa: B023
            except (MovedError, AskError):
                await self._call(lambda: self.redis.incr(self.keys.sync))  # follows the slot: learns its new owner
                continue
            return self._check_acked(int(replies[1]))
        raise Unavailable("the deployment's slot is moving between Redis Cluster nodes; retry shortly")

    async def write_problems(self) -> list[str]:
        """Why a write would fail now (empty when it would succeed), from one cheap
        ``INFO replication``: the primary unreachable, a read-only replica, too few replicas.
        Reused for :data:`WRITE_CHECK_TTL` seconds, and asked again after any failed call.
        A failed call is reported too, until a write is confirmed or :meth:`_failure_hold`
        passes: ``INFO`` can look healthy while the next write's ``WAIT`` still times out."""
        problems = list(await self._probe())
        if self._failed is not None:
            if time.monotonic() - self._failed[0] < self._failure_hold():
                problems.append(f"the last call to redis failed: {self._failed[1]}")
            else:
                self._failed = None
        return problems

    async def _probe(self) -> list[str]:
        now = time.monotonic()
        if self._checked is not None and now - self._checked[0] < WRITE_CHECK_TTL:
            return self._checked[1]
        problems: list[str] = []
        try:
            async with self._writer(one_connection=True) as writer:
                info: Any = await writer.info("replication", **await self._primary())
                connection = getattr(writer, "connection", None)
                address = getattr(connection, "host", ""), getattr(connection, "port", 0)
                confirmed = not isinstance(self.redis, SentinelClient) or await self.redis.confirms(*address)
        except (RedisError, RedisClusterException, OSError) as exc:
            problems.append(f"redis unreachable ({type(exc).__name__}: {exc})")
        else:
            if info.get("role") != "master":
                problems.append("redis is a read-only replica (a failover is under way or the URL names a replica)")
                await self.reconnect()
            elif not confirmed:
                problems.append("the Sentinels name another primary, or are failing over")
                await self.reconnect()
            elif self.min_replicas:
                max_lag = self.replica_wait_ms / 1000 + REPLICA_LAG_SLACK
                replicas = [
                    v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and k[5:].isdigit()
                ]
                good = sum(1 for r in replicas if r.get("state") == "online" and float(r.get("lag", 0)) <= max_lag)
                if good < self.min_replicas:
                    problems.append(f"redis has {good} of the {self.min_replicas} replicas writes wait for")
        self._checked = (time.monotonic(), problems)
        return problems

    async def reconnect(self) -> None:
        """Drop idle connections, so the next ones ask the Sentinels where the primary is now
        (a connection that only reads never learns its server was demoted)."""
        if isinstance(self.redis, SentinelClient):
            await self.redis.connection_pool.disconnect(inuse_connections=False)

    async def clear(self) -> None:
        """Delete every key of this prefix (tests and ``ticker`` resets only)."""
        keys = [k async for k in self.redis.scan_iter(match=self.keys.every, count=1000)]
        if keys:
            await self.redis.delete(*keys)
