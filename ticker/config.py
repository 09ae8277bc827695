"""Settings, read once from ``TICKER_*`` environment variables and CLI flags.

Nothing else in the package reads the environment: every object receives the
values it needs from a :class:`Settings` instance.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticker.errors import ConfigError
from ticker.proxies import Networks

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_PREFIX = "ticker"
DEFAULT_STREAM_MAXLEN = 10_000
DEFAULT_LABELS = (
    "breaking",
    "exclusive",
    "opinion",
    "interview",
    "review",
    "analysis",
    "photo",
    "video",
    "live",
)
DEFAULT_CHANNEL = "news"
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 200
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_WRITE_RATE = 20.0
DEFAULT_WRITE_BURST = 100
DEFAULT_TRUSTED_ADDRESSES = ("127.0.0.1", "::1")
DEFAULT_DISPLAY_TIMEZONE = "UTC"
DEFAULT_LOCALE = "en-GB"
DEFAULT_SITE_NAME = "Ticker"
DEFAULT_PUBLIC_URL: str | None = None
"""Unset: absolute URLs start with the request's own scheme and ``Host`` (see ``ticker/urls.py``)."""
DEFAULT_ALLOWED_ORIGINS: tuple[str, ...] = ()
"""Browser origins allowed on the live socket besides the server's own; ``*`` allows any."""
DEFAULT_MAX_CONNECTIONS = 50_000
DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 50
DEFAULT_CLIENT_BUFFER_BYTES = 1024 * 1024
"""Bytes waiting to be written to one client before it is closed as too slow (1013)."""
DEFAULT_SEND_BUFFER_BYTES = 0
"""Kernel send buffer (SO_SNDBUF) per live connection; 0 leaves it to the kernel's autotuning."""
DEFAULT_DIRECT_FRAMES = True
"""Write prepared frames straight to each connection (under Ticker's uvicorn protocol); False: ASGI send."""
DEFAULT_MAX_CLIENT_FRAME = 4096
DEFAULT_MAX_FRAME_BYTES = 64 * 1024
"""Messages due together are packed into frames of at most this size."""
DEFAULT_HISTORY_SIZE = 10_000
"""Changes held in memory for resumes; an older cursor gets reset and a snapshot."""
DEFAULT_SNAPSHOT_LIMIT = 50
DEFAULT_SNAPSHOT_POOL = 1000
"""Newest items held in memory for snapshots (pinned ones always)."""
DEFAULT_PING_INTERVAL = 20.0
DEFAULT_PING_TIMEOUT = 20.0
DEFAULT_SSE_HEARTBEAT = 15.0
DEFAULT_SHUTDOWN_GRACE = 5
"""Seconds a stopping process waits for open streams (SSE) before cutting them; WebSockets close at once."""
DEFAULT_GC_THRESHOLD = 20_000
"""Allocations between young-generation garbage collections in a server process (Python: 700)."""
DEFAULT_SCHEDULER_INTERVAL = 1.0
"""Longest a process goes without looking at the schedule (it also wakes when the soonest item is due)."""
DEFAULT_AUDIENCE_INTERVAL = 2.0
"""Seconds between a process's reports of its live readers (kept in Redis for three intervals)."""
DEFAULT_IMAGE_ORIGINS: tuple[str, ...] = ()
"""Origins (``https://host``) item photos may come from; empty allows any https origin."""
LOCAL_IMAGE_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Hosts an image origin may name with plain http (a local demo serving its own photos)."""
DEFAULT_RELATIVE_TIMES = True
"""The reader page shows "5 min ago" beside each time of the last twelve hours."""
DEFAULT_READER_COUNT = 1000
DEFAULT_READER_BLOCK_MS = 5000
DEFAULT_MAX_READER_LAG = 5.0
"""Seconds behind the stream head past which ``/readyz`` says not ready."""

# --- proxies and admission -------------------------------------------------------------
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")
"""Peers whose ``X-Forwarded-For`` is believed (addresses and CIDRs): a proxy on this host."""
DEFAULT_LOGIN_FAILURE_BURST = 10
"""Failed logins one client address may make at once before 429."""
DEFAULT_LOGIN_FAILURE_RATE = 0.2
"""Failed logins per second one client address earns back after the burst (one per 5 s)."""
# Worker processes (``ticker serve --workers N``).
DEFAULT_WORKERS = 1
"""Server processes sharing one port; past one, a supervisor starts them and restarts any that dies."""
MAX_WORKERS = 256
# Connection deadlines and the fan-out's share of the event loop (docs/performance.md).
DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a connection has to send a complete request head; one that trickles it is closed."""
DEFAULT_FANOUT_SLICE_MS = 2.0
"""Milliseconds one slice of the fan-out writes before letting the event loop serve others."""
DEFAULT_FANOUT_YIELD_MS = 20.0
"""Longest the fan-out pauses after a slice while HTTP requests (a publish) wait for their answer."""
DEFAULT_FANOUT_INTERVAL_MS = 20.0
"""Shortest time between two fan-outs: changes that come faster share the next frame."""
MAX_FANOUT_INTERVAL_MS = 500.0
# --- Redis topologies and durable writes -------------------------------------------

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+sentinels", "redis+cluster", "redis+clusters")
DEFAULT_MIN_REPLICAS = 0
"""A write is acknowledged once the primary has it: a single Redis (with its AOF) has no replicas
to wait for. Set 1 with Sentinel and two replicas so a failover never loses an acknowledged write."""
DEFAULT_REPLICA_WAIT_MS = 1000
"""How long a write waits for its replicas (``WAIT``) before it answers 503 and may be retried."""
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_REDIS_PORT = 6379
REDIS_URL_OPTIONS = ("sentinel_username", "sentinel_password", "ssl_ca_certs")
"""Query parameters a ``redis+sentinel(s)://`` or ``redis+cluster(s)://`` URL may carry."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A Redis URL taken apart: one server, a Sentinel-watched primary, or a Cluster."""

    kind: str
    """``single``, ``sentinel`` or ``cluster``."""
    url: str
    """The URL as given (a ``single`` target is opened with it as it is)."""
    nodes: tuple[tuple[str, int], ...] = ()
    """Sentinels, or the Cluster's seed nodes."""
    service: str = ""
    """The Sentinel service (primary) name."""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    options: tuple[tuple[str, str], ...] = ()


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    return re.sub(r"(://[^/@]*?:)[^/@]*@", r"\1***@", url)


def _nodes(netloc: str, default_port: int, url: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for part in netloc.split(","):
        part = part.strip()
        if part.startswith("["):  # an IPv6 address: [::1]:26379
            host, _, tail = part[1:].partition("]")
            port = tail.removeprefix(":")
        else:
            host, _, port = part.partition(":")
        port = port or str(default_port)
        if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:  # not "¹", "٣"
            raise ConfigError(f"the Redis URL {redacted(url)!r} names {part!r}, which is not host:port")
        nodes.append((host, int(port)))
    return tuple(nodes)


def parse_redis_url(url: str) -> RedisTarget:
    """Take a Redis URL apart, or raise :class:`ConfigError` with one sentence saying what is wrong.

    ``redis://``, ``rediss://`` and ``unix://`` name one server;
    ``redis+sentinel://[user:pass@]host:port[,host:port...]/service[/db]`` a primary that
    Sentinels watch (``redis+sentinels://``: TLS); ``redis+cluster://[user:pass@]host:port[,...]``
    a Redis Cluster's seed nodes (``redis+clusters://``: TLS).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in REDIS_SCHEMES:
        raise ConfigError(
            f"the Redis URL {redacted(url)!r} must start with one of " + ", ".join(f"{s}://" for s in REDIS_SCHEMES)
        )
    scheme = scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget(kind="single", url=url)
    parts = urlsplit("x://" + rest)
    userinfo, _, netloc = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    options = tuple(parse_qsl(parts.query, keep_blank_values=True))
    unknown = [name for name, _ in options if name not in REDIS_URL_OPTIONS]
    if unknown:
        raise ConfigError(
            f"the Redis URL {redacted(url)!r} has the unknown option {unknown[0]!r}; known: "
            + ", ".join(REDIS_URL_OPTIONS)
        )
    sentinel = scheme.startswith("redis+sentinel")
    nodes = _nodes(netloc, DEFAULT_SENTINEL_PORT if sentinel else DEFAULT_REDIS_PORT, url)
    path = [unquote(p) for p in parts.path.split("/") if p]
    db = 0
    service = ""
    if sentinel:
        if not path or len(path) > 2 or (len(path) == 2 and not (path[1].isascii() and path[1].isdigit())):
            raise ConfigError(f"the Redis URL {redacted(url)!r} must end in /service_name or /service_name/db")
        service = path[0]
        db = int(path[1]) if len(path) == 2 else 0
    elif path:
        raise ConfigError(f"the Redis URL {redacted(url)!r} must name only host:port pairs: a Cluster has no databases")
    return RedisTarget(
        kind="sentinel" if sentinel else "cluster",
        url=url,
        nodes=nodes,
        service=service,
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=scheme.endswith("s"),
        options=options,
    )


def validate_redis_ha(settings: Settings) -> None:
    if settings.min_replicas < 0:
        raise ConfigError("min_replicas must be 0 or more")
    if settings.replica_wait_ms < 1:
        raise ConfigError("replica_wait_ms must be at least 1")
    if settings.write_rate <= 0 or settings.write_burst < 1:
        raise ConfigError("write_rate must be above 0 and write_burst at least 1")


def default_state_dir(env: Mapping[str, str]) -> Path:
    """Where the embedded Redis keeps its data: per user, surviving restarts."""
    if "TICKER_STATE_DIR" in env:
        return Path(env["TICKER_STATE_DIR"])
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(base) / "ticker"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a server process or a CLI command is configured with."""

    redis_url: str | None = None
    """Redis to use; ``None`` starts the embedded one in :attr:`state_dir`."""
    state_dir: Path = field(default_factory=lambda: default_state_dir(os.environ))
    prefix: str = DEFAULT_PREFIX
    """Key prefix; every key of one deployment shares the hash tag ``{prefix}``."""
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    stream_maxlen: int = DEFAULT_STREAM_MAXLEN
    labels: tuple[str, ...] = DEFAULT_LABELS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    write_rate: float = DEFAULT_WRITE_RATE
    """Staff writes per second allowed per token (token bucket)."""
    write_burst: int = DEFAULT_WRITE_BURST
    trusted_addresses: tuple[str, ...] = DEFAULT_TRUSTED_ADDRESSES
    """Client addresses and CIDRs exempt from the per-address connection cap (after proxies are resolved)."""
    display_timezone: str = DEFAULT_DISPLAY_TIMEZONE
    locale: str = DEFAULT_LOCALE
    site_name: str = DEFAULT_SITE_NAME
    """The name the reader page and its JSON-LD carry."""
    url: str | None = None
    """A running server (for the CLI's writing commands); ``None`` means straight to Redis."""
    token: str | None = None
    """Staff token the CLI sends to :attr:`url`."""
    public_url: str | None = DEFAULT_PUBLIC_URL
    """Where readers reach the service (``https://news.example``, a path prefix allowed), without
    a trailing slash: the start of every absolute URL written, and the live socket's own origin."""
    allowed_origins: tuple[str, ...] = DEFAULT_ALLOWED_ORIGINS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connections_per_address: int = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
    """Live connections (WebSocket and SSE) from one client address; :attr:`trusted_addresses` are exempt."""
    client_buffer_bytes: int = DEFAULT_CLIENT_BUFFER_BYTES
    send_buffer_bytes: int = DEFAULT_SEND_BUFFER_BYTES
    direct_frames: bool = DEFAULT_DIRECT_FRAMES
    max_client_frame: int = DEFAULT_MAX_CLIENT_FRAME
    history_size: int = DEFAULT_HISTORY_SIZE
    snapshot_limit: int = DEFAULT_SNAPSHOT_LIMIT
    snapshot_pool: int = DEFAULT_SNAPSHOT_POOL
    ping_interval: float = DEFAULT_PING_INTERVAL
    ping_timeout: float = DEFAULT_PING_TIMEOUT
    sse_heartbeat: float = DEFAULT_SSE_HEARTBEAT
    shutdown_grace: int = DEFAULT_SHUTDOWN_GRACE
    gc_threshold: int = DEFAULT_GC_THRESHOLD
    """Thousands of live connections make each collection costly; 0 keeps Python's default."""
    reader_count: int = DEFAULT_READER_COUNT
    reader_block_ms: int = DEFAULT_READER_BLOCK_MS
    max_reader_lag: float = DEFAULT_MAX_READER_LAG
    scheduler_interval: float = DEFAULT_SCHEDULER_INTERVAL
    audience_interval: float = DEFAULT_AUDIENCE_INTERVAL
    image_origins: tuple[str, ...] = DEFAULT_IMAGE_ORIGINS
    """Where item photos may come from; the pages' CSP ``img-src`` lists exactly these."""
    relative_times: bool = DEFAULT_RELATIVE_TIMES
    # proxies and admission
    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED_PROXIES
    """Addresses and CIDRs of proxies whose ``X-Forwarded-For`` names the client (``ticker.proxies``)."""
    login_failure_burst: int = DEFAULT_LOGIN_FAILURE_BURST
    login_failure_rate: float = DEFAULT_LOGIN_FAILURE_RATE

    # Worker processes.
    workers: int = DEFAULT_WORKERS
    metrics_dir: Path | None = None
    """Where the workers of one ``serve`` share their metrics; set by the supervisor, never by hand."""
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    fanout_slice_ms: float = DEFAULT_FANOUT_SLICE_MS
    fanout_yield_ms: float = DEFAULT_FANOUT_YIELD_MS
    fanout_interval_ms: float = DEFAULT_FANOUT_INTERVAL_MS
    """A change after a quiet spell goes out at once; at a higher rate, changes are read in batches."""
    min_replicas: int = DEFAULT_MIN_REPLICAS
    """Replicas that must have a write before it is acknowledged (``WAIT``); 0: the primary alone."""
    replica_wait_ms: int = DEFAULT_REPLICA_WAIT_MS
    """How long a write waits for :attr:`min_replicas` before it answers 503."""

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-``None`` values replaced (CLI flags win over env)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _flag(value: str) -> bool:
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def public_url(value: str) -> str:
    """``TICKER_PUBLIC_URL`` without its trailing slash: an absolute http(s) URL with a host,
    and no user, query, fragment or backslash (a path prefix is allowed)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or "\\" in value:
        raise ValueError(value)
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise ValueError(value)
    try:
        parts.port  # noqa: B018 - an out-of-range port raises here
    except ValueError:
        raise ValueError(value) from None
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def whole_number(value: str) -> int:
    """A count, size or port in ASCII digits: ``int`` also reads ``٣``, ``３``, ``+3``, `` 3 `` and ``3_0``."""
    if not (value.isascii() and value.isdigit()):
        raise ValueError(value)
    return int(value)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


_PARSERS: dict[str, Any] = {
    "redis_url": str,
    "state_dir": Path,
    "prefix": str,
    "host": str,
    "port": whole_number,
    "stream_maxlen": whole_number,
    "labels": _csv,
    "max_body_bytes": whole_number,
    "write_rate": float,
    "write_burst": whole_number,
    "trusted_addresses": _csv,
    "display_timezone": str,
    "locale": str,
    "site_name": str,
    "url": str,
    "token": str,
    "public_url": public_url,
    "allowed_origins": _csv,
    "max_connections": whole_number,
    "max_connections_per_address": whole_number,
    "client_buffer_bytes": whole_number,
    "send_buffer_bytes": whole_number,
    "direct_frames": _flag,
    "max_client_frame": whole_number,
    "history_size": whole_number,
    "snapshot_limit": whole_number,
    "snapshot_pool": whole_number,
    "ping_interval": float,
    "ping_timeout": float,
    "sse_heartbeat": float,
    "shutdown_grace": whole_number,
    "gc_threshold": whole_number,
    "reader_count": whole_number,
    "reader_block_ms": whole_number,
    "max_reader_lag": float,
    "scheduler_interval": float,
    "audience_interval": float,
    "image_origins": _csv,
    "relative_times": _flag,
    # proxies and admission
    "trusted_proxies": _csv,
    "login_failure_burst": whole_number,
    "login_failure_rate": float,
    # Worker processes.
    "workers": whole_number,
    "header_timeout": float,
    "fanout_slice_ms": float,
    "fanout_yield_ms": float,
    "fanout_interval_ms": float,
    "min_replicas": whole_number,
    "replica_wait_ms": whole_number,
}

_EXPECTED = {
    "public_url": "an absolute http(s) URL such as https://news.example, without user, query or fragment",
    **{name: "a whole number in digits 0-9" for name, parse in _PARSERS.items() if parse is whole_number},
}

ENV_VARS = {name: f"TICKER_{name.upper()}" for name in _PARSERS}
"""The environment variable behind each setting, e.g. ``TICKER_REDIS_URL``."""


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (``os.environ`` by default)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {"state_dir": default_state_dir(env)}
    for name, var in ENV_VARS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[name] = _PARSERS[name](raw)
        except ValueError:
            expected = _EXPECTED.get(name, _PARSERS[name].__name__)
            raise ConfigError(f"{var}={raw!r} is not valid; expected {expected}") from None
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Reject settings no server could run with, with one clear sentence."""
    if not settings.prefix or any(c in settings.prefix for c in "{}: "):
        raise ConfigError(f"prefix {settings.prefix!r} must be non-empty without braces, colons or spaces")
    if settings.stream_maxlen < 100:
        raise ConfigError("stream_maxlen must be at least 100 entries")
    if settings.redis_url is not None:
        parse_redis_url(settings.redis_url)
    validate_redis_ha(settings)
    if not settings.labels:
        raise ConfigError("the label vocabulary must not be empty")
    if settings.history_size < 1 or settings.snapshot_limit < 1 or settings.reader_count < 1:
        raise ConfigError("history_size, snapshot_limit and reader_count must be at least 1")
    if settings.reader_block_ms < 1:
        raise ConfigError("reader_block_ms must be at least 1")
    if settings.scheduler_interval <= 0 or settings.audience_interval <= 0:
        raise ConfigError("scheduler_interval and audience_interval must be above 0 seconds")
    for origin in settings.image_origins:
        parts = urlsplit(origin)
        local = parts.scheme == "http" and (parts.hostname or "") in LOCAL_IMAGE_HOSTS
        if not (parts.scheme == "https" or local) or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ConfigError(
                f"image origin {origin!r} must be https://host or https://host:port (http only for localhost)"
            )
    for name in ("trusted_proxies", "trusted_addresses"):
        try:
            Networks.parse(getattr(settings, name))
        except ValueError as exc:
            raise ConfigError(f"{ENV_VARS[name]}: {exc}") from None
    if settings.login_failure_burst < 1 or settings.login_failure_rate <= 0:
        raise ConfigError("login_failure_burst must be at least 1 and login_failure_rate above 0")
    if not 1 <= settings.workers <= MAX_WORKERS:
        raise ConfigError(f"workers must be between 1 and {MAX_WORKERS}, not {settings.workers}")
    if settings.header_timeout <= 0:
        raise ConfigError("header_timeout must be above 0 seconds")
    fanout = (settings.fanout_slice_ms, settings.fanout_yield_ms, settings.fanout_interval_ms)
    if not all(0 <= ms < math.inf for ms in fanout):
        raise ConfigError("fanout_slice_ms, fanout_yield_ms and fanout_interval_ms must be 0 or more milliseconds")
    if settings.fanout_interval_ms > MAX_FANOUT_INTERVAL_MS:
        raise ConfigError(
            f"fanout_interval_ms must be at most {MAX_FANOUT_INTERVAL_MS:g}: changes must reach readers within a second"
        )
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port {settings.port} is out of range")
    try:
        ZoneInfo(settings.display_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"display time zone {settings.display_timezone!r} is unknown; use an IANA name such as Europe/Kyiv"
        ) from None
