"""`python -m bot.desk`: agent accounts on the command line, run as a real subprocess against a
fresh SQLite database (the CLI applies the migrations itself)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.shared.db import create_engine
from bot.desk.auth import verify_password
from bot.records.models import Agent

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('deskcli') / 'agents.db'}"


def desk(db: str, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "DESK_PASSWORD"}
    environment.update(DATABASE_URL=db, PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "bot.desk", *args], input=stdin if stdin is not None else "",
                          capture_output=True, text=True, cwd=ROOT, env=environment, timeout=120)


def agents(db: str) -> dict[str, Agent]:
    async def read():
        engine = create_engine(db)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(select(Agent))).all()
        finally:
            await engine.dispose()
        return {row.username: row for row in rows}

    return asyncio.run(read())


def create(db: str, username: str, role: str = "senior_agent", password: str = PASSWORD, **env: str):
    return desk(db, "create-agent", "--username", username, "--name", "Anna de Jong", "--role", role,
                "--skills", "general,finance", "--languages", "nl,en", "--ui-language", "en", "--password-stdin",
                stdin=password + "\n", **env)


def test_create_agent_from_stdin_hashes_with_argon2id(db):
    result = create(db, "anna")
    assert result.returncode == 0, result.stderr
    assert "anna" in result.stdout and PASSWORD not in result.stdout + result.stderr
    anna = agents(db)["anna"]
    assert (anna.name, anna.role, anna.skills, anna.languages, anna.ui_language, anna.active) == (
        "Anna de Jong", "senior_agent", ["general", "finance"], ["nl", "en"], "en", True)
    assert anna.password_hash.startswith("$argon2id$") and PASSWORD not in anna.password_hash
    assert asyncio.run(verify_password(anna.password_hash, PASSWORD))[0] is True


def test_password_from_the_environment(db):
    result = desk(db, "create-agent", "--username", "bert", "--name", "Bert", "--role", "agent", "--skills",
                  "general", "--languages", "nl", DESK_PASSWORD="from the environment")
    assert result.returncode == 0, result.stderr
    bert = agents(db)["bert"]
    assert bert.ui_language == "nl"
    assert asyncio.run(verify_password(bert.password_hash, "from the environment"))[0] is True


@pytest.mark.parametrize("args,stdin,message", [
    (["--role", "bot"], PASSWORD, "unknown role 'bot'"),
    (["--role", "ceo"], PASSWORD, "unknown role 'ceo' (roles: agent, senior_agent, supervisor)"),
    (["--role", "agent"], "short", "at least 10 characters"),
    (["--role", "agent", "--languages", "de"], PASSWORD, "languages must be some of nl, en"),
    (["--role", "agent", "--username", "x y"], PASSWORD, "username"),
])
def test_refusals_exit_2_with_a_clear_error(db, args, stdin, message):
    base = {"--username": "carla", "--name": "Carla", "--skills": "general", "--languages": "nl"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [part for pair in base.items() for part in pair]
    result = desk(db, "create-agent", *flat, "--password-stdin", stdin=stdin + "\n")
    assert result.returncode == 2
    assert message in result.stderr
    assert "carla" not in agents(db) and "x y" not in agents(db)


def test_duplicate_username_exits_2(db):
    assert create(db, "dora").returncode == 0
    result = create(db, "Dora")  # usernames are lowercase: the same person
    assert result.returncode == 2 and "already exists" in result.stderr


def test_without_any_password_source_it_refuses(db):
    result = desk(db, "create-agent", "--username", "eve", "--name", "Eve", "--role", "agent", "--skills",
                  "general", "--languages", "nl")
    assert result.returncode == 2 and "no password" in result.stderr
    assert "eve" not in agents(db)


def test_list_set_password_deactivate_activate(db):
    assert create(db, "fenna", role="supervisor").returncode == 0
    listing = desk(db, "list-agents")
    assert listing.returncode == 0
    line = next(line for line in listing.stdout.splitlines() if line.startswith("fenna"))
    assert "supervisor" in line and "active" in line and "$argon2" not in listing.stdout

    old = agents(db)["fenna"].password_hash
    changed = desk(db, "set-password", "--username", "fenna", "--password-stdin", stdin="a brand new secret\n")
    assert changed.returncode == 0, changed.stderr
    new = agents(db)["fenna"].password_hash
    assert new != old and asyncio.run(verify_password(new, "a brand new secret"))[0]
    assert desk(db, "set-password", "--username", "fenna", "--password-stdin", stdin="tooshort\n").returncode == 2
    assert agents(db)["fenna"].password_hash == new

    assert desk(db, "deactivate", "--username", "fenna").returncode == 0
    assert agents(db)["fenna"].active is False
    assert "INACTIVE" in next(line for line in desk(db, "list-agents").stdout.splitlines() if line.startswith("fenna"))
    assert desk(db, "activate", "--username", "fenna").returncode == 0
    assert agents(db)["fenna"].active is True

    for command in ("deactivate", "activate"):
        result = desk(db, command, "--username", "nobody")
        assert result.returncode == 2 and "no agent 'nobody'" in result.stderr
    result = desk(db, "set-password", "--username", "nobody", "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 2 and "no agent 'nobody'" in result.stderr
