"""Ticker: a live news-ticker event service.

The public Python surface: the client for a running server, the consumer for
services reading the stream (``docs/stream.md``), the item models and the
error tree. Everything else is internal.
"""

from ticker.client import Client, ServerUnreachable
from ticker.consumer import Consumer, consume
from ticker.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    RateLimited,
    TickerError,
    Unauthorized,
    Unavailable,
)
from ticker.models import EditKind, Event, Item, ItemCreate, ItemEdit

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Conflict",
    "Consumer",
    "EditKind",
    "Event",
    "Forbidden",
    "InvalidInput",
    "Item",
    "ItemCreate",
    "ItemEdit",
    "NotFound",
    "PreconditionFailed",
    "RateLimited",
    "ServerUnreachable",
    "TickerError",
    "Unauthorized",
    "Unavailable",
    "__version__",
    "consume",
]
