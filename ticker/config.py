"""Settings, read once from ``TICKER_*`` environment variables and CLI flags.

Nothing else in the package reads the environment: every object receives the
values it needs from a :class:`Settings` instance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticker.errors import ConfigError

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
    display_timezone: str = DEFAULT_DISPLAY_TIMEZONE
    locale: str = DEFAULT_LOCALE
    site_name: str = DEFAULT_SITE_NAME
    """The name the reader page and its JSON-LD carry."""
    url: str | None = None
    """A running server (for the CLI's writing commands); ``None`` means straight to Redis."""
    token: str | None = None
    """Staff token the CLI sends to :attr:`url`."""

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-``None`` values replaced (CLI flags win over env)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


_PARSERS: dict[str, Any] = {
    "redis_url": str,
    "state_dir": Path,
    "prefix": str,
    "host": str,
    "port": int,
    "stream_maxlen": int,
    "labels": _csv,
    "max_body_bytes": int,
    "write_rate": float,
    "write_burst": int,
    "trusted_addresses": _csv,
    "display_timezone": str,
    "locale": str,
    "site_name": str,
    "url": str,
    "token": str,
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
            raise ConfigError(f"{var}={raw!r} is not valid; expected {_PARSERS[name].__name__}") from None
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Reject settings no server could run with, with one clear sentence."""
    if not settings.prefix or any(c in settings.prefix for c in "{}: "):
        raise ConfigError(f"prefix {settings.prefix!r} must be non-empty without braces, colons or spaces")
    if settings.stream_maxlen < 100:
        raise ConfigError("stream_maxlen must be at least 100 entries")
    if not settings.labels:
        raise ConfigError("the label vocabulary must not be empty")
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port {settings.port} is out of range")
    try:
        ZoneInfo(settings.display_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"display time zone {settings.display_timezone!r} is unknown; use an IANA name such as Europe/Kyiv"
        ) from None


