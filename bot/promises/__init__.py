"""Promises kept: every time we tell a customer is a record (bot/records/models.py `Promise`),
its state is decided in one place (state.py), and a durable scheduler (watch.py, on arq) warns the
desk before one breaks and tells the customer a new honest time before the old one passes."""
