"""Rate limits, as pure state: the caller supplies the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from ticker.proxies import Networks


@dataclass(slots=True)
class TokenBucket:
    """Allows ``rate`` events per second on average, and bursts of up to ``burst``."""

    rate: float
    burst: int
    _level: float = field(init=False)
    _at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._level = float(self.burst)

    def level(self, at: float) -> float:
        """Events available at time ``at`` (not taken)."""
        if self._at is None:
            return self._level
        return min(float(self.burst), self._level + (at - self._at) * self.rate)

    def wait(self, at: float) -> float:
        """Seconds from ``at`` until one event is available; 0 if one is now."""
        level = self.level(at)
        if level >= 1:
            return 0.0
        return (1 - level) / self.rate if self.rate > 0 else float("inf")

    def take(self, at: float) -> float:
        """Take one event at time ``at``; 0 if allowed, else seconds until it would be."""
        self._level = self.level(at)
        self._at = at
        if self._level >= 1:
            self._level -= 1
            return 0.0
        return self.wait(at)


@dataclass(slots=True)
class ConnectionCounter:
    """Open live connections (WebSocket and SSE) in total and per client address.

    ``trusted`` addresses skip the per-address cap, never the total.
    """

    limit: int
    per_address: int
    trusted: Networks = field(default_factory=Networks)
    total: int = 0
    by_address: dict[str, int] = field(default_factory=dict)

    def refuse(self, address: str) -> str | None:
        """``"full"`` or ``"address"`` when a new connection from ``address`` is over a cap, else None."""
        if self.total >= self.limit:
            return "full"
        if address not in self.trusted and self.by_address.get(address, 0) >= self.per_address:
            return "address"
        return None

    def add(self, address: str) -> None:
        self.total += 1
        self.by_address[address] = self.by_address.get(address, 0) + 1

    def remove(self, address: str) -> None:
        self.total -= 1
        left = self.by_address.get(address, 1) - 1
        if left:
            self.by_address[address] = left
        else:
            self.by_address.pop(address, None)


@dataclass(slots=True)
class FailureLimit:
    """Failed attempts per key (a client address): a :class:`TokenBucket` each, spent only by failures.

    Buckets that have refilled are forgotten now and then, so the table holds
    only the keys failing lately, however many addresses have ever failed.
    """

    rate: float
    burst: int
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _swept: float = field(init=False, default=float("-inf"))

    def wait(self, key: str, at: float) -> float:
        """Seconds ``key`` must wait before it may try again; 0 if it may now."""
        bucket = self.buckets.get(key)
        return 0.0 if bucket is None else bucket.wait(at)

    def fail(self, key: str, at: float) -> None:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst)
        bucket.take(at)
        if at - self._swept >= self.burst / self.rate:
            self._swept = at
            for stale in [k for k, b in self.buckets.items() if b.level(at) >= self.burst]:
                del self.buckets[stale]
