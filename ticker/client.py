"""The Python client for a running Ticker server's HTTP API.

Errors come back as the same :mod:`ticker.errors` classes the server raised,
with the server's message, so callers handle one error tree either way.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from ticker import errors

DEFAULT_TIMEOUT = 10.0

_BY_STATUS: dict[int, type[errors.TickerError]] = {
    cls.status: cls
    for cls in (
        errors.InvalidInput,
        errors.NotFound,
        errors.Conflict,
        errors.PreconditionFailed,
        errors.Forbidden,
        errors.PayloadTooLarge,
        errors.UnsupportedMediaType,
    )
}


class ServerUnreachable(errors.TickerError):
    code = "unreachable"


class Client:
    """A staff or reader client: ``Client(url, token=...)``; usable as a context manager."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerUnreachable(
                f"cannot reach the server at {self.url} ({exc.__class__.__name__}); is it running? check TICKER_URL"
            ) from None
        if response.status_code < 400:
            return response.json()
        try:
            error = response.json()["error"]
            message, fields = str(error["message"]), list(error.get("fields") or [])
        except (ValueError, KeyError, TypeError):
            message, fields = f"HTTP {response.status_code} from {self.url}", []
        status = response.status_code
        if status == 401:
            raise errors.Unauthorized(message)
        if status == 429:
            raise errors.RateLimited(message, retry_after=float(response.headers.get("retry-after", "1")))
        if status == 503:
            raise errors.Unavailable(message)
        raise _BY_STATUS.get(status, errors.TickerError)(message, fields=fields)

    def publish(self, headline: str, **fields: Any) -> dict[str, Any]:
        """Publish; returns ``{"item": ..., "cursor": ...}``."""
        body = {"headline": headline, **{k: v for k, v in fields.items() if v is not None}}
        result: dict[str, Any] = self._request("POST", "/api/items", json=body)
        return result

    def edit(self, item_id: str, *, if_match: int | None = None, **fields: Any) -> dict[str, Any]:
        """Edit (``kind`` = update, correction or fix); returns ``{"item", "cursor"}``."""
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
        body = {k: v for k, v in fields.items() if v is not None}
        result: dict[str, Any] = self._request("PATCH", f"/api/items/{item_id}", json=body, headers=headers)
        return result

    def retract(self, item_id: str, *, if_match: int | None = None) -> dict[str, Any]:
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
        result: dict[str, Any] = self._request("DELETE", f"/api/items/{item_id}", headers=headers)
        return result

    def get(self, item_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/api/items/{item_id}")
        return result

    def items(self, *, channel: str | None = None, limit: int | None = None, before: str | None = None) -> Any:
        params = {k: v for k, v in {"channel": channel, "limit": limit, "before": before}.items() if v is not None}
        return self._request("GET", "/api/items", params=params)
