"""The control messages between the action server and the gateway (bot/shared/control.py): what
an action sends is what the gateway reads back, and anything malformed is left out."""

from bot.shared import control
from bot.shared.control import ContinueOn, Handoff, IdentifiedCustomer, IdentityLevel, SetLanguage


def test_every_message_survives_the_trip_through_rasa():
    sent = [SetLanguage("en"), IdentityLevel("claimed"), ContinueOn("whatsapp"),
            Handoff("mandate", topic="request_refund", role="senior_agent", summary="refund of €200",
                    request={"decision": "refund", "amount_cents": 20000}, ticket=12)]
    assert control.parse(control.payload(*sent)) == sent


def test_an_identified_customer_carries_its_proof_and_the_verified_level():
    wire = control.payload(IdentifiedCustomer(7, by="code"))
    assert wire == {"identified_customer": 7, "identity": {"level": "verified", "by": "code"}}
    assert control.parse(wire) == [IdentityLevel("verified", "code"), IdentifiedCustomer(7, "code")]


def test_a_handoff_keeps_unknown_details_and_drops_empty_ones():
    wire = control.payload(Handoff("asked", topic=None, summary="", extra={"queue_hint": "finance"}))
    assert wire == {"handoff": {"reason": "asked", "queue_hint": "finance"}}
    assert control.parse(wire) == [Handoff("asked", extra={"queue_hint": "finance"})]


def test_the_domains_own_wire_format_is_read():
    # domain.yml responses carry `custom: {set_language: en}`
    assert control.parse({"set_language": "en"}) == [SetLanguage("en")]


def test_malformed_control_messages_are_left_out():
    assert control.parse(None) == []
    assert control.parse("handoff") == []
    assert control.parse({"set_language": "de"}) == []
    assert control.parse({"identity": {"level": "owner"}}) == []
    assert control.parse({"identified_customer": True}) == []
    assert control.parse({"identified_customer": "7; drop"}) == []
    assert control.parse({"continue_on": ""}) == []
    assert control.parse({"handoff": "now"}) == []
    assert control.parse({"handoff": {"reason": 3, "ticket": "x", "request": []}}) == [Handoff("asked")]
