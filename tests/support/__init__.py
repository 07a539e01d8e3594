"""What the tests share, apart from fixtures (those, and the hooks, are in tests/conftest.py).

- `stack`: the test Redis and PostgreSQL, the fake services' secrets, demo databases, a stack's logs,
  `GatewayClock` (the stack's gateway restarted at a fixed moment: the `gateway_clock` fixture).
- `clock`: fixed moments near the real date (a business Monday 10:00, the Friday evening before)
  and the day as a customer reads it, for tests that fix the clock and assert one exact text.
- `chat`: `ChatClient`, a web chat visitor (it waits for the gateway's `turn_done`, never a fixed
  time), and identifying in the chat with a one-time code.
- `channels`: webhooks of WhatsApp, SMS and Telegram into a running gateway.
- `desk_api`: an agent's browser on the desk's HTTP API, agents made with the desk's CLI, an agent
  kept online (`online`), a gateway with the desk but without Rasa.
- `desk_helpers`: the desk's browser tests (Chromium through Playwright), WhatsApp customers.
- `fake_twilio`, `fake_telegram`: the external services on loopback. `tcp_proxy`: a cuttable proxy.
- `wait`: polling until a condition holds, with a timeout.

No test module imports another test module: what two of them need is here.
"""
