from ticker.limits import KeyedBuckets, TokenBucket


def test_bucket_allows_burst_then_rate() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == 0.5
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) > 0


def test_keyed_buckets_are_independent() -> None:
    buckets = KeyedBuckets(rate=1, burst=1)
    assert buckets.take("a", 0) == 0
    assert buckets.take("a", 0) > 0
    assert buckets.take("b", 0) == 0
