"""Rate limits, as pure state: the caller supplies the clock."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """Allows ``rate`` events per second on average, and bursts of up to ``burst``."""

    rate: float
    burst: int
    _level: float = field(init=False)
    _at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._level = float(self.burst)

    def take(self, at: float) -> float:
        """Take one event at time ``at``; 0 if allowed, else seconds until it would be."""
        if self._at is not None:
            self._level = min(float(self.burst), self._level + (at - self._at) * self.rate)
        self._at = at
        if self._level >= 1:
            self._level -= 1
            return 0.0
        return (1 - self._level) / self.rate if self.rate > 0 else float("inf")


@dataclass(slots=True)
class KeyedBuckets:
    """One :class:`TokenBucket` per key (e.g. per staff token), created on first use."""

    rate: float
    burst: int
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, key: str, at: float) -> float:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take(at)


@dataclass(slots=True)
class ConnectionCounter:
    """Open connections in total and per address; ``trusted`` addresses skip the per-address cap."""

    limit: int
    per_address: int
    trusted: frozenset[str] = frozenset()
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
