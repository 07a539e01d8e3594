"""Starts the Rasa server (`rasa run ...`) with its API token taken from the environment.

`python -m bot.rasa_server <rasa run arguments>` adds `--auth-token` from RASA_TOKEN inside the
process, so the token is not on the command line, where `ps` shows it to every user of the
machine. (Rasa 3.6 reads the token from its arguments only.)
"""

from __future__ import annotations

import os
import sys


def argv(args: list[str], token: str) -> list[str]:
    # "--auth-token=<token>": a random token may begin with "-", and argparse would take a
    # separate "-k3Sw..." for an option and exit with 2 (it once failed a CI run).
    return ["rasa", *args, f"--auth-token={token}"]


def main() -> None:
    token = os.environ.get("RASA_TOKEN", "")
    if not token:
        raise SystemExit("RASA_TOKEN is not set: the Rasa API must not run without a token")
    sys.argv = argv(sys.argv[1:], token)
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
