"""Rasa custom actions, grouped by topic. `rasa run actions --actions actions` loads them all."""
