"""Control messages between the action server and the gateway, typed, in one place.

An action tells the gateway something by sending a `json_message` (Rasa delivers it to the
channel as the reply's `custom` payload); the gateway reads it back with `parse`. The wire
format of each message is its `KEY` and the fields of its payload. Rasa responses in domain.yml
may carry them too (`custom: {set_language: en}`).

    action server:  dispatcher.utter_message(json_message=control.payload(IdentifiedCustomer(7, "code")))
    gateway:        for message in control.parse(reply.get("custom")): ...
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Union

SUPPORTED_LANGUAGES = ("nl", "en")
IDENTITY_LEVELS = ("anonymous", "claimed", "verified")


@dataclass(frozen=True)
class SetLanguage:
    """The customer asked for another language: the gateway's own texts follow it."""
    language: str


@dataclass(frozen=True)
class IdentityLevel:
    """How far the customer is identified now (config/identity.yml); the desk shows it."""
    level: str
    by: str = ""


@dataclass(frozen=True)
class IdentifiedCustomer:
    """The customer proved to be `customer_id` (a one-time code, a login): join their conversation."""
    customer_id: int
    by: str = "code"


@dataclass(frozen=True)
class ContinueOn:
    """The customer wants to go on on another channel: the gateway writes first there."""
    channel: str


@dataclass(frozen=True)
class Handoff:
    """Hand the conversation to a person; the gateway answers with the honest wait."""
    reason: str
    topic: str | None = None
    role: str | None = None
    summary: str = ""
    request: dict[str, Any] | None = None
    ticket: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "extra" and v not in (None, "")}
        return {**self.extra, **data}


@dataclass(frozen=True)
class TopicDone:
    """The customer's question about `topic` is answered (action_topic): a question they asked in
    the same message may come next (bot/pipeline/questions.py)."""
    topic: str


Control = Union[SetLanguage, IdentityLevel, IdentifiedCustomer, ContinueOn, Handoff, TopicDone]


def payload(*messages: Control) -> dict[str, Any]:
    """The json_message an action sends for these control messages."""
    out: dict[str, Any] = {}
    for message in messages:
        if isinstance(message, SetLanguage):
            out["set_language"] = message.language
        elif isinstance(message, IdentityLevel):
            out["identity"] = {"level": message.level, **({"by": message.by} if message.by else {})}
        elif isinstance(message, IdentifiedCustomer):
            out["identified_customer"] = message.customer_id
            out.setdefault("identity", {"level": "verified", "by": message.by})
        elif isinstance(message, ContinueOn):
            out["continue_on"] = message.channel
        elif isinstance(message, Handoff):
            out["handoff"] = message.as_dict()
        elif isinstance(message, TopicDone):
            out["topic_done"] = message.topic
        else:  # pragma: no cover - a new type without a wire format
            raise TypeError(f"not a control message: {message!r}")
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse(custom: Any) -> list[Control]:
    """The control messages in a reply's `custom` payload, in a fixed order (language, identity,
    identified customer, continue on, handoff, topic done). Anything malformed is left out."""
    if not isinstance(custom, dict):
        return []
    out: list[Control] = []
    if custom.get("set_language") in SUPPORTED_LANGUAGES:
        out.append(SetLanguage(custom["set_language"]))
    identity = custom.get("identity")
    if isinstance(identity, dict) and identity.get("level") in IDENTITY_LEVELS:
        out.append(IdentityLevel(identity["level"], _text(identity.get("by")) or ""))
    customer_id = _int(custom.get("identified_customer"))
    if customer_id is not None:
        by = _text(identity.get("by")) if isinstance(identity, dict) else None
        out.append(IdentifiedCustomer(customer_id, by or "code"))
    if _text(custom.get("continue_on")):
        out.append(ContinueOn(custom["continue_on"]))
    handoff = custom.get("handoff")
    if isinstance(handoff, dict):
        known = {"reason", "topic", "role", "summary", "request", "ticket"}
        out.append(Handoff(
            reason=_text(handoff.get("reason")) or "asked",
            topic=_text(handoff.get("topic")),
            role=_text(handoff.get("role")),
            summary=str(handoff.get("summary") or ""),
            request=handoff.get("request") if isinstance(handoff.get("request"), dict) else None,
            ticket=_int(handoff.get("ticket")),
            extra={k: v for k, v in handoff.items() if k not in known},
        ))
    if _text(custom.get("topic_done")):
        out.append(TopicDone(custom["topic_done"]))
    return out
