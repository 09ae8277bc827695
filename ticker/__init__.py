"""Ticker: a live news-ticker event service.

The public Python surface: the client for a running server, the item models
and the error tree. Everything else is internal.
"""

from ticker.client import Client, ServerUnreachable
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
from ticker.models import EditKind, Item, ItemCreate, ItemEdit

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Conflict",
    "EditKind",
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
]
