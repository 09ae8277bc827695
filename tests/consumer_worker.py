"""A consumer as its own process, for the tests: each handled change becomes one line in a file.

Run as ``python -m tests.consumer_worker --redis-url URL --prefix P --group G --name N --out FILE``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ticker.consumer import consume
from ticker.models import Event


def command(
    redis_url: str, prefix: str, *, group: str, name: str, out: Path, options: tuple[str, ...] = ()
) -> list[str]:
    """The command line that runs this worker as a process of its own."""
    return [
        sys.executable,
        "-m",
        "tests.consumer_worker",
        *("--redis-url", redis_url, "--prefix", prefix, "--group", group, "--name", name, "--out", str(out)),
        *options,
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", required=True, help="file that gets one line per handled change")
    parser.add_argument("--start", default="new")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--claim-idle", type=float, default=30)
    parser.add_argument("--max-attempts", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0, help="seconds each change takes")
    parser.add_argument("--fail", help="raise for items whose id starts with this")
    args = parser.parse_args()

    def handle(event: Event) -> None:
        if args.fail and event.item.id.startswith(args.fail):
            raise RuntimeError(f"cannot handle {event.item.id}")
        if args.delay:
            time.sleep(args.delay)
        with open(args.out, "a") as out:
            out.write(f"{event.cursor} {event.op} {event.item.id}\n")

    consume(
        args.redis_url,
        handle,
        group=args.group,
        name=args.name,
        prefix=args.prefix,
        start=args.start,
        batch=args.batch,
        claim_idle=args.claim_idle,
        max_attempts=args.max_attempts,
        block_ms=200,
    )


if __name__ == "__main__":
    main()
