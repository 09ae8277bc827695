"""The name of every Redis key of one deployment, laid out as the table in :mod:`ticker.store` shows.

One place for them all: a script of one concern touches the keys of another
(a publish drops a scheduled copy, a release writes the timeline), and every
name carries the hash tag ``{prefix}`` so a Redis Cluster keeps them on one slot.
"""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str) -> None:
        tag = self.tag = "{" + prefix + "}"
        self.stream = f"{tag}:stream"
        self.items = f"{tag}:items"
        self.gone = f"{tag}:gone"
        self.fp = f"{tag}:fp"
        self.cursor = f"{tag}:cursor"
        self.tl = f"{tag}:tl"
        self.pinned = f"{tag}:pinned"
        self.sched = f"{tag}:sched"
        self.sched_items = f"{tag}:sched:items"
        self.sched_by = f"{tag}:sched:by"
        self.readers = f"{tag}:readers"
        self.tokens = f"{tag}:tokens"
        self.token_hash = f"{tag}:token-hash"
        self.token_used = f"{tag}:token-used"
        self.rates = f"{tag}:rates"
        """Each token's write limit (GCRA state, by token name)."""
        self.token_keys = (self.token_hash, self.tokens, self.token_used, self.rates)
        """What every script that looks a token up, or revokes one, is handed (``_token.lua``)."""
        self.sync = f"{tag}:sync"
        self.every = f"{tag}:*"
        """A ``SCAN`` pattern that matches every key of the deployment."""

    def history(self, item_id: str) -> str:
        return f"{self.tag}:hist:{item_id}"

    def timeline(self, channel: str | None) -> str:
        """The timeline of every channel (``None``) or of one."""
        return self.tl if channel is None else f"{self.tl}:{channel}"

    def readers_of(self, process: str) -> str:
        return f"{self.readers}:{process}"

    def dead(self, group: str) -> str:
        return f"{self.tag}:dead:{group}"
