"""The post-chat survey on the web chat with the real model, action server, Redis and database:
the bot answers the customer's question, the customer says thanks, the CES question comes as
quick replies; a score is never a question for Rasa; a real question typed instead of a score
leaves the survey and is answered from the records."""

from __future__ import annotations

import pytest

from tests.support.chat import texts, verify_in_chat
from tests.support.stack import stack_sql

CES = {
    "nl": "De Webwinkel maakte het me makkelijk om mijn vraag af te handelen.",
    "en": "De Webwinkel made it easy for me to handle my question.",
}
JOURNEYS = {
    "nl": dict(number="K10001", where="waar is mijn bestelling", order="104233", thanks="top, bedankt!",
               skip="Overslaan", nps="aanbeveelt", question="hoeveel spaarpunten heb ik?", answer="1250 punten"),
    "en": dict(number="K10003", where="where is my order?", order="126354", thanks="great, thanks a lot",
               skip="Skip", nps="recommend", question="how many loyalty points do i have?", answer="540 points"),
}
CLAIM = {"nl": "K10001", "en": "emma.clarke@example.co.uk"}


@pytest.mark.parametrize("lang", ["nl", "en"])
async def test_thanks_after_the_bot_answered_brings_the_survey_and_a_typed_question_leaves_it(chat, stack, lang):
    j = JOURNEYS[lang]
    # the stack's records are shared by every stack test: a survey another test brought this customer,
    # a complaint another test filed for her (tests/test_records_chat.py) or a STOP would hold this one
    # off (the fatigue rules, tested in tests/test_feedback.py)
    who = "(select id from customers where customer_number = ?)"
    for sql in (f"delete from feedback where customer_id = {who}", f"delete from surveys where customer_id = {who}",
                f"update tickets set status = 'closed' where kind = 'complaint' and customer_id = {who}",
                f"delete from contact_history where topic = 'consent' and customer_id = {who}"):
        stack_sql(stack, sql, j["number"])
    c = await chat()
    await c.say("hoi" if lang == "nl" else "hello there")
    await c.say(j["where"])
    answered = texts(await verify_in_chat(c, stack, CLAIM[lang], j["number"], lang))
    assert j["order"] in answered  # the bot answered the topic (the order from the records)

    replies = await c.say(j["thanks"])
    question = replies[-1]
    assert CES[lang] in question["text"]
    assert [b["title"] for b in question["quick_replies"]] == ["1", "2", "3", "4", "5", "6", "7", j["skip"]]
    # the customer presses 6: the NPS question, not an answer from Rasa
    assert j["nps"] in texts(await c.say("6"))
    # a real question instead of a score: the survey is left and the question answered
    assert j["answer"] in texts(await c.say(j["question"]))
    rows = stack_sql(stack, "select s.trigger, s.served_by, s.topic, s.status, f.ces, f.nps from surveys s "
                            "left join feedback f on f.survey_id = s.id join customers c on c.id = s.customer_id "
                            "where c.customer_number = ? order by s.id desc limit 1", j["number"])
    assert rows == [("resolved", "bot", "order_status", "answered", 6, None)]
