from ticker.limits import ConnectionCounter, FailureLimit, TokenBucket
from ticker.proxies import Networks


def test_bucket_allows_burst_then_rate() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == 0.5
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) > 0


def test_failure_limit_counts_failures_per_key_and_refills() -> None:
    limit = FailureLimit(rate=0.5, burst=3)
    assert limit.wait("a", 0) == 0
    for _ in range(3):
        limit.fail("a", 0)
    assert limit.wait("a", 0) == 2.0 and limit.wait("b", 0) == 0
    assert limit.wait("a", 1) == 1.0 and limit.wait("a", 2) == 0


def test_failure_limit_forgets_keys_that_have_refilled() -> None:
    limit = FailureLimit(rate=1, burst=2)
    for i in range(100):
        limit.fail(f"10.0.0.{i}", 0)
    limit.fail("late", 10)
    assert set(limit.buckets) == {"late"}


def test_connection_counter_exempts_trusted_networks_from_the_address_cap_only() -> None:
    counter = ConnectionCounter(limit=3, per_address=1, trusted=Networks.parse(["127.0.2.0/24"]))
    counter.add("127.0.8.1")
    assert counter.refuse("127.0.8.1") == "address"
    counter.add("127.0.2.1")
    assert counter.refuse("127.0.2.1") is None
    counter.add("127.0.2.1")
    assert counter.refuse("127.0.2.1") == "full"
    counter.remove("127.0.2.1")
    counter.remove("127.0.2.1")
    counter.remove("127.0.8.1")
    assert counter.total == 0 and counter.by_address == {}
