"""A Rasa NLU component: a message that config/faq.yml answers becomes the intent `faq`.

Placed after DIETClassifier in config.yml. The FAQ file is the business's to edit without
retraining, so its questions cannot be training data: this component matches every message
against the file (bot/policy/faq.py) at prediction time and, on a match, sets the intent `faq`
with confidence 1 in front of DIET's ranking. The action server finds the same entry again
(actions/answers.py). Not trainable: it adds nothing to the model.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.policy import faq

log = logging.getLogger(__name__)
INTENT_FAQ = "faq"
DIET_WEIGHT = 0.5


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class FaqClassifier(GraphComponent):
    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "FaqClassifier":
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            try:
                entry = faq.match(message.get(TEXT) or "")
            except faq.FaqError as exc:  # a broken edit of the file: DIET's intent stands, said once per message
                log.error("config/faq.yml not used: %s", exc)
                continue
            if entry is None:
                continue
            intent = {INTENT_NAME_KEY: INTENT_FAQ, "confidence": 1.0}
            # DIET's readings stay in the ranking, halved: the FallbackClassifier after this component
            # would otherwise call a sure DIET second (0.97) "ambiguous" with the FAQ's 1.0
            ranking = [{**r, "confidence": float(r.get("confidence") or 0) * DIET_WEIGHT}
                       for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != INTENT_FAQ]
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)
        return messages
