"""Two questions in one message (bot/pipeline/questions.py): how a message is split and planned."""

from __future__ import annotations

import pytest

from actions.topics import TOPIC_SLOTS
from bot.pipeline import questions
from bot.shared import control


def nlu(name: str, confidence: float = 0.9) -> dict:
    return {"intent": {"name": name, "confidence": confidence}}


@pytest.mark.parametrize("text,expected", [
    ("Waar blijft mijn pakket? En kost retourneren iets?", ["Waar blijft mijn pakket?", "En kost retourneren iets?"]),
    ("hoe lang duurt de bezorging en ook verkopen jullie cadeaukaarten",
     ["hoe lang duurt de bezorging", "verkopen jullie cadeaukaarten"]),
    ("Where is my order 104233? Also, how many points do I have?",
     ["Where is my order 104233?", "Also, how many points do I have?"]),
    ("mijn pakket is kapot en ik wil mijn geld terug", ["mijn pakket is kapot en ik wil mijn geld terug"]),
    ("Hoi! Waar is mijn bestelling?", ["Hoi! Waar is mijn bestelling?"]),  # a greeting is no second question
    ("ok.", ["ok."]),
    # two questions in one sentence: the second starts again with a question word or verb
    ("Hallo, ik ben Daan, K10002. Is mijn robotstofzuiger al onderweg en staat er nog een factuur open?",
     ["Hallo, ik ben Daan, K10002.", "Is mijn robotstofzuiger al onderweg", "staat er nog een factuur open?"]),
    ("where is my parcel and how much does a return cost?", ["where is my parcel", "how much does a return cost?"]),
    # split here; plan() sends it whole when both halves ask the same (order_status twice)
    ("kun je kijken waar mijn pakket is en wanneer het komt?", ["kun je kijken waar mijn pakket is", "wanneer het komt?"]),
    ("is het pakket kapot en nat?", ["is het pakket kapot en nat?"]),  # no second question
])
def test_parts(text, expected):
    assert questions.parts(text) == expected


def test_a_side_question_comes_first_and_identification_goes_with_the_case_question():
    pieces = ["Waar blijft mijn pakket?", "Ik ben K10001.", "En kost retourneren iets?"]
    found = questions.plan(pieces, [nlu("order_status"), nlu("inform"), nlu("faq")])
    assert found == questions.Plan(now=["En kost retourneren iets?", "Waar blijft mijn pakket? Ik ben K10001."],
                                   later=[])


def test_who_the_customer_is_never_counts_as_a_question_and_goes_with_what_needs_it():
    # the model may read anything into "I'm Harry Wilson, K10018"; it is who asks, not a question
    pieces = ["Hi, someone was going to call me back, when will that be?", "I'm Harry Wilson, K10018"]
    assert questions.plan(pieces, [nlu("ask_response_time", 1.0), nlu("update_preferences", 0.97)]) is None
    # "how long still?" looks at the records: the claim goes with it, the case question follows
    pieces = ["Waar blijft mijn pakket?", "Ik ben K10001.", "En hoe lang duurt het nog voor jullie terugbellen?"]
    found = questions.plan(pieces, [nlu("order_status"), nlu("inform"), nlu("ask_response_time")])
    assert found == questions.Plan(now=["Ik ben K10001. En hoe lang duurt het nog voor jullie terugbellen?",
                                        "Waar blijft mijn pakket?"], later=[])


def test_a_second_case_question_waits_for_the_first():
    pieces = ["Where is my order 104233?", "how many points do I have?"]
    found = questions.plan(pieces, [nlu("order_status"), nlu("loyalty_points")])
    assert found == questions.Plan(now=["Where is my order 104233?"], later=["how many points do I have?"])


def test_two_faq_questions_are_two_questions_and_one_question_is_sent_whole():
    pieces = ["hoe lang duurt de bezorging", "verkopen jullie cadeaukaarten"]
    assert questions.plan(pieces, [nlu("faq", 1.0), nlu("faq", 1.0)]).now == pieces
    assert questions.plan(["Waar is mijn pakket?", "Ik ben K10001."], [nlu("order_status"), nlu("inform")]) is None
    assert questions.plan(["Waar is mijn pakket?", "Nu graag!"], [nlu("order_status"), nlu("order_status")]) is None
    assert questions.plan(["Waar is mijn pakket?", "Hoe lang nog?"], [nlu("order_status"), nlu("ask_response_time", 0.4)]) \
        is None  # unsure: no second question


def test_the_case_intents_are_the_topics_of_the_form():
    assert questions.CASE_INTENTS == set(TOPIC_SLOTS) - questions.SIDE_INTENTS


def test_topic_done_survives_the_trip():
    assert control.parse(control.payload(control.TopicDone("order_status"))) == [control.TopicDone("order_status")]
    assert control.parse({"topic_done": ""}) == []


def test_two_halves_asking_the_same_go_whole():
    pieces = questions.parts("kun je kijken waar mijn pakket is en wanneer het komt?")
    assert questions.plan(pieces, [nlu("order_status"), nlu("order_status")]) is None


def test_two_questions_in_one_sentence_are_both_asked():
    pieces = questions.parts("Hallo, ik ben Daan, K10002. Is mijn robotstofzuiger al onderweg en staat er nog een factuur open?")
    found = questions.plan(pieces, [nlu("inform"), nlu("order_status"), nlu("invoice_question")])
    assert found == questions.Plan(now=["Hallo, ik ben Daan, K10002. Is mijn robotstofzuiger al onderweg"],
                                   later=["staat er nog een factuur open?"])


def test_a_statement_read_unsurely_is_no_second_question():
    pieces = ["Goedemorgen, met Koen van Café De Zwaan.", "Staat er nog een factuur open bij jullie?"]
    assert questions.plan(pieces, [nlu("delivery_problem", 0.73), nlu("invoice_question", 0.99)]) is None
    pieces = ["Is mijn robotstofzuiger al onderweg", "staat er nog een factuur open?"]
    assert questions.plan(pieces, [nlu("order_status", 0.95), nlu("invoice_question", 0.99)]) is not None
