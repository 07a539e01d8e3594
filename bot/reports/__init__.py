"""Figures for the team, computed from the database: promises kept, renewed and broken
(`promises.py`). One module per report; the desk's API and the CLI (`python -m bot.reports`) call
the same functions."""
