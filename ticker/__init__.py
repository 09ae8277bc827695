"""Ticker: a live news-ticker event service."""

__version__ = "0.1.0"

__all__ = ["__version__"]
