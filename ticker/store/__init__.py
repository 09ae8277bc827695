"""The only package that talks to Redis.

Every change is one Lua script (``ticker/lua/``) that appends the stream entry and
updates the item state together, so the log and the state never disagree. All keys
share the hash tag ``{prefix}`` so the same scripts run on a Redis Cluster::

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
    {p}:readers         sorted set of the server processes that reported readers
    {p}:tokens          hash name -> token record JSON; {p}:token-hash: hash -> name
    {p}:token-used      hash name -> when the token was last used
    {p}:dead:<group>    dead-letter stream of one consumer group (entries that kept failing)
    {p}:rates           hash name -> a staff token's write limit (GCRA: the theoretical arrival time)
    {p}:sync            a counter written before ``WAIT`` so the wait covers every earlier change

:class:`Store` is put together from one part per concern, each a module of its own:

    connection  :func:`connect` to one server, a Sentinel-watched primary or a Cluster;
                turning "not now" into 503s, replica waits, "would a write succeed?"
    keys        the names above
    stream      reading the change log in order
    items       publish, edit, retract; pages, tombstones, history, search
    schedule    items waiting for their ``publish_at``
    groups      consumer groups and their dead letters
    tokens      staff tokens and the shared write limit
    audience    live readers per channel, over every server process
"""

from ticker.store.audience import Audience
from ticker.store.connection import (
    REPLICA_LAG_SLACK,
    TRANSIENT,
    TRANSIENT_REPLIES,
    WRITE_CHECK_TTL,
    Client,
    SentinelClient,
    connect,
    transient,
    unavailable,
)
from ticker.store.groups import Groups
from ticker.store.items import EDIT_RETRIES, Items, Page, Version, WriteResult
from ticker.store.schedule import Schedule
from ticker.store.tokens import Found, TokenRefused, Tokens, TokenUse

__all__ = [
    "EDIT_RETRIES",
    "REPLICA_LAG_SLACK",
    "TRANSIENT",
    "TRANSIENT_REPLIES",
    "WRITE_CHECK_TTL",
    "Client",
    "Found",
    "Page",
    "SentinelClient",
    "Store",
    "TokenRefused",
    "TokenUse",
    "Version",
    "WriteResult",
    "connect",
    "transient",
    "unavailable",
]


class Store(Items, Schedule, Groups, Tokens, Audience):
    """Items, their change log, the schedule, consumer groups, staff tokens and readers now, in one Redis.

    ``Store(redis, *, prefix, stream_maxlen, min_replicas, replica_wait_ms)``: see
    :class:`ticker.store.connection.Connection`.
    """
