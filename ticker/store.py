"""The only module that talks to Redis.

Every change is one Lua script that appends the stream entry and updates the
item state together, so the log and the state never disagree. All keys share
the hash tag ``{prefix}`` so the same scripts run on a Redis Cluster::

    {p}:stream          the change log (entries: op, id, item, actor, v, ts)
    {p}:items           hash id -> item JSON (live items)
    {p}:gone            hash id -> item JSON (retracted: tombstones)
    {p}:fp              hash id -> fingerprint of the create request (idempotency)
    {p}:cursor          hash id -> cursor of the item's last change
    {p}:tl, {p}:tl:<ch> sorted sets of "<published_at ms>:<id>" (all, per channel)
    {p}:pinned          sorted set of pinned items' sort keys
    {p}:hist:<id>       list of the cursors of one item's changes (its history, read from the stream)
    {p}:sched           sorted set id -> publish_at ms: scheduled items, not yet public
    {p}:sched:items     hash id -> item JSON as it will be published; {p}:sched:by: id -> actor
    {p}:readers:<proc>  hash channel -> live readers of one server process (expires unless refreshed)
    {p}:tokens          hash name -> token record JSON; {p}:token-hash: hash -> name
    {p}:dead:<group>    dead-letter stream of one consumer group (entries that kept failing)
    {p}:rate:<token>    a staff token's write rate limit (GCRA: the theoretical arrival time)
    {p}:sync            a counter written before ``WAIT`` so the wait covers every earlier change

:func:`connect` opens any of the Redis topologies a URL names (one server,
a Sentinel-watched primary, a Cluster); the same code runs on each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
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
from ticker.errors import Conflict, NotFound, PreconditionFailed, TickerError, Unavailable
from ticker.models import (
    STREAM_SCHEMA_VERSION,
    Change,
    Item,
    ItemCreate,
    ItemEdit,
    ScheduledEdit,
    apply_edit,
    change_kind,
    now,
)
from ticker.protocol import cursor_key

_WORDS = re.compile(r"\w+")
EDIT_RETRIES = 200
"""Optimistic retries of an edit that lost a race with another edit of the same item."""
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


def _script(name: str) -> str:
    return resources.files("ticker").joinpath("lua", f"{name}.lua").read_text()


@dataclass(frozen=True, slots=True)
class WriteResult:
    item: Item
    cursor: str
    created: bool = True
    scheduled: bool = False
    """The item waits for its ``publish_at``: nothing was appended, ``cursor`` is the head."""


@dataclass(frozen=True, slots=True)
class Version:
    """One change of an item, as its history shows it."""

    cursor: str
    kind: str
    actor: str
    ts: int
    item: Item | None
    """The item after the change; ``None`` once the entry was trimmed from the stream."""


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Item]
    cursor: str
    """The stream position the page is current as of."""
    next: str | None
    """Pass as ``before`` for the next (older) page; ``None`` on the last page."""
    pinned: list[Item]


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


class Store:
    """Items, their change log and staff tokens in one Redis."""

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
        self._checked: tuple[float, list[str]] | None = None
        tag = self._tag = "{" + prefix + "}"
        self.stream_key = f"{tag}:stream"
        self._items = f"{tag}:items"
        self._gone = f"{tag}:gone"
        self._fp = f"{tag}:fp"
        self._cursor = f"{tag}:cursor"
        self._tl = f"{tag}:tl"
        self._pinned = f"{tag}:pinned"
        self._tokens = f"{tag}:tokens"
        self._token_hash = f"{tag}:token-hash"
        self._token_used = f"{tag}:token-used"
        self._sched = f"{tag}:sched"
        self._sched_items = f"{tag}:sched:items"
        self._sched_by = f"{tag}:sched:by"
        self._readers = f"{tag}:readers"
        self._sync = f"{tag}:sync"
        self._publish = redis.register_script(_script("publish"))
        self._change = redis.register_script(_script("change"))
        self._page = redis.register_script(_script("page"))
        self._token = redis.register_script(_script("token"))
        self._revoke = redis.register_script(_script("revoke"))
        self._dead_letter = redis.register_script(_script("deadletter"))
        self._rate = redis.register_script(_script("ratelimit"))
        self._release = redis.register_script(_script("release"))
        self._schedule = redis.register_script(_script("schedule"))

    def _history(self, item_id: str) -> str:
        return f"{self._tag}:hist:{item_id}"

    def _timeline(self, channel: str | None) -> str:
        return self._tl if channel is None else f"{self._tl}:{channel}"

    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await op()
        except (RedisError, RedisClusterException, OSError) as exc:
            if not transient(exc):
                raise
            self._checked = None  # the next readiness check asks Redis again
            raise unavailable(exc if isinstance(exc, RedisError) else RedisConnectionError(str(exc))) from exc

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
        """Return once ``min_replicas`` replicas have every change ``writer`` made, or raise Unavailable.

        A counter is written first, so the wait also covers a change that was made
        earlier by another connection (the first attempt of a repeated publish):
        replication is in order. Behind Sentinel, the server must also still be the
        primary the Sentinels name: a deposed one accepts writes until it is reconfigured.
        """
        if not self.min_replicas:
            return
        if isinstance(writer, RedisCluster):
            return await self._replicated_on_cluster()
        await self._call(lambda: writer.incr(self._sync))
        wait = ("WAIT", self.min_replicas, self.replica_wait_ms)
        acked = int(await self._call(lambda: writer.execute_command(*wait)))  # type: ignore[no-untyped-call]
        self._check_acked(acked)
        if isinstance(self.redis, SentinelClient):
            connection = writer.connection
            host, port = getattr(connection, "host", ""), getattr(connection, "port", 0)
            if not await self.redis.confirms(host, port):
                await self.reconnect()
                self._checked = None
                raise Unavailable(
                    "the change reached a server that is no longer the primary (a failover is under way); retry"
                )

    def _check_acked(self, acked: int) -> None:
        if acked >= self.min_replicas:
            return
        self._checked = None
        raise Unavailable(
            f"the change reached the primary but only {acked} of {self.min_replicas} replicas confirmed it "
            f"within {self.replica_wait_ms} ms; retry (a publish with its id is safe to repeat)"
        )

    async def _replicated_on_cluster(self) -> None:
        for _ in range(3):
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(self._sync)
            pipe.execute_command("WAIT", self.min_replicas, self.replica_wait_ms, **await self._call(self._primary))
            # On a Cluster both go to the slot's owner; a redirection means it moved meanwhile.
            run = pipe.execute(allow_redirections=False) if isinstance(pipe, ClusterPipeline) else pipe.execute()
            try:
                replies = await self._call(lambda: run)  # noqa: B023
            except (MovedError, AskError):
                await self._call(lambda: self.redis.incr(self._sync))  # follows the slot: learns its new owner
                continue
            return self._check_acked(int(replies[1]))
        raise Unavailable("the deployment's slot is moving between Redis Cluster nodes; retry shortly")

    async def write_problems(self) -> list[str]:
        """Why a write would fail now (empty when it would succeed), from one cheap
        ``INFO replication``: the primary unreachable, a read-only replica, too few replicas.
        Reused for :data:`WRITE_CHECK_TTL` seconds, and asked again after any failed call."""
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

    async def take_write(self, name: str, *, rate: float, burst: int) -> float:
        """One write of token ``name`` against its limit, shared by every process:
        0 if allowed, else the seconds until it would be."""
        key = f"{{{self.prefix}}}:rate:{name}"
        wait_us = await self._call(lambda: self._rate(keys=[key], args=[rate, burst]))
        return int(wait_us) / 1_000_000

    # --- writes -------------------------------------------------------------

    async def publish(self, create: ItemCreate, *, actor: str) -> WriteResult:
        """Append a new item; the same ``id`` with the same content again changes nothing."""
        item = create.to_item()
        keys = [
            self.stream_key,
            self._items,
            self._gone,
            self._fp,
            self._cursor,
            self._tl,
            self._timeline(item.channel),
            self._pinned,
            self._sched,
            self._sched_items,
            self._sched_by,
            self._history(item.id),
        ]
        at = "" if create.publish_at is None else str(int(create.publish_at.timestamp() * 1000))
        args: list[str | int] = [
            item.id,
            item.to_json(),
            create.fingerprint(),
            item.sort_key,
            actor,
            STREAM_SCHEMA_VERSION,
            self.stream_maxlen,
            "1" if item.pinned else "0",
            at,
        ]
        async with self._writer() as writer:
            reply = await self._call(lambda: self._publish(keys=keys, args=args, client=writer))
            if reply[0] in ("ok", "same", "scheduled", "same-scheduled"):
                # "same": the first attempt may never have been confirmed
                await self._replicated(writer)
        match reply[0]:
            case "ok":
                return WriteResult(item, reply[1])
            case "scheduled":
                return WriteResult(item, reply[1], scheduled=True)
            case "same":
                return WriteResult(Item.from_json(reply[1]), reply[2], created=False)
            case "same-scheduled":
                return WriteResult(Item.from_json(reply[1]), reply[2], created=False, scheduled=True)
            case "retracted":
                raise Conflict(f"item {item.id} was retracted; publish it under a new id")
            case _:
                raise Conflict(f"item {item.id} already exists with other content")

    async def edit(self, item_id: str, edit: ItemEdit, *, actor: str, if_match: int | None = None) -> WriteResult:
        """Apply an edit (update, correction or fix); version + 1."""
        return await self._apply(
            "update",
            item_id,
            lambda item: apply_edit(item, edit, at=now()),
            actor,
            if_match,
            lambda item: change_kind(item, edit),
        )

    async def retract(self, item_id: str, *, actor: str, if_match: int | None = None) -> WriteResult:
        """Retract an item: a tombstone in the log, gone from every list."""
        return await self._apply(
            "retract",
            item_id,
            lambda item: item.model_copy(update={"version": item.version + 1}),
            actor,
            if_match,
            lambda item: "retract",
        )

    async def _apply(
        self,
        op: str,
        item_id: str,
        change: Callable[[Item], Item],
        actor: str,
        if_match: int | None,
        kind: Callable[[Item], str],
    ) -> WriteResult:
        for _ in range(EDIT_RETRIES):
            item = await self.get(item_id)
            if if_match is not None and item.version != if_match:
                raise PreconditionFailed(f"item {item_id} is at version {item.version}, not {if_match}")
            new = change(item)
            keys = [
                self.stream_key,
                self._items,
                self._gone,
                self._cursor,
                self._tl,
                self._timeline(item.channel),
                self._timeline(new.channel),
                self._pinned,
                self._history(item_id),
            ]
            args: list[str | int] = [
                op,
                item_id,
                item.version,
                new.to_json(),
                item.sort_key,
                actor,
                STREAM_SCHEMA_VERSION,
                self.stream_maxlen,
                "1" if new.pinned else "0",
                kind(item),
            ]
            async with self._writer() as writer:
                reply = await self._call(lambda: self._change(keys=keys, args=args, client=writer))  # noqa: B023
                if reply[0] == "ok":
                    await self._replicated(writer)
            if reply[0] == "ok":
                return WriteResult(new, reply[1])
            if reply[0] == "missing":
                continue  # retracted meanwhile: get() raises the right error next round
            if if_match is not None:
                raise PreconditionFailed(f"item {item_id} changed meanwhile; read it again")
        raise Conflict(f"item {item_id} is being edited too often at once; try again")

    # --- the schedule ---------------------------------------------------------

    async def scheduled(self) -> list[Item]:
        """Items waiting for their ``publish_at``, soonest first."""
        ids = await self._call(lambda: self.redis.zrange(self._sched, 0, -1))
        if not ids:
            return []
        raw = await self._call(lambda: self.redis.hmget(self._sched_items, ids))
        return [Item.from_json(r) for r in raw if r]

    async def due(self, at_ms: int, *, count: int = 20) -> list[str]:
        """Ids of scheduled items due at ``at_ms`` (the caller's clock; the release checks Redis's)."""
        ids = await self._call(lambda: self.redis.zrangebyscore(self._sched, "-inf", at_ms, start=0, num=count))
        return [str(i) for i in ids]

    async def next_due(self) -> int | None:
        """The publish_at (ms) of the soonest scheduled item."""
        first = await self._call(lambda: self.redis.zrange(self._sched, 0, 0, withscores=True))
        return int(first[0][1]) if first else None

    async def _scheduled_item(self, item_id: str) -> tuple[str, Item]:
        raw = await self._call(lambda: self.redis.hget(self._sched_items, item_id))
        if raw is None:
            raise NotFound(f"no scheduled item with id {item_id}")
        return raw, Item.from_json(raw)

    async def release(self, item_id: str, *, force: bool = False) -> WriteResult | None:
        """Publish a scheduled item if it is due (or at once with ``force``); ``None`` if another
        process did, it is not due yet, or it was cancelled. Its ``published_at`` is the release time."""
        for _ in range(EDIT_RETRIES):
            try:
                raw, item = await self._scheduled_item(item_id)
            except NotFound:
                if force:
                    raise
                return None
            released = item.model_copy(update={"published_at": now()})
            keys = [
                self.stream_key,
                self._items,
                self._cursor,
                self._tl,
                self._timeline(item.channel),
                self._pinned,
                self._sched,
                self._sched_items,
                self._sched_by,
                self._history(item_id),
            ]
            args: list[str | int] = [
                item_id,
                released.to_json(),
                released.sort_key,
                STREAM_SCHEMA_VERSION,
                self.stream_maxlen,
                "1" if item.pinned else "0",
                "1" if force else "0",
                raw,
            ]
            async with self._writer() as writer:
                reply = await self._call(lambda: self._release(keys=keys, args=args, client=writer))  # noqa: B023
                if reply[0] == "ok":
                    await self._replicated(writer)
            if reply[0] == "ok":
                return WriteResult(released, reply[1])
            if reply[0] == "stale":
                continue  # edited meanwhile: release what it is now
            if force and reply[0] == "gone":
                raise NotFound(f"item {item_id} is no longer scheduled")
            return None
        raise Conflict(f"scheduled item {item_id} is being edited too often at once; try again")

    async def edit_scheduled(self, item_id: str, edit: ScheduledEdit) -> Item:
        """Change a scheduled item (its content or its time) before it is published."""
        for _ in range(EDIT_RETRIES):
            raw, item = await self._scheduled_item(item_id)
            new = edit.apply(item)
            keys = [self._sched, self._sched_items, self._sched_by, self._fp]
            args: list[str | int] = ["edit", item_id, raw, new.to_json(), int(new.published_at.timestamp() * 1000)]
            async with self._writer() as writer:
                reply = await self._call(lambda: self._schedule(keys=keys, args=args, client=writer))  # noqa: B023
                if reply[0] == "ok":
                    await self._replicated(writer)
            if reply[0] == "ok":
                return new
            if reply[0] == "missing":
                break
        raise NotFound(f"item {item_id} is no longer scheduled")

    async def cancel_scheduled(self, item_id: str) -> Item:
        """Drop a scheduled item; it was never public, so nothing is appended. Its id is free again."""
        raw, item = await self._scheduled_item(item_id)
        keys = [self._sched, self._sched_items, self._sched_by, self._fp]
        async with self._writer() as writer:
            cancel: list[str | int] = ["cancel", item_id, raw, "", 0]
            reply = await self._call(lambda: self._schedule(keys=keys, args=cancel, client=writer))
            if reply[0] == "ok":
                await self._replicated(writer)
        if reply[0] != "ok":
            raise NotFound(f"item {item_id} is no longer scheduled")
        return item

    # --- history and search ---------------------------------------------------

    async def history(self, item_id: str) -> list[Version]:
        """Every change of the item, oldest first, read back from the stream by its cursors."""
        cursors = await self._call(lambda: self.redis.lrange(self._history(item_id), 0, -1))
        if not cursors:
            await self.get(item_id)  # NotFound (or "retracted") with the right message
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cursor in cursors:
                pipe.xrange(self.stream_key, min=cursor, max=cursor, count=1)
            rows = await self._call(pipe.execute)
        versions = []
        for cursor, found in zip(cursors, rows, strict=True):
            if not found:
                versions.append(Version(cursor, "trimmed", "", int(cursor.split("-")[0]), None))
                continue
            change = Change.from_entry(cursor, found[0][1])
            kind = found[0][1].get("kind") or change.op
            versions.append(Version(cursor, kind, change.actor, change.ts, change.parsed()))
        return versions

    async def search(
        self,
        words: list[str],
        *,
        channel: str | None = None,
        limit: int = 20,
        before: str | None = None,
        key_events: bool = False,
    ) -> Page:
        """Live items whose headline has every one of ``words`` (case-insensitive word prefixes), newest first;
        with ``key_events``, only key events.

        A scan of the item state: fine for a desk looking through thousands of items.
        """
        cursor = await self.head()
        raw = await self._call(lambda: self.redis.hvals(self._items))
        wanted = [w.casefold() for w in words]
        found = []
        for text in raw:
            item = Item.from_json(text)
            if (channel is not None and item.channel != channel) or (key_events and not item.key_event):
                continue
            have = [w.casefold() for w in _WORDS.findall(item.headline)]
            if all(any(h.startswith(w) for h in have) for w in wanted) and (before is None or item.sort_key < before):
                found.append(item)
        found.sort(key=lambda i: i.sort_key, reverse=True)
        page = found[:limit]
        return Page(page, cursor, page[-1].sort_key if len(found) > limit else None, [])

    # --- live readers -----------------------------------------------------------

    async def report_readers(self, process: str, counts: dict[str, int], *, ttl_ms: int) -> None:
        """This process's live readers per channel, kept for ``ttl_ms`` unless reported again."""
        key = f"{self._readers}:{process}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            if counts:
                pipe.hset(key, mapping=counts)  # type: ignore[arg-type]
                pipe.pexpire(key, ttl_ms)
            pipe.zadd(self._readers, {process: 0})
            await self._call(pipe.execute)

    async def readers(self) -> dict[str, int]:
        """Live readers per channel, summed over every server process that reported lately."""
        processes = await self._call(lambda: self.redis.zrange(self._readers, 0, -1))
        if not processes:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for process in processes:
                pipe.hgetall(f"{self._readers}:{process}")
            rows = await self._call(pipe.execute)
        total: dict[str, int] = {}
        for process, counts in zip(processes, rows, strict=True):
            if not counts:
                await self._call(lambda: self.redis.zrem(self._readers, process))  # noqa: B023
            for channel, n in counts.items():
                total[channel] = total.get(channel, 0) + int(n)
        return total

    # --- reads --------------------------------------------------------------

    async def get(self, item_id: str) -> Item:
        """The live item, or :class:`NotFound` (also for retracted items, with a clear message)."""
        raw = await self._call(lambda: self.redis.hget(self._items, item_id))
        if raw is None:
            if await self._call(lambda: self.redis.hexists(self._gone, item_id)):
                raise NotFound(f"item {item_id} was retracted")
            raise NotFound(f"no item with id {item_id}")
        return Item.from_json(raw)

    async def retraction(self, item_id: str) -> tuple[Item, str] | None:
        """A retracted item's tombstone and the cursor of its retraction; ``None`` if not retracted."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._gone, item_id)
            pipe.hget(self._cursor, item_id)
            raw, cursor = await self._call(pipe.execute)
        return None if raw is None else (Item.from_json(raw), str(cursor or "0-0"))

    async def page(self, *, channel: str | None = None, limit: int = 20, before: str | None = None) -> Page:
        """Live items newest first by (published_at, id); stable while new items arrive."""
        bound = "+" if before is None else "(" + before
        keys = [self._timeline(channel), self._items, self.stream_key, self._pinned]
        args: list[str | int] = [bound, limit, "1" if before is None else "0"]
        reply = await self._call(lambda: self._page(keys=keys, args=args))
        cursor, count = reply[0], int(reply[1])
        pairs = reply[2 : 2 + 2 * count]
        rows = [(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2) if pairs[i + 1]]
        items = [Item.from_json(raw) for _, raw in rows[:limit]]
        more = count > limit
        pinned = [Item.from_json(raw) for raw in reply[2 + 2 * count :] if raw]
        if channel is not None:
            pinned = [item for item in pinned if item.channel == channel]
        return Page(items, cursor, items[-1].sort_key if more and items else None, pinned)

    async def retracted(self, limit: int = 50) -> list[Item]:
        """Recently retracted items (tombstones), for feeds."""
        raw = await self._call(lambda: self.redis.hvals(self._gone))
        items = [Item.from_json(r) for r in raw]
        return sorted(items, key=lambda i: i.sort_key, reverse=True)[:limit]

    async def head(self) -> str:
        """The cursor of the newest entry (``0-0`` for an empty stream)."""
        last = await self._call(lambda: self.redis.xrevrange(self.stream_key, count=1))
        return str(last[0][0]) if last else "0-0"

    async def first(self) -> str | None:
        """The cursor of the oldest retained entry; older cursors have been trimmed away."""
        first = await self._call(lambda: self.redis.xrange(self.stream_key, count=1))
        return str(first[0][0]) if first else None

    async def changes_after(self, cursor: str, *, count: int = 1000) -> list[Change]:
        """Entries after ``cursor``, oldest first (no waiting)."""
        rows = await self._call(lambda: self.redis.xrange(self.stream_key, min="(" + cursor, count=count))
        return [Change.from_entry(entry_id, fields) for entry_id, fields in rows]

    async def changes_until(self, cursor: str, *, count: int) -> list[Change]:
        """Up to ``count`` entries ending at ``cursor`` (inclusive), oldest first: history for resumes."""
        rows = await self._call(lambda: self.redis.xrevrange(self.stream_key, max=cursor, count=count))
        return [Change.from_entry(entry_id, fields) for entry_id, fields in reversed(rows)]

    async def has(self, cursor: str) -> bool:
        """Whether the entry ``cursor`` is in the stream (after a failover: whether the new primary had it)."""
        return bool(await self._call(lambda: self.redis.xrange(self.stream_key, min=cursor, max=cursor, count=1)))

    async def wait_changes(self, cursor: str, *, count: int = 1000, block_ms: int = 5000) -> list[Change]:
        """Entries after ``cursor``, waiting up to ``block_ms`` for the first one."""
        reply: Any = await self._call(lambda: self.redis.xread({self.stream_key: cursor}, count=count, block=block_ms))
        if not reply:
            return []
        return [Change.from_entry(entry_id, fields) for entry_id, fields in reply[0][1]]

    async def tombstones(self, *, channel: str | None = None, limit: int = 50) -> list[tuple[Item, str]]:
        """Retracted items with the cursor of their retraction, most recently retracted first."""
        items = [i for i in await self.retracted(limit=1_000_000) if channel is None or i.channel == channel]
        if not items:
            return []
        cursors = await self._call(lambda: self.redis.hmget(self._cursor, [i.id for i in items]))
        pairs = [(item, str(c)) for item, c in zip(items, cursors, strict=True) if c]
        return sorted(pairs, key=lambda pair: cursor_key(pair[1]), reverse=True)[:limit]

    # --- consumer groups ------------------------------------------------------
    # Entries are returned raw, as (cursor, fields) with fields None for an entry
    # trimmed away while it was pending, so ticker.consumer decides what a bad
    # entry means instead of this module.

    def dead_letter_key(self, group: str) -> str:
        return f"{{{self.prefix}}}:dead:{group}"

    async def create_group(self, group: str, start: str) -> bool:
        """Create ``group`` reading after ``start`` (``$``: new changes only); ``False`` if it exists."""
        try:
            await self._call(lambda: self.redis.xgroup_create(self.stream_key, group, id=start, mkstream=True))
        except ResponseError as exc:
            if str(exc).startswith("BUSYGROUP"):
                return False
            raise TickerError(f"cannot create consumer group {group!r} at {start!r}: {exc}") from None
        return True

    async def group_info(self, group: str) -> dict[str, Any] | None:
        """Redis's XINFO GROUPS record of ``group`` (pending, last-delivered-id, lag), or ``None``."""
        try:
            groups = await self._call(lambda: self.redis.xinfo_groups(self.stream_key))
        except ResponseError:
            return None  # no stream yet
        return next((dict(g) for g in groups if g["name"] == group), None)

    async def group_consumers(self, group: str) -> dict[str, dict[str, Any]]:
        """The members of ``group`` by name, with their pending count and idle time."""
        try:
            rows = await self._call(lambda: self.redis.xinfo_consumers(self.stream_key, group))
        except ResponseError:
            return {}  # no such stream or group
        return {str(row["name"]): dict(row) for row in rows}

    async def trimmed_after(self, cursor: str, *, entries_read: int | None = None) -> bool:
        """Whether entries after ``cursor`` were trimmed away, so a reader there missed some.

        With a group's ``entries_read`` counter the answer is exact; without it, any
        cursor older than the oldest retained entry counts (the entry right after it
        may have been the oldest one trimmed).
        """
        try:
            info = await self._call(lambda: self.redis.xinfo_stream(self.stream_key))
        except ResponseError:
            return False  # no stream yet
        first = info.get("first-entry")
        if not first or cursor_key(cursor) >= cursor_key(str(first[0])):
            return False
        added = info.get("entries-added")
        if entries_read is not None and added is not None:
            return int(added) - entries_read - int(info["length"]) > 0
        return True

    async def read_group(
        self, group: str, consumer: str, *, count: int, block_ms: int | None = None, after: str = ">"
    ) -> list[tuple[str, dict[str, str] | None]]:
        """New entries for ``consumer`` (``after=">"``, waiting up to ``block_ms``), or its own
        pending entries after the id ``after`` (no waiting)."""
        streams: dict[Any, Any] = {self.stream_key: after}
        block = block_ms if after == ">" else None
        try:
            reply = await self._call(lambda: self.redis.xreadgroup(group, consumer, streams, count=count, block=block))
        except ResponseError as exc:
            if str(exc).startswith("NOGROUP"):  # a failover promoted a replica that never had the group
                raise NotFound(f"consumer group {group!r} does not exist") from None
            raise
        # An entry trimmed away while pending comes back without fields: report it as None.
        return [(cursor, fields or None) for cursor, fields in reply[0][1]] if reply else []

    async def claim(
        self, group: str, consumer: str, *, min_idle_ms: int, start: str = "0-0", count: int = 100
    ) -> tuple[str, list[tuple[str, dict[str, str]]], list[str]]:
        """XAUTOCLAIM: pending entries idle for ``min_idle_ms`` move to ``consumer``.

        Returns the cursor to continue scanning from (``0-0`` when done), the claimed
        entries, and the ids of pending entries that had been trimmed away (Redis drops those
        from the pending list).
        """
        reply = await self._call(
            lambda: self.redis.xautoclaim(self.stream_key, group, consumer, min_idle_ms, start_id=start, count=count)
        )
        # Redis 7 lists trimmed entries apart; Redis 6.2 returns them without fields.
        deleted = [str(c) for c in reply[2]] if len(reply) > 2 else []
        deleted += [c for c, f in reply[1] if not f]
        return str(reply[0]), [(c, f) for c, f in reply[1] if f], deleted

    async def deliveries(self, group: str, cursors: list[str]) -> dict[str, int]:
        """How many times each pending entry was delivered (Redis counts reads and claims)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cursor in cursors:
                pipe.xpending_range(self.stream_key, group, min=cursor, max=cursor, count=1)
            replies = await self._call(pipe.execute)
        return {row["message_id"]: int(row["times_delivered"]) for reply in replies for row in reply}

    async def ack(self, group: str, *cursors: str) -> int:
        return int(await self._call(lambda: self.redis.xack(self.stream_key, group, *cursors)))

    async def dead_letter(self, group: str, cursor: str, fields: dict[str, str], note: dict[str, str]) -> str:
        """Copy an entry with ``note`` (error, attempts...) to the group's dead-letter stream and ack it.

        Both happen in one script (the keys share the hash tag), so an entry is
        either still pending or dead-lettered, never lost and never both.
        """
        entry = {**fields, **note, "cursor": cursor}
        keys = [self.dead_letter_key(group), self.stream_key]
        args: list[str | int] = [group, cursor, self.stream_maxlen, *(x for pair in entry.items() for x in pair)]
        return str(await self._call(lambda: self._dead_letter(keys=keys, args=args)))

    async def dead_letters(self, group: str, *, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """The oldest entries of the group's dead-letter stream."""
        return list(await self._call(lambda: self.redis.xrange(self.dead_letter_key(group), count=count)))

    # --- staff tokens -------------------------------------------------------

    async def add_token(self, name: str, token_hash: str, record: dict[str, Any]) -> None:
        created = await self._call(lambda: self.redis.hsetnx(self._tokens, name, json.dumps(record)))
        if not created:
            raise Conflict(f"a token named {name!r} exists already; revoke it first or pick another name")
        await self._call(lambda: self.redis.hset(self._token_hash, token_hash, name))

    async def use_token(self, token_hash: str, at: str) -> tuple[str, dict[str, Any]] | None:
        """The token's name and record, recording its use at ``at``; ``None`` if unknown or revoked."""
        keys = [self._token_hash, self._tokens, self._token_used]
        reply = await self._call(lambda: self._token(keys=keys, args=[token_hash, at]))
        return None if not reply else (reply[0], json.loads(reply[1]))

    async def tokens(self) -> dict[str, dict[str, Any]]:
        records = await self._call(lambda: self.redis.hgetall(self._tokens))
        used = await self._call(lambda: self.redis.hgetall(self._token_used))
        return {name: {**json.loads(raw), "last_used": used.get(name)} for name, raw in sorted(records.items())}

    async def revoke_token(self, name: str) -> None:
        raw = await self._call(lambda: self.redis.hget(self._tokens, name))
        if raw is None:
            raise NotFound(f"no token named {name!r}")
        record = json.loads(raw)
        keys = [self._token_hash, self._tokens, self._token_used]
        await self._call(lambda: self._revoke(keys=keys, args=[record["hash"], name]))

    async def clear(self) -> None:
        """Delete every key of this prefix (tests and ``ticker`` resets only)."""
        keys = [k async for k in self.redis.scan_iter(match="{" + self.prefix + "}:*", count=1000)]
        if keys:
            await self.redis.delete(*keys)
