"""The ``ticker`` command as a user runs it: real processes, real Redis, one-line errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerThread, units
from ticker.config import DEFAULT_LABELS, Settings


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ticker.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=units(timeout),
        check=False,
    )


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    assert settings.redis_url
    return {"TICKER_REDIS_URL": settings.redis_url, "TICKER_PREFIX": settings.prefix}


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ticker: error: ") and "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_tokens_create_list_revoke(env: dict[str, str]) -> None:
    created = run("token", "create", "--name", "desk", "--scope", "publish", "--scope", "edit", env=env)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("tk_") and len(secret) > 30
    listed = run("token", "list", env=env)
    assert "desk" in listed.stdout and "edit,publish" in listed.stdout and secret not in listed.stdout
    assert_one_line_error(run("token", "create", "--name", "desk", "--scope", "admin", env=env), "exists", "--replace")
    replaced = run("token", "create", "--name", "desk", "--scope", "admin", "--replace", env=env)
    assert replaced.returncode == 0 and replaced.stdout.startswith("Replaced token 'desk'"), replaced.stderr
    assert replaced.stdout.strip().splitlines()[-1] != secret
    assert "desk\tadmin" in run("token", "list", env=env).stdout
    assert_one_line_error(run("token", "create", "--name", "x", "--scope", "god", env=env), "scope")
    assert run("token", "revoke", "desk", env=env).returncode == 0
    assert "desk" not in run("token", "list", env=env).stdout
    assert_one_line_error(run("token", "revoke", "desk", env=env), "no token")


def test_publish_update_retract_straight_to_redis(env: dict[str, str]) -> None:
    published = run("publish", "Storm closes the coast road", "--label", "breaking", "--id", "storm", "--json", env=env)
    assert published.returncode == 0, published.stderr
    answer = json.loads(published.stdout)
    assert answer["item"]["labels"] == ["breaking"] and answer["cursor"]
    updated = run("update", "storm", "--headline", "Storm closes the A1", "--correction", "It is the A1", env=env)
    assert updated.returncode == 0 and "storm v2" in updated.stdout
    assert_one_line_error(run("update", "storm", "--headline", "x", "--if-match", "1", env=env), "version")
    retracted = run("retract", "storm", env=env)
    assert retracted.returncode == 0 and retracted.stdout.startswith("retracted storm v3"), retracted.stderr
    assert_one_line_error(run("retract", "storm", env=env), "retracted")


def test_writes_through_a_server(server: ServerThread, admin_token: str, env: dict[str, str]) -> None:
    through = {**env, "TICKER_URL": server.url, "TICKER_TOKEN": admin_token}
    published = run("publish", "Vote passes", "--label", "analysis", "--json", env=through)
    assert published.returncode == 0, published.stderr
    item_id = json.loads(published.stdout)["item"]["id"]
    assert run("update", item_id, "--pin", env=through).returncode == 0
    assert run("retract", item_id, env=through).returncode == 0
    listed = run("token", "list", env=env).stdout
    assert listed.startswith("editor\tadmin") and "never used" not in listed
    assert_one_line_error(run("publish", "x", "--label", "gossip", env=through), "labels", server.url)
    assert_one_line_error(run("publish", "x", env={**through, "TICKER_TOKEN": "tk_nope"}), "revoked", server.url)
    assert_one_line_error(run("publish", "x", env={**through, "TICKER_TOKEN": ""}), "TICKER_TOKEN")


def test_unreachable_server_and_redis_name_the_url_and_what_to_check(env: dict[str, str]) -> None:
    dead = {**env, "TICKER_URL": "http://127.0.0.1:9", "TICKER_TOKEN": "tk_x"}
    assert_one_line_error(run("publish", "x", env=dead), "cannot reach the server at http://127.0.0.1:9", "TICKER_URL")
    no_redis = {**env, "TICKER_REDIS_URL": "redis://:hunter2@127.0.0.1:9/0"}
    for command in (["publish", "x"], ["token", "list"], ["tail"], ["retract", "x1"], ["demo", "--port", "0"]):
        result = run(*command, env=no_redis)
        assert_one_line_error(result, "cannot reach Redis at redis://:***@127.0.0.1:9/0", "TICKER_REDIS_URL")
        assert "hunter2" not in result.stderr, "a password is never printed"


def test_a_bad_channel_is_explained_in_words(env: dict[str, str]) -> None:
    for command in (["publish", "x", "--channel", "Sport News"], ["update", "a1", "--channel", "x" * 40], ["tail"]):
        channel = command[-1] if command[0] != "tail" else "Café"
        args = command if command[0] != "tail" else [*command, "--channel", channel]
        result = run(*args, env=env)
        assert_one_line_error(result, repr(channel), "lowercase letters, digits or hyphens")
        assert "^[" not in result.stderr


def test_help_describes_every_command_and_option() -> None:
    from ticker.cli import _parser

    def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}")

    for path, parser in walk(_parser(), "ticker"):
        assert parser.description, f"{path} has no description"
        for action in parser._actions:
            assert action.help, f"{path} {'/'.join(action.option_strings) or action.dest} has no help"
    shown = run("publish", "--help")
    assert shown.returncode == 0 and "repeat for several" in shown.stdout
    assert all(label in shown.stdout for label in DEFAULT_LABELS)
    assert "Publish a headline" in shown.stdout
    custom = run("publish", "--help", env={"TICKER_LABELS": "breaking,obituary"})
    assert "Allowed: breaking, obituary" in " ".join(custom.stdout.split())


def test_usage_errors_are_one_line(env: dict[str, str]) -> None:
    assert_one_line_error(run("publish", env=env), "headline")
    assert_one_line_error(run("frobnicate", env=env))
    assert_one_line_error(run("serve", "--port", "many", env=env), "port")
    assert_one_line_error(run("publish", "x", env={**env, "TICKER_PORT": "eighty"}), "TICKER_PORT")
    assert_one_line_error(run("publish", "x", env={**env, "TICKER_PREFIX": "a{b"}), "prefix")
    proxies = {**env, "TICKER_TRUSTED_PROXIES": "127.0.2.0/24,proxy.example"}
    assert_one_line_error(run("serve", env=proxies), "TICKER_TRUSTED_PROXIES: 'proxy.example'")
    assert_one_line_error(run("update", "q1", "--pin", "--unpin", env=env))
    assert_one_line_error(run("--redis-url", "bogus://x", "token", "list", env=env), "Redis URL")
    assert_one_line_error(run("publish", "x", env={**env, "TICKER_REDIS_URL": "http://x"}), "Redis URL")
    assert_one_line_error(run("publish", "a\udcedb", env=env), "UTF-8")  # the byte 0xED, as a terminal passes it
    assert_one_line_error(run("token", "create", "--name", "nl\n", "--scope", "edit", env=env), "token name")
    assert_one_line_error(run("token", env=env), "create,list,revoke")
    assert_one_line_error(run("serve", "--workers", "0", env=env), "workers must be between 1 and")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("serve", "--port", "\u0663"), "--port"),  # ARABIC-INDIC DIGIT THREE: int() reads 3
        (("retract", "q1", "--if-match", "\uff13"), "--if-match"),  # FULLWIDTH DIGIT THREE
        (("tail", "--count", "+1"), "--count"),
    ],
)
def test_integer_options_take_ascii_digits_only(args: tuple[str, ...], option: str, env: dict[str, str]) -> None:
    assert_one_line_error(run(*args, env=env), f"argument {option}", "digits 0-9")


def test_serve_reports_a_busy_port(env: dict[str, str], server: ServerThread) -> None:
    port = server.url.rsplit(":", 1)[1]
    assert_one_line_error(run("serve", "--port", port, env=env), "cannot listen")


def test_tail_prints_one_line_per_change(env: dict[str, str]) -> None:
    first = json.loads(run("publish", "Before", "--json", env=env).stdout)
    run("publish", "Quake hits", "--label", "breaking", env=env)
    run("publish", "Goal", "--channel", "sport", env=env)
    tailed = run("tail", "--from", first["cursor"], "--count", "2", env=env)
    assert tailed.stderr.startswith(f"ticker: waiting for changes from {first['cursor']} (Redis at "), tailed.stderr
    lines = tailed.stdout.splitlines()
    assert len(lines) == 2 and "publish" in lines[0] and "[breaking]: Quake hits" in lines[0]
    as_json = run("tail", "--from", first["cursor"], "--count", "1", "--json", "--channel", "sport", env=env)
    assert json.loads(as_json.stdout)["item"]["headline"] == "Goal"


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    # Short path: the embedded Redis listens on a Unix socket inside it.
    yield tmp_path / "st"


def test_embedded_redis_keeps_items_across_restarts(state_dir: Path) -> None:
    env = {"TICKER_STATE_DIR": str(state_dir), "HOME": str(state_dir)}
    published = run("publish", "Survives a restart", "--id", "keep", "--json", env=env)
    assert published.returncode == 0, published.stderr
    assert not (state_dir / "redis.url").exists(), "a CLI command stops the Redis it started"
    assert any(state_dir.rglob("*.aof")), "append-only file written"
    again = run("publish", "Survives a restart", "--id", "keep", "--json", env=env)
    assert json.loads(again.stdout) == json.loads(published.stdout), "same item after a restart"
    edited = run("update", "keep", "--kind", "fix", "--headline", "Survives restarts", env=env)
    assert "keep v2" in edited.stdout, edited.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_embedded_redis_starts_and_stops_cleanly(state_dir: Path, workers: str) -> None:
    """With workers too: the supervisor starts the one embedded Redis they share, and stops it."""
    import signal

    import httpx

    from tests.support import wait_for

    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update({"TICKER_STATE_DIR": str(state_dir), "HOME": str(state_dir)})
    run("publish", "Kept from before", "--id", "kept", env=env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ticker.cli", "serve", "--port", "0", "--workers", workers],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout
        banner = proc.stdout.readline()
        assert banner.startswith("Ticker serving on http://"), banner + (proc.stderr.read() if proc.stderr else "")
        url = banner.split()[3]
        for _ in range(int(workers) * 3):
            wait_for(lambda: _status(httpx, url + "/readyz") == 200, what="readyz")
            assert httpx.get(url + "/api/items").json()["items"][0]["id"] == "kept"
        assert len(list(state_dir.glob("redis.url"))) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=units(30))
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not (state_dir / "redis.url").exists()


def _status(httpx: object, url: str) -> int:
    try:
        return int(httpx.get(url, timeout=2).status_code)  # type: ignore[attr-defined]
    except Exception:
        return 0


def test_redis_options_work_before_and_after_the_command(env: dict[str, str]) -> None:
    url, prefix = env["TICKER_REDIS_URL"], env["TICKER_PREFIX"]
    created = run("token", "create", "--name", "a", "--scope", "admin", "--redis-url", url, "--prefix", prefix)
    assert created.returncode == 0, created.stderr
    listed = run("--redis-url", url, "--prefix", prefix, "token", "list")
    assert listed.stdout.startswith("a\tadmin"), listed.stderr


def test_served_connections_disable_nagle() -> None:
    """Small writes (response heads, live frames) must leave at once, not after a delayed ACK."""
    import asyncio
    import socket

    from ticker.process import bind

    async def accepted_nodelay() -> int:
        flags: list[int] = []
        accepted = asyncio.Event()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            flags.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            accepted.set()
            writer.close()

        server = await asyncio.start_server(on_connect, sock=bind("127.0.0.1", 0))
        async with server:
            port = server.sockets[0].getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.wait_for(accepted.wait(), units(10))
            writer.close()
        return flags[0]

    assert asyncio.run(accepted_nodelay()) != 0
