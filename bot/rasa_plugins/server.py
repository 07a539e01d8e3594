"""Starts the Rasa server (`rasa run ...`) with its API token taken from the environment, and
with message texts kept out of its log.

`python -m bot.rasa_plugins.server <rasa run arguments>` adds `--auth-token` from RASA_TOKEN inside the
process, so the token is not on the command line, where `ps` shows it to every user of the
machine. (Rasa 3.6 reads the token from its arguments only.)

Rasa logs what the customer wrote in some of its structured log events, at ERROR level too: the
REST channel's `rest.message.received.timeout` carries `text=` when the gateway's request is
cancelled (a timeout, the gateway stopping), and `rest.message.received.failure` when a turn
fails. `redact_personal` is a structlog processor that replaces the values of every key Rasa
itself marks as personal (its anonymizer's list: text, user_message, slot_values, ...) before an
event is rendered; it is put in place of Rasa's own `_anonymizer` step (which it still runs
first), so it applies to every log line Rasa writes through structlog at every level.
"""

from __future__ import annotations

import os
import sys
from typing import Any

REDACTED = "[redacted]"
# rasa.utils.log_utils._anonymizer's keys (Rasa 3.6): the values Rasa knows may be personal.
PERSONAL_KEYS = frozenset({
    "text", "response_text", "user_text", "slot_values", "parse_data_text", "parse_data_entities",
    "prediction_events", "tracker_latest_message", "prefilled_slots", "message", "response",
    "slot_candidates", "rasa_event", "rasa_events", "tracker_states", "current_states", "old_states",
    "successes", "current_entity", "next_entity", "states", "entity", "token_text", "user_message",
    "json_message",
})


def argv(args: list[str], token: str) -> list[str]:
    # "--auth-token=<token>": a random token may begin with "-", and argparse would take a
    # separate "-k3Sw..." for an option and exit with 2 (it once failed a CI run).
    return ["rasa", *args, f"--auth-token={token}"]


def redact_personal(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in PERSONAL_KEYS.intersection(event_dict):
        if event_dict[key] is not None:
            event_dict[key] = REDACTED
    return event_dict


def install_redaction() -> None:
    """Make Rasa's structlog configuration (done in `rasa.__main__.main`) redact personal values."""
    from rasa.utils import log_utils

    original = log_utils._anonymizer
    if getattr(original, "redacts", False):
        return

    def anonymize_then_redact(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return redact_personal(logger, method, original(logger, method, event_dict))

    anonymize_then_redact.redacts = True  # type: ignore[attr-defined]
    log_utils._anonymizer = anonymize_then_redact


def main() -> None:
    token = os.environ.get("RASA_TOKEN", "")
    if not token:
        raise SystemExit("RASA_TOKEN is not set: the Rasa API must not run without a token")
    sys.argv = argv(sys.argv[1:], token)
    install_redaction()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
