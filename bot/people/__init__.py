"""People: handing a conversation to a person and the queue agents work from.

  types.py     AgentInfo, HandoffError, REASONS, STATES, the clock (anything with now())
  config.py    HandoffConfig: config/handoff.yml (triggers, queues, routing, priority, estimate)
  moods.py     mood(): angry or urgent, from the words of a message
  estimate.py  the wait estimate and its text: pure functions of the queue, hours and `now`
  queue.py     Handoffs: the Redis queue and its state machine, the only writer of the handoff keys
"""

from bot.people.config import HandoffConfig, HandoffConfigError, Queue, Trigger
from bot.people.estimate import Estimate, QueueView
from bot.people.moods import mood
from bot.people.queue import PRESENCE_SECONDS, Handoffs, state_of
from bot.people.types import REASONS, STATES, AgentInfo, Clock, HandoffError, SystemClock

__all__ = [
    "AgentInfo", "Clock", "Estimate", "HandoffConfig", "HandoffConfigError", "HandoffError", "Handoffs",
    "PRESENCE_SECONDS", "Queue", "QueueView", "REASONS", "STATES", "SystemClock", "Trigger", "mood", "state_of",
]
