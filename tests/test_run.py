"""`make run` without REDIS_URL: the project starts a Redis server of its own."""

from __future__ import annotations

import pytest
import redis as redis_sync

from bot.launch.run import Stack, free_port


def _embedded(tmp_path, monkeypatch) -> tuple[Stack, int]:
    port = free_port()
    monkeypatch.setenv("EMBEDDED_REDIS_PORT", str(port))
    monkeypatch.setenv("EMBEDDED_REDIS_DIR", str(tmp_path / "redis"))
    stack = Stack(gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(), redis_url=None,
                  log_dir=tmp_path / "logs")
    stack.redis_password_file = tmp_path / "var" / "redis.password"  # not the project's var/
    return stack, port


def test_embedded_redis_starts_when_no_redis_url_is_given(tmp_path, monkeypatch):
    stack, port = _embedded(tmp_path, monkeypatch)
    try:
        stack.start_redis()
        password = (tmp_path / "var" / "redis.password").read_text().strip()
        assert stack.redis_url == f"redis://:{password}@127.0.0.1:{port}/0"
        client = redis_sync.Redis.from_url(stack.redis_url)
        assert client.ping() and client.set("k", "v") and client.get("k") == b"v"
        env = stack.env()  # what the action server, Rasa and the gateway get
        assert (env["REDIS_URL"], env["REDIS_PORT"], env["REDIS_PASSWORD"]) == (stack.redis_url, str(port), password)
        client.close()
    finally:
        stack.stop()


def test_embedded_redis_needs_its_password_kept_in_a_0600_file(tmp_path, monkeypatch):
    """Anyone who can reach the embedded Redis could read every conversation: it gets a random
    password, made once, kept in var/redis.password (mode 0600, created so), off the command
    line, and the same one after a restart (with the data still there)."""
    import os
    import stat

    stack, port = _embedded(tmp_path, monkeypatch)
    path = tmp_path / "var" / "redis.password"
    try:
        stack.start_redis()
        assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
        password = path.read_text().strip()
        assert len(password) >= 32
        anonymous = redis_sync.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        with pytest.raises(redis_sync.exceptions.AuthenticationError, match="NOAUTH|Authentication required"):
            anonymous.ping()
        with pytest.raises(redis_sync.exceptions.AuthenticationError):
            redis_sync.Redis(host="127.0.0.1", port=port, password="wrong", socket_timeout=5).ping()
        anonymous.close()
        client = redis_sync.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5)
        assert client.ping() and client.set("kept", "yes")
        client.close()
        cmdline = open(f"/proc/{stack.processes['redis'].pid}/cmdline", "rb").read().decode(errors="replace")
        assert "redis-server" in cmdline and password not in cmdline
        assert password in stack.env()["REDIS_URL"]

        stack.stop()  # a restart reuses the password
        stack.redis_url = None
        stack.start_redis()
        assert path.read_text().strip() == password and stat.S_IMODE(path.stat().st_mode) == 0o600
        client = redis_sync.Redis.from_url(stack.redis_url)
        assert client.get("kept") == b"yes"
        client.close()
    finally:
        stack.stop()
    # a file left readable by others is tightened on the next start
    os.chmod(path, 0o644)
    try:
        stack.redis_url = None
        stack.start_redis()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text().strip() == password
    finally:
        stack.stop()


def test_a_rasa_token_that_begins_with_a_dash_reaches_rasa_intact(tmp_path):
    """A CI run once failed because `secrets.token_urlsafe` gave "-k3Sw...": Rasa's argparse read
    it as an option and exited with 2 before serving anything. Rasa's own parser must accept it."""
    from rasa.__main__ import create_argument_parser

    from bot.rasa_plugins.server import argv

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


def test_make_run_serves_no_outbox_unless_dev_outbox_is_set_and_then_warns():
    """`make run` used to switch DEV_OUTBOX on for the demo shop: /dev/outbox for anyone."""
    import inspect

    from bot.launch import run

    assert "setdefault(\"DEV_OUTBOX\"" not in inspect.getsource(run.main)
    quiet = run.banner("localhost", 8080, {"LOAD_DEMO_DATA": "1"})
    assert "/dev/outbox" not in quiet and "WARNING" not in quiet
    assert "python -m bot.records outbox" in quiet  # how to read a code in the demo instead
    assert '<script src="http://localhost:8080/widget/embed.js" async></script>' in quiet
    assert "(set WEBCHAT_ORIGINS to the sites that may embed it)" in quiet
    assert "(allowed on: https://shop.example)" in run.banner("localhost", 8080, {"WEBCHAT_ORIGINS": "https://shop.example"})
    loud = run.banner("localhost", 8080, {"DEV_OUTBOX": "1"})
    assert "http://localhost:8080/dev/outbox" in loud and "WARNING: DEV_OUTBOX=1" in loud
