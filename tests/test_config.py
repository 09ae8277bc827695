"""Settings read from the environment: the public URL every absolute URL starts with."""

from __future__ import annotations

import pytest

from ticker import config
from ticker.errors import ConfigError


def test_public_url_is_normalized() -> None:
    assert config.load({}).public_url is None
    assert config.load({"TICKER_PUBLIC_URL": "https://News.Example/"}).public_url == "https://news.example"
    assert config.load({"TICKER_PUBLIC_URL": "http://127.0.0.1:8000/live/"}).public_url == "http://127.0.0.1:8000/live"


@pytest.mark.parametrize(
    "value",
    [
        "news.example",
        "ftp://news.example",
        "https://user@news.example",
        "https://news.example/?x=1",
        "https://news.example/#top",
        "https://news.example\\@evil.example",
        "https://news.example:99999",
    ],
)
def test_bad_public_url_is_one_clear_error(value: str) -> None:
    with pytest.raises(ConfigError, match=r"TICKER_PUBLIC_URL=.*absolute http"):
        config.load({"TICKER_PUBLIC_URL": value})
