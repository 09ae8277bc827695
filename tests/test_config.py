"""Settings: read once from TICKER_* variables, every bad value one clear sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from ticker import config
from ticker.config import Settings
from ticker.errors import ConfigError


def test_defaults_without_environment(tmp_path: Path) -> None:
    settings = config.load({"HOME": str(tmp_path)})
    assert settings.redis_url is None
    assert settings.port == config.DEFAULT_PORT
    assert settings.labels == config.DEFAULT_LABELS
    assert settings.state_dir == tmp_path / ".local" / "state" / "ticker"


def test_state_dir_follows_xdg_and_ticker_state_dir(tmp_path: Path) -> None:
    assert config.load({"XDG_STATE_HOME": str(tmp_path)}).state_dir == tmp_path / "ticker"
    assert config.load({"TICKER_STATE_DIR": str(tmp_path / "x")}).state_dir == tmp_path / "x"


def test_every_setting_has_its_variable() -> None:
    fields = set(Settings.__dataclass_fields__)
    assert set(config.ENV_VARS) <= fields
    for name, var in config.ENV_VARS.items():
        assert var == "TICKER_" + name.upper()


def test_values_are_parsed_by_type() -> None:
    settings = config.load(
        {
            "TICKER_PORT": "9000",
            "TICKER_WRITE_RATE": "2.5",
            "TICKER_LABELS": " breaking, live ,",
            "TICKER_DIRECT_FRAMES": "off",
            "TICKER_REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert settings.port == 9000
    assert settings.write_rate == 2.5
    assert settings.labels == ("breaking", "live")
    assert settings.direct_frames is False
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_empty_variables_keep_the_default() -> None:
    assert config.load({"TICKER_PORT": ""}).port == config.DEFAULT_PORT


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"TICKER_PORT": "eighty"}, "TICKER_PORT"),
        ({"TICKER_PORT": "70000"}, "out of range"),
        ({"TICKER_DIRECT_FRAMES": "maybe"}, "TICKER_DIRECT_FRAMES"),
        ({"TICKER_PREFIX": "a:b"}, "prefix"),
        ({"TICKER_STREAM_MAXLEN": "5"}, "stream_maxlen"),
        ({"TICKER_REDIS_URL": "http://127.0.0.1:6379"}, "Redis URL"),
        ({"TICKER_LABELS": " , "}, "label"),
        ({"TICKER_DISPLAY_TIMEZONE": "Mars/Olympus"}, "time zone"),
        ({"TICKER_HISTORY_SIZE": "0"}, "history_size"),
    ],
)
def test_bad_values_are_one_clear_sentence(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(env)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message


def test_flags_win_over_the_environment() -> None:
    settings = config.load({"TICKER_PORT": "9000"}).with_overrides(port=9100, host=None)
    assert settings.port == 9100
    assert settings.host == config.DEFAULT_HOST


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
