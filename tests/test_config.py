"""Settings: read once from TICKER_* variables, every bad value one clear sentence; every form
a Redis URL may take."""

from __future__ import annotations

from pathlib import Path

import pytest

from ticker import config
from ticker.config import RedisTarget, Settings, load, parse_redis_url
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
        ({"TICKER_PORT": "\u0663"}, "TICKER_PORT='\u0663' is not valid; expected a whole number"),
        ({"TICKER_WORKERS": "+2"}, "TICKER_WORKERS"),
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


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://h:6380", "unix:///run/redis.sock?db=2"])
def test_single_servers_are_taken_as_they_are(url: str) -> None:
    assert parse_redis_url(url) == RedisTarget(kind="single", url=url)


def test_sentinel_url() -> None:
    target = parse_redis_url(
        "redis+sentinel://app:s%40cret@127.0.2.1:26379,127.0.2.2,[::1]:26380/ticker/2?sentinel_password=x"
    )
    assert target.kind == "sentinel" and target.service == "ticker" and target.db == 2
    assert target.nodes == (("127.0.2.1", 26379), ("127.0.2.2", 26379), ("::1", 26380))
    assert (target.username, target.password, target.tls) == ("app", "s@cret", False)
    assert dict(target.options) == {"sentinel_password": "x"}
    assert parse_redis_url("redis+sentinels://h:1/ticker").tls


def test_cluster_url() -> None:
    target = parse_redis_url("redis+cluster://127.0.2.1:7000,127.0.2.2:7001")
    assert target.kind == "cluster" and target.nodes == (("127.0.2.1", 7000), ("127.0.2.2", 7001))
    assert parse_redis_url("redis+clusters://:pw@h").nodes == (("h", 6379),)
    assert parse_redis_url("redis+clusters://:pw@h").password == "pw"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://x", "must start with one of"),
        ("localhost:6379", "must start with one of"),
        ("redis+sentinel://h:26379", "must end in /service_name"),
        ("redis+sentinel://h:26379/ticker/zero", "must end in /service_name"),
        ("redis+sentinel://h:26379/a/1/2", "must end in /service_name"),
        ("redis+cluster://h:7000/0", "a Cluster has no databases"),
        ("redis+cluster://h:port", "not host:port"),
        ("redis+cluster://h:70000", "not host:port"),
        ("redis+cluster://", "not host:port"),
        ("redis+cluster://a:1,,b:2", "not host:port"),
        ("redis+sentinel://h/ticker?timeout=1", "unknown option 'timeout'"),
    ],
)
def test_bad_redis_urls_are_one_sentence(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_redis_url(url)
    assert words in raised.value.message and "\n" not in raised.value.message


def test_durability_settings_from_the_environment() -> None:
    settings = load({"TICKER_MIN_REPLICAS": "1", "TICKER_REPLICA_WAIT_MS": "500", "TICKER_STATE_DIR": "s"})
    assert (settings.min_replicas, settings.replica_wait_ms) == (1, 500)
    assert load({"TICKER_STATE_DIR": "s"}).min_replicas == 0
    for env, words in [
        ({"TICKER_MIN_REPLICAS": "-1"}, "TICKER_MIN_REPLICAS='-1' is not valid"),
        ({"TICKER_REPLICA_WAIT_MS": "0"}, "replica_wait_ms"),
        ({"TICKER_MIN_REPLICAS": "one"}, "TICKER_MIN_REPLICAS"),
        ({"TICKER_REDIS_URL": "redis+sentinel://h"}, "service_name"),
    ]:
        with pytest.raises(ConfigError) as raised:
            load({**env, "TICKER_STATE_DIR": "s"})
        assert words in raised.value.message


def test_fan_out_slices_from_the_environment() -> None:
    settings = load({"TICKER_FANOUT_SLICE_MS": "0.5", "TICKER_FANOUT_YIELD_MS": "0", "TICKER_STATE_DIR": "s"})
    assert (settings.fanout_slice_ms, settings.fanout_yield_ms) == (0.5, 0)
    for value in ["-1", "nan", "inf"]:
        with pytest.raises(ConfigError, match="fanout_slice_ms, fanout_yield_ms and fanout_interval_ms"):
            load({"TICKER_FANOUT_SLICE_MS": value, "TICKER_STATE_DIR": "s"})
    assert load({"TICKER_FANOUT_INTERVAL_MS": "0", "TICKER_STATE_DIR": "s"}).fanout_interval_ms == 0
    with pytest.raises(ConfigError, match="fanout_interval_ms must be at most 500"):
        load({"TICKER_FANOUT_INTERVAL_MS": "2000", "TICKER_STATE_DIR": "s"})


def test_a_password_never_appears_in_a_message() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_redis_url("redis+sentinel://app:hunter2@h:26379")
    assert "hunter2" not in raised.value.message and "app:***@h" in raised.value.message


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:\u00b9/primary",  # superscript one: isdigit() says yes, int() says no
        "redis+cluster://127.0.0.1:\u0663\u0663",  # Arabic-Indic digits: int() would read 33
        "redis+sentinel://127.0.0.1:26379/primary/\uff11",  # a fullwidth database number
    ],
)
def test_redis_url_numbers_are_ascii_digits_only(url: str) -> None:
    with pytest.raises(ConfigError, match="the Redis URL"):
        config.parse_redis_url(url)
