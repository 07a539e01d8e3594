"""The Rasa component that turns a message config/faq.yml answers into the intent `faq`
(bot/rasa_plugins/faq.py), run on Rasa's own Message objects and followed by Rasa's own
FallbackClassifier, as in config.yml."""

from __future__ import annotations

from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.nlu.training_data.message import Message

from bot.rasa_plugins.faq import FaqClassifier


def read(text: str, diet: list[tuple[str, float]]) -> dict:
    ranking = [{"name": name, "confidence": confidence} for name, confidence in diet]
    message = Message(data={"text": text, "intent": ranking[0], "intent_ranking": ranking})
    [message] = FaqClassifier().process([message])
    fallback = FallbackClassifier({**FallbackClassifier.get_default_config(), "threshold": 0.45,
                                   "ambiguity_threshold": 0.05})
    [message] = fallback.process([message])
    return message.get("intent")


def test_an_faq_question_is_faq_even_when_diet_was_sure_of_another_intent():
    assert read("is the return free?", [("return_item", 0.97), ("faq", 0.02)])["name"] == "faq"


def test_a_question_the_file_does_not_know_keeps_diets_reading():
    assert read("waar is mijn bestelling", [("order_status", 0.98), ("faq", 0.01)])["name"] == "order_status"
    assert read("uhm", [("greet", 0.3), ("faq", 0.2)])["name"] == "nlu_fallback"
