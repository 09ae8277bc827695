"""Every absolute URL the service writes: feeds' ids and links, tombstone refs, JSON-LD, pages.

One base, chosen once per request: ``TICKER_PUBLIC_URL`` when it is set, and then
never the request's ``Host``, so an Atom id stays the same whichever name a
client used and a forged ``Host`` cannot put another site into a feed. Unset,
the base is the request's own scheme and ``Host``: that is the only name a
development or single-host install knows itself by, and what makes it work
with no setting at all (``docs/deploy.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class Urls:
    """Absolute URLs under one base (no trailing slash)."""

    base: str

    @classmethod
    def of(cls, request: Request) -> Urls:
        """The URLs for answering ``request``: the configured public URL, else the request's own."""
        public: str | None = request.app.state.settings.public_url
        return cls(public if public is not None else str(request.base_url).rstrip("/"))

    def home(self) -> str:
        """The reader page."""
        return f"{self.base}/"

    def item(self, item_id: str) -> str:
        """The item's permalink page: feed entries and JSON-LD point here."""
        return f"{self.base}/items/{quote(item_id, safe='')}"

    def api_item(self, item_id: str) -> str:
        return f"{self.base}/api/items/{quote(item_id, safe='')}"

    def path(self, path: str, query: dict[str, str] | None = None) -> str:
        """``path`` (starting with ``/``) under the base, with the non-empty ``query`` values."""
        params = {k: v for k, v in (query or {}).items() if v}
        return f"{self.base}{path}" + (f"?{urlencode(params)}" if params else "")
