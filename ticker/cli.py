"""The ``ticker`` command.

Writing commands (publish, update, retract) go through a server when
``TICKER_URL`` (or ``--server``) is set, with ``TICKER_TOKEN``; otherwise they
write straight to Redis (``TICKER_REDIS_URL``, or the embedded one) as the
actor ``cli:<user>``. Every failure is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

from redis.exceptions import RedisError

from ticker import __version__, config, process
from ticker.auth import create_token, parse_scopes
from ticker.client import Client, ServerUnreachable
from ticker.config import Settings
from ticker.consumer import NEW, Consumer, check_name, follow, start_id
from ticker.errors import ConfigError, Conflict, InvalidInput, NotFound, TickerError, Unavailable
from ticker.models import Event, ItemCreate, ItemEdit, is_channel, parse
from ticker.store import Store, WriteResult, connect

EXIT_FAILURE = 1
EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ticker: error: {message} (see '{self.prog} --help')\n")


LOG_LEVELS = ["debug", "info", "warning", "error"]
DEFAULT_DEMO_INTERVAL = 4.0


def whole(text: str) -> int:
    """An integer option, by the rule of the integer settings (:func:`ticker.config.whole_number`)."""
    try:
        return config.whole_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (digits 0-9 only)") from None


def help_labels() -> tuple[str, ...]:
    """The label vocabulary to list in ``--help``: the configured one, else the default."""
    try:
        return config.load().labels
    except ConfigError:
        return config.DEFAULT_LABELS


def _parser() -> Parser:
    labels = ", ".join(help_labels())
    parser = Parser(
        prog="ticker",
        description="Ticker: a live news-ticker event service. Every command takes its settings from "
        "TICKER_* environment variables (see docs/settings.md); the options below override them.",
        epilog="Run 'ticker COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"ticker {__version__}")
    parser.add_argument("--redis-url", help="Redis to use (env TICKER_REDIS_URL; default: the embedded one)")
    parser.add_argument("--prefix", help="key prefix of the deployment (env TICKER_PREFIX)")
    # The same two options after the command name too (`ticker serve --redis-url ...`).
    common = Parser(add_help=False)
    common.add_argument("--redis-url", default=argparse.SUPPRESS, help="Redis to use (env TICKER_REDIS_URL)")
    common.add_argument("--prefix", default=argparse.SUPPRESS, help="key prefix (env TICKER_PREFIX)")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser, title="commands", help="one of:"
    )

    def command(name: str, help: str, description: str, parent: Any = sub) -> Parser:
        cmd: Parser = parent.add_parser(name, parents=[common], help=help, description=description)
        return cmd

    def listening(cmd: Parser, log_level: str) -> None:
        cmd.add_argument("--host", help=f"address to listen on (env TICKER_HOST; default {config.DEFAULT_HOST})")
        cmd.add_argument(
            "--port", type=whole, help=f"port (env TICKER_PORT; default {config.DEFAULT_PORT}; 0 picks a free one)"
        )
        cmd.add_argument(
            "--log-level", default=log_level, choices=LOG_LEVELS, help=f"uvicorn's log level (default {log_level})"
        )

    serve = command(
        "serve",
        "run the server",
        "Run the server: the reader page (/), the desk (/desk), the API, /ws and /api/events. "
        "Without a Redis URL an embedded Redis keeps its data in the state directory. "
        "SIGTERM or Ctrl+C closes every client and stops.",
    )
    listening(serve, "info")
    serve.add_argument(
        "--workers",
        type=whole,
        help=f"server processes sharing the port (env TICKER_WORKERS; default {config.DEFAULT_WORKERS})",
    )

    demo = command(
        "demo",
        "run the server with a producer of sample headlines; starts fresh each time",
        "Run the server with a producer of fictional sample headlines under the key prefix 'demo'. "
        "It starts fresh each time: the demo's items are wiped on start (ticker serve keeps its items). "
        "It prints the reader and desk URLs and a staff token for the desk.",
    )
    listening(demo, "warning")
    demo.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_DEMO_INTERVAL,
        help=f"seconds between sample headlines (default {DEFAULT_DEMO_INTERVAL:g})",
    )

    def writer(name: str, help: str, description: str) -> Parser:
        cmd = command(
            name,
            help,
            description + " Straight to Redis as the actor cli:<user>, or through a server with --server "
            "(or TICKER_URL) and a staff token.",
        )
        cmd.add_argument("--server", metavar="URL", help="server to write through (env TICKER_URL)")
        cmd.add_argument("--token", help="staff token for --server (env TICKER_TOKEN)")
        cmd.add_argument("--json", action="store_true", help="print the answer as JSON")
        return cmd

    def item_fields(cmd: Parser) -> None:
        cmd.add_argument(
            "--label",
            action="append",
            dest="labels",
            metavar="LABEL",
            help=f"a label; repeat for several (at most 5). Allowed: {labels}",
        )
        cmd.add_argument("--url", help="link to the full story (absolute http or https)")
        cmd.add_argument("--channel", help="channel: 1 to 32 lowercase letters, digits or hyphens (default news)")
        cmd.add_argument("--lang", help="language tag of the headline, e.g. en or pt-BR")
        cmd.add_argument("--author", help="byline shown with the item")

    publish = writer("publish", "publish a headline", "Publish a headline; readers see it at once.")
    publish.add_argument("headline", help="the headline text (at most 300 characters)")
    item_fields(publish)
    publish.add_argument(
        "--id", help="your own id (1 to 64 of A-Z a-z 0-9 _ -); publishing again with it changes nothing"
    )
    publish.add_argument("--pinned", action="store_true", default=None, help="keep the item on top")
    publish.add_argument("--published-at", metavar="TIME", help="ISO 8601 with a time zone, to back-date")

    update = writer(
        "update",
        "edit an item: an update, a correction or a fix",
        "Edit an item. An update and a correction show readers an 'Updated' badge (a correction with "
        "its note); a fix (a typo) does not.",
    )
    update.add_argument("id", help="the item's id")
    update.add_argument("--headline", help="the new headline")
    item_fields(update)
    update.add_argument("--no-labels", action="store_true", help="remove every label")
    pin = update.add_mutually_exclusive_group()
    pin.add_argument("--pin", dest="pinned", action="store_const", const=True, help="keep the item on top")
    pin.add_argument("--unpin", dest="pinned", action="store_const", const=False, help="stop keeping it on top")
    update.add_argument(
        "--kind", choices=["update", "correction", "fix"], default=None, help="what kind of edit (default update)"
    )
    update.add_argument("--correction", metavar="NOTE", help="what was wrong (implies --kind correction)")
    update.add_argument("--if-match", type=whole, metavar="VERSION", help="only if the item is still at this version")

    retract = writer("retract", "retract an item (readers see it removed)", "Retract an item: readers see it removed.")
    retract.add_argument("id", help="the item's id")
    retract.add_argument("--if-match", type=whole, metavar="VERSION", help="only if the item is still at this version")

    tail = command(
        "tail",
        "follow the stream of changes, optionally in a consumer group",
        "Print every change to the items as it happens, one line each (or JSON), until Ctrl+C.",
    )
    tail.add_argument(
        "--from",
        dest="start",
        metavar="CURSOR",
        help="where to start: 'new' (default), 'oldest' (start of retention) or a cursor",
    )
    tail.add_argument(
        "--group",
        help="read as a member of this consumer group and acknowledge each change "
        "after printing it (the group is created at --from, default 'new')",
    )
    tail.add_argument("--consumer", metavar="NAME", help="this member's name in --group (keep it across restarts)")
    tail.add_argument("--channel", help="only changes to items of this channel")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--count", type=whole, help="stop after this many changes")

    token = command(
        "token",
        "manage staff tokens",
        "Create, list and revoke the staff tokens the desk, the API and the CLI's --server mode use.",
    )
    tsub = token.add_subparsers(
        dest="token_command",
        metavar="{create,list,revoke}",
        required=True,
        parser_class=Parser,
        title="token commands",
        help="one of:",
    )
    create = command(
        "create",
        "create a token (printed once, on the last line)",
        "Create a staff token. The secret is printed once, on the last line; only its hash is stored.",
        tsub,
    )
    create.add_argument("--name", required=True, help="who or what holds it (1 to 64 of A-Z a-z 0-9 _ . @ -)")
    create.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        required=True,
        help="publish, edit, retract or admin (all of them); repeat for several",
    )
    create.add_argument(
        "--replace", action="store_true", help="revoke a token of the same name first, instead of refusing"
    )
    command("list", "names, scopes and last use (never secrets)", "List the tokens: names, scopes, last use.", tsub)
    revoke = command(
        "revoke",
        "revoke a token on every server at once",
        "Revoke a token; every server refuses it from the next request.",
        tsub,
    )
    revoke.add_argument("name", help="the token's name")
    return parser


# --- Redis and settings ------------------------------------------------------


@contextlib.asynccontextmanager
async def open_store(settings: Settings, url: str) -> AsyncIterator[Store]:
    client = connect(url, socket_connect_timeout=5)
    try:
        yield Store(
            client,
            prefix=settings.prefix,
            stream_maxlen=settings.stream_maxlen,
            min_replicas=settings.min_replicas,
            replica_wait_ms=settings.replica_wait_ms,
        )
    finally:
        await client.aclose()


def run_with_store(
    settings: Settings, work: Callable[[Store], Awaitable[int]], *, connected: Callable[[str], None] | None = None
) -> int:
    """Run ``work`` on the configured (or embedded) Redis; a Redis failure is one line naming the URL.

    ``connected(url)`` is called once Redis has answered, before ``work`` starts.
    """
    with process.redis_url(settings) as url:

        async def go() -> int:
            async with open_store(settings, url) as store:
                await process.reach(store, url)
                if connected:
                    connected(config.redacted(url))
                return await work(store)

        try:
            return asyncio.run(go())
        except (RedisError, OSError):
            raise process.redis_unreachable(url) from None
        except Unavailable as exc:
            raise Unavailable(f"{exc.message} (Redis at {config.redacted(url)})") from None


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


# --- commands ------------------------------------------------------------------


DONE = {"publish": "published", "update": "updated", "retract": "retracted"}


def describe(command: str, result: dict[str, Any]) -> str:
    """``published storm v1 news [breaking]: Storm closes the road (cursor ...)``."""
    item = result["item"]
    labels = f" [{', '.join(item['labels'])}]" if item["labels"] else ""
    return (
        f"{DONE[command]} {item['id']} v{item['version']} {item['channel']}{labels}: {item['headline']}"
        f" (cursor {result['cursor']})"
    )


def check_channel(option: str, value: str | None) -> None:
    """Refuse a bad channel before any Redis is started, in words rather than as a pattern."""
    if value is not None and not is_channel(value):
        raise ConfigError(
            f"{option} {value!r} is not a channel name: use 1 to 32 lowercase letters, digits or hyphens, "
            "such as 'politics' or 'world-cup'"
        )


def write_payloads(args: argparse.Namespace) -> dict[str, Any]:
    names = ["headline", "url", "channel", "lang", "author", "pinned", "labels"]
    if args.command == "publish":
        names += ["id", "published_at"]
    body = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if args.command == "update":
        if args.no_labels:
            body["labels"] = []
        if args.correction is not None:
            body["correction"] = args.correction
        kind = args.kind or ("correction" if args.correction is not None else None)
        if kind:
            body["kind"] = kind
    return body


def cmd_write(args: argparse.Namespace, settings: Settings) -> int:
    body = write_payloads(args)
    check_channel("--channel", body.get("channel"))
    for name, value in body.items():
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:  # bytes the terminal passed that are not UTF-8
                raise InvalidInput(f"{name} is not valid UTF-8 text") from None
    if settings.url:
        if not settings.token:
            raise ConfigError("writing through a server needs a staff token: set TICKER_TOKEN or pass --token")
        with Client(settings.url, token=settings.token) as client:
            try:
                if args.command == "publish":
                    answer = client.publish(**body)
                elif args.command == "update":
                    answer = client.edit(args.id, if_match=args.if_match, **body)
                else:
                    answer = client.retract(args.id, if_match=args.if_match)
            except ServerUnreachable:
                raise
            except TickerError as exc:
                exc.message = f"{exc.message} (server at {client.url})"
                raise
        return show(args.command, answer, args.json)

    async def direct(store: Store) -> int:
        result: WriteResult
        if args.command == "publish":
            result = await store.publish(parse(ItemCreate, body, labels=settings.labels), actor=actor())
        elif args.command == "update":
            edit = parse(ItemEdit, body, labels=settings.labels)
            result = await store.edit(args.id, edit, actor=actor(), if_match=args.if_match)
        else:
            result = await store.retract(args.id, actor=actor(), if_match=args.if_match)
        return show(args.command, {"item": result.item.model_dump(mode="json"), "cursor": result.cursor}, args.json)

    return run_with_store(settings, direct)


def show(command: str, answer: dict[str, Any], as_json: bool) -> int:
    print(json.dumps(answer, ensure_ascii=False) if as_json else describe(command, answer), flush=True)
    return 0


def event_line(event: Event, as_json: bool) -> str:
    """One line per change for ``ticker tail``: readable, or the event as JSON."""
    if as_json:
        return json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
    item = event.item
    when = datetime.fromtimestamp(event.ts / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    labels = f" [{', '.join(item.labels)}]" if item.labels else ""
    return (
        f"{when} {event.op:<8} {item.id} v{item.version} {item.channel}{labels}: {item.headline}"
        f"  ({event.actor}, {event.cursor})"
    )


def tail_options(args: argparse.Namespace) -> None:
    """Check tail's flags before any Redis is started, so a mistake is one quick line."""
    if (args.group is None) != (args.consumer is None):
        raise ConfigError("--group and --consumer go together: name the group and this member of it")
    try:
        if args.group is not None:
            check_name("group", args.group)
            check_name("consumer", args.consumer)
        if args.start is not None:
            start_id(args.start)
    except InvalidInput as exc:
        raise ConfigError(exc.message) from None
    check_channel("--channel", args.channel)
    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be at least 1")


class TailPrinter:
    """Prints tail's lines and counts them; raises ``BrokenPipeError`` once stdout is gone."""

    def __init__(self, *, as_json: bool, count: int | None) -> None:
        self.as_json = as_json
        self.count = count
        self.seen = 0

    def __call__(self, event: Event) -> None:
        try:
            print(event_line(event, self.as_json), flush=True)
        except BrokenPipeError:
            # The reader (say `head`) left: silence stdout so exiting does not complain again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise
        self.seen += 1

    @property
    def done(self) -> bool:
        return self.count is not None and self.seen >= self.count


def cmd_tail(args: argparse.Namespace, settings: Settings) -> int:
    tail_options(args)
    start = args.start or NEW
    show_line = TailPrinter(as_json=args.json, count=args.count)

    async def as_member(store: Store) -> int:
        def handle(event: Event) -> None:
            try:
                show_line(event)
            except BrokenPipeError:
                consumer.stop()
                raise  # not printed, so not acknowledged
            if show_line.done:
                consumer.stop()

        consumer = Consumer(store, handle, group=args.group, name=args.consumer, start=start, channel=args.channel)
        await consumer.run(handle_signals=True)
        return 0

    async def follower(store: Store) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async for event in follow(store, start=start, channel=args.channel, stop=stop):
            try:
                show_line(event)
            except BrokenPipeError:
                break
            if show_line.done:
                break
        return 0

    def waiting(url: str) -> None:
        member = f" as {args.consumer} in group {args.group}" if args.group else ""
        channel = f" in channel {args.channel}" if args.channel else ""
        print(
            f"ticker: waiting for changes{channel} from {start}{member} (Redis at {url}, prefix {settings.prefix});"
            " Ctrl+C stops",
            file=sys.stderr,
            flush=True,
        )

    return run_with_store(settings, as_member if args.group else follower, connected=waiting)


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> int:
        if args.token_command == "create":
            scopes = parse_scopes(args.scopes)
            replaced = False
            if args.replace:
                with contextlib.suppress(NotFound):
                    await store.revoke_token(args.name)
                    replaced = True
            try:
                secret = await create_token(store, args.name, scopes)
            except Conflict as exc:
                raise Conflict(f"{exc.message}; or pass --replace to revoke it and create a new one") from None
            done = "Replaced" if replaced else "Created"
            print(f"{done} token {args.name!r} with scopes {', '.join(sorted(args.scopes))}.")
            print("Keep it now; it is not shown again:")
            print(secret)
        elif args.token_command == "list":
            tokens = await store.tokens()
            if not tokens:
                print("no tokens; create one with: ticker token create --name NAME --scope admin")
            for name, record in tokens.items():
                used = record.get("last_used") or "never used"
                print(f"{name}\t{','.join(record['scopes'])}\tcreated {record['created_at']}\tlast used {used}")
        else:
            await store.revoke_token(args.name)
            print(f"Revoked token {args.name!r}.")
        return 0

    return run_with_store(settings, work)


def serve_banner(base: str, redis: str) -> str:
    """What ``ticker serve`` prints first: where to read, where to post, and how to get in."""
    return "\n".join(
        [
            f"Ticker serving on {base} (Redis: {config.redacted(redis)})",
            f"  Reader page:  {base}/",
            f"  Desk:         {base}/desk",
            "  Staff token:  ticker token create --name desk --scope admin  (paste it into the desk)",
            "Ctrl+C stops.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet = args.command not in ("serve", "demo")
    process.configure_logging(logging.WARNING if quiet else logging.INFO)
    try:
        settings = config.load().with_overrides(
            redis_url=args.redis_url,
            prefix=args.prefix,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
            url=getattr(args, "server", None),
            token=getattr(args, "token", None),
        )
        config.validate(settings)
        if args.command == "serve":
            if settings.workers > 1:
                from ticker import workers

                return workers.serve(settings, banner=serve_banner, log_level=args.log_level)
            return process.serve(settings, banner=serve_banner, log_level=args.log_level)
        if args.command == "demo":
            from ticker import demo

            return demo.run(settings, interval=args.interval, log_level=args.log_level)
        if args.command in ("publish", "update", "retract"):
            return cmd_write(args, settings)
        if args.command == "tail":
            return cmd_tail(args, settings)
        return cmd_token(args, settings)
    except ConfigError as exc:
        print(f"ticker: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except TickerError as exc:
        print(f"ticker: error: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
