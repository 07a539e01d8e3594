"""The agent desk: where people take over conversations from the bot.

Backend: `auth` (agents, passwords, sessions), `routes` (pages, JSON API, event stream; wired into
the gateway with `bot.desk.routes.setup(app)`), `record` (the customer record), `texts`.
Accounts: `python -m bot.desk --help`. Contract: docs/handoff-contract.md.
"""
