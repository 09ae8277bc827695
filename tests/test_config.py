"""Settings and Redis URLs, without Redis: every form a URL may take, and one sentence for each bad one."""

from __future__ import annotations

import pytest

from ticker.config import RedisTarget, load, parse_redis_url
from ticker.errors import ConfigError


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://h:6380", "unix:///run/redis.sock?db=2"])
def test_single_servers_are_taken_as_they_are(url: str) -> None:
    assert parse_redis_url(url) == RedisTarget(kind="single", url=url)


def test_sentinel_url() -> None:
    target = parse_redis_url(
        "redis+sentinel://app:s%40cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/ticker/2?sentinel_password=x"
    )
    assert target.kind == "sentinel" and target.service == "ticker" and target.db == 2
    assert target.nodes == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert (target.username, target.password, target.tls) == ("app", "s@cret", False)
    assert dict(target.options) == {"sentinel_password": "x"}
    assert parse_redis_url("redis+sentinels://h:1/ticker").tls


def test_cluster_url() -> None:
    target = parse_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001")
    assert target.kind == "cluster" and target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
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
        ({"TICKER_MIN_REPLICAS": "-1"}, "min_replicas"),
        ({"TICKER_REPLICA_WAIT_MS": "0"}, "replica_wait_ms"),
        ({"TICKER_MIN_REPLICAS": "one"}, "TICKER_MIN_REPLICAS"),
        ({"TICKER_REDIS_URL": "redis+sentinel://h"}, "service_name"),
    ]:
        with pytest.raises(ConfigError) as raised:
            load({**env, "TICKER_STATE_DIR": "s"})
        assert words in raised.value.message
