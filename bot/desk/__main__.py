"""Command line for the agent desk's accounts (DATABASE_URL; default SQLite under var/).

    python -m bot.desk create-agent --username anna --name "Anna de Jong" --role senior_agent \\
        --skills general,finance --languages nl,en [--ui-language nl] [--password-stdin]
    python -m bot.desk list-agents
    python -m bot.desk set-password --username anna [--password-stdin]
    python -m bot.desk deactivate --username anna
    python -m bot.desk activate --username anna

The password comes from one line on stdin (--password-stdin), else from $DESK_PASSWORD, else it
is asked for twice when stdin is a terminal. At least 10 characters. Roles are those of
config/mandates.yml except `bot`. Exit codes: 0 done, 2 refused (the reason on stderr).
Changing the password or deactivating ends the agent's open desk sessions at their next request.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from bot.shared.db import create_engine
from bot.desk.auth import UI_LANGUAGES, AgentError, Agents, check_password
from bot.records.migrate import upgrade
from bot.records.repository import Records

ENV_PASSWORD = "DESK_PASSWORD"


class Refused(Exception):
    pass


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot.desk",
                                     description="Agent desk accounts (uses DATABASE_URL).")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-agent", help="add a person who works in the desk")
    create.add_argument("--username", required=True)
    create.add_argument("--name", required=True, help="full name, shown to colleagues; the first name to customers")
    create.add_argument("--role", required=True, help="a role of config/mandates.yml (not bot)")
    create.add_argument("--skills", required=True, type=_list, help="comma-separated, e.g. general,finance")
    create.add_argument("--languages", required=True, type=_list, help="comma-separated, e.g. nl,en")
    create.add_argument("--ui-language", default="nl", choices=UI_LANGUAGES)
    create.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    sub.add_parser("list-agents", help="list every agent (never their passwords)")
    password = sub.add_parser("set-password", help="give an agent a new password")
    password.add_argument("--username", required=True)
    password.add_argument("--password-stdin", action="store_true")
    for name, text in (("deactivate", "stop an agent from logging in (their sessions end)"),
                       ("activate", "let a deactivated agent log in again")):
        sub.add_parser(name, help=text).add_argument("--username", required=True)
    return parser


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
    elif os.environ.get(ENV_PASSWORD):
        password = os.environ[ENV_PASSWORD]
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise Refused("the passwords differ")
    else:
        raise Refused(f"no password: use --password-stdin, ${ENV_PASSWORD} or run in a terminal")
    try:
        check_password(password)
    except AgentError as exc:
        raise Refused(str(exc)) from None
    return password


async def _run(args) -> int:
    engine = create_engine()
    agents = Agents(Records(engine))
    try:
        if args.command == "create-agent":
            password = _password(args.password_stdin)
            agent = await agents.create(username=args.username, name=args.name, role=args.role,
                                        skills=args.skills, languages=args.languages,
                                        ui_language=args.ui_language, password=password)
            print(f"agent {agent.username} created ({agent.role}; skills {', '.join(agent.skills)}; "
                  f"languages {', '.join(agent.languages)})")
        elif args.command == "list-agents":
            rows = await agents.all()
            if not rows:
                print("no agents yet (python -m bot.desk create-agent ...)")
            for a in rows:
                state = "active" if a.active else "INACTIVE"
                print(f"{a.username:<20} {a.name:<28} {a.role:<14} skills={','.join(a.skills or [])} "
                      f"languages={','.join(a.languages or [])} ui={a.ui_language} {state}")
        elif args.command == "set-password":
            if await agents.by_username(args.username) is None:
                raise Refused(f"no agent {args.username!r}")
            await agents.set_password(args.username, _password(args.password_stdin))
            print(f"password of {args.username.strip().lower()} changed; their open sessions end")
        else:
            active = args.command == "activate"
            if not await agents.set_active(args.username, active):
                raise Refused(f"no agent {args.username!r}")
            print(f"agent {args.username.strip().lower()} {'activated' if active else 'deactivated'}")
        return 0
    except (Refused, AgentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    upgrade()  # sync (alembic runs its own event loop): DATABASE_URL or the default SQLite
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
