"""`make run` without REDIS_URL: the project starts a Redis server of its own."""

from __future__ import annotations

import redis as redis_sync

from bot.run import Stack, free_port


def test_embedded_redis_starts_when_no_redis_url_is_given(tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("EMBEDDED_REDIS_PORT", str(port))
    monkeypatch.setenv("EMBEDDED_REDIS_DIR", str(tmp_path / "redis"))
    stack = Stack(gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(), redis_url=None,
                  log_dir=tmp_path / "logs")
    try:
        stack.start_redis()
        assert stack.redis_url == f"redis://127.0.0.1:{port}/0"
        client = redis_sync.Redis.from_url(stack.redis_url)
        assert client.ping() and client.set("k", "v") and client.get("k") == b"v"
        env = stack.env()  # what the action server, Rasa and the gateway get
        assert (env["REDIS_URL"], env["REDIS_PORT"]) == (stack.redis_url, str(port))
        client.close()
    finally:
        stack.stop()


def test_a_rasa_token_that_begins_with_a_dash_reaches_rasa_intact(tmp_path):
    """A CI run once failed because `secrets.token_urlsafe` gave "-k3Sw...": Rasa's argparse read
    it as an option and exited with 2 before serving anything. Rasa's own parser must accept it."""
    from rasa.__main__ import create_argument_parser

    from bot.rasa_server import argv

    token = "-k3SwO8tPDaE8uzm8GbhR5VCk7KlpCLB"
    stack = Stack(rasa_port=free_port(), rasa_token=token, log_dir=tmp_path / "logs")
    args = create_argument_parser().parse_args(argv(stack.rasa_arguments(tmp_path / "model.tar.gz"), token)[1:])
    assert args.auth_token == token
    assert (args.port, args.interface, args.enable_api) == (stack.rasa_port, "127.0.0.1", True)


def test_the_running_rasa_keeps_its_token_off_the_command_line(stack):
    """`ps` shows every process's command line to every user: the token is not on it, and the
    API still refuses a request without it and serves one with it."""
    import urllib.error
    import urllib.request

    import pytest

    pid = stack.processes["rasa"].pid
    cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    assert "run" in cmdline and stack.rasa_token not in cmdline
    base = f"http://127.0.0.1:{stack.rasa_port}/status"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base, timeout=10)
    assert refused.value.code == 401
    with urllib.request.urlopen(f"{base}?token={stack.rasa_token}", timeout=10) as ok:
        assert ok.status == 200
