# Two commands for a newcomer: `make run` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
LOCK := requirements/lock.txt
STAMP := $(VENV)/.installed-$(shell sha256sum $(LOCK) | cut -c1-16)
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONPATH := $(CURDIR)

.DEFAULT_GOAL := help
.PHONY: help install browser train run test fast-test stack-test validate story-test pytest eval bench conversations lock clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install the pinned dependencies (requirements/lock.txt)
$(STAMP): $(LOCK)
	@echo "== installing pinned dependencies into $(VENV)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv==0.13.8
	$(VENV)/bin/uv pip sync --python $(PY) $(LOCK)
	rm -f $(VENV)/.installed-* && touch $@

CHROMIUM ?= /usr/bin/chromium
browser: ## Install Debian's Chromium for the desk's browser tests (Playwright drives it)
	@test -x $(CHROMIUM) || { echo "== installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update >/dev/null && $$SUDO apt-get install -y --no-install-recommends chromium >/dev/null; }; }
	@test -x $(CHROMIUM) && echo "== browser: $$($(CHROMIUM) --version 2>/dev/null)"

train: install ## Train the Rasa model if config, domain or data changed
	$(PY) -m bot.launch.train

run: install ## Run the bot: Redis (embedded unless REDIS_URL), actions, Rasa, gateway on :8080
	$(PY) -m bot.launch.run

validate: train
	$(RASA) data validate --fail-on-warnings

story-test: train
	$(RASA) test core --stories tests/ --model models/ --fail-on-prediction-errors --out var/results/core

pytest: train ## Run every pytest test (fast and stack tests in one run)
	$(PY) -m pytest

fast-test: install ## The tests that need no trained model (pytest -m "not stack"): a broken unit fails in minutes
	$(PY) -m pytest -m "not stack" -n 2  # two workers (pytest-xdist): the machine has two cores

stack-test: train ## The tests through the running stack with the trained model (pytest -m stack)
	$(PY) -m pytest -m stack

# The fast tests first, before the model is trained: a broken unit fails without waiting for it.
test: install browser ## Run all tests: fast tests, then training, data validation, test stories, stack tests
	$(MAKE) --no-print-directory fast-test
	$(MAKE) --no-print-directory train
	$(MAKE) --no-print-directory validate
	$(MAKE) --no-print-directory story-test
	$(MAKE) --no-print-directory stack-test

conversations: train ## Play the dialogue suite's whole conversations through the stack; writes docs/conversations.md
	$(PY) scripts/conversations_report.py

eval: install ## Evaluate NLU per language on held-out data; writes docs/nlu-evaluation.md
	$(PY) scripts/evaluate_nlu.py

bench: train ## Measure latency, the handoff to the desk and long conversations; writes docs/latency.md, docs/handoff-bench.md, docs/tracker-store.md
	$(PY) scripts/bench_latency.py
	$(PY) scripts/bench_handoff.py
	$(PY) scripts/bench_tracker_store.py

lock: ## Re-resolve requirements/*.in into the lock file
	$(VENV)/bin/uv pip compile requirements/dev.in --override requirements/overrides.txt --python-version 3.11 -o $(LOCK)

clean: ## Remove the trained models and runtime data (var/)
	rm -rf models var
