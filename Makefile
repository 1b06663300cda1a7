# orderlab: the two commands a new user needs are `make lab` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ORDERLAB := $(VENV)/bin/orderlab
STAMP := $(VENV)/.installed-stamp
# Where Kafka is. Defined here at make level and exported, so every recipe sees
# the same address whether or not the environment sets it (a newcomer's shell
# does not). KAFKA_PORT picks the local broker's port without naming a host.
KAFKA_PORT ?= 9092
KAFKA_BOOTSTRAP_SERVERS ?= localhost:$(KAFKA_PORT)
export KAFKA_BOOTSTRAP_SERVERS
LAB_PORT ?= 8888
export ORDERLAB_CACHE_DIR ?= $(HOME)/.cache/orderlab

.PHONY: setup jars lab broker-up broker-down test test-unit notebooks browser screenshots bench chaos dashboard clean help

help:
	@echo "make lab    - set up, start Kafka, open JupyterLab on notebooks/"
	@echo "make test   - set up, run every test layer against a throw-away Kafka broker"
	@echo "make setup  - create .venv, install orderlab[dev], fetch the Kafka jars (once)"
	@echo "make dashboard - the control room as a page (Voila) at http://127.0.0.1:8866"
	@echo "make chaos  - the fault scenarios;  make bench - throughput and latency figures"

# -- set-up (idempotent: a second run only checks the stamp and the jars) ----------
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) jars

jars: $(STAMP)
	@$(ORDERLAB) broker fetch

# -- the main job ---------------------------------------------------------------------
# Kafka from compose when a Docker engine answers, else the local broker from jars
# (`broker start` uses a Kafka that already answers at the address, and starts
# nothing then). The broker stays up when JupyterLab stops: `make broker-down`.
broker-up: setup
	@if docker info >/dev/null 2>&1; then \
		echo "Docker engine found: starting Kafka and Mailpit with compose"; \
		docker compose up -d --wait kafka mailpit; \
	else \
		$(ORDERLAB) broker start; \
	fi
	@$(ORDERLAB) topics

broker-down:
	@if docker info >/dev/null 2>&1 && docker compose ps -q kafka 2>/dev/null | grep -q .; then docker compose down; \
	else $(ORDERLAB) broker stop; fi

lab: broker-up
	@$(ORDERLAB) lab --port $(LAB_PORT) notebooks

# The presenter view: the control room alone as a page, no code (a projector in class).
DASHBOARD_PORT ?= 8866
DASHBOARD_NOTEBOOK ?= dashboards/control_room.ipynb
dashboard: broker-up
	@$(ORDERLAB) lab --port $(DASHBOARD_PORT) --dashboard $(DASHBOARD_NOTEBOOK)

# -- tests: every layer against one throw-away broker, stopped even on failure -----------
PYTEST := $(PY) -m pytest
# strict nbval: every stored output is compared, except cells marked NBVAL_IGNORE_OUTPUT
NBVAL_ARGS := --nbval --nbval-current-env $(if $(wildcard notebooks/sanitize.cfg),--nbval-sanitize-with notebooks/sanitize.cfg)
NOTEBOOKS := $(if $(wildcard notebooks/*.ipynb),notebooks $(NBVAL_ARGS))
WITH_BROKER := $(PY) -m orderlab.broker.throwaway --

test: setup
	@start=$$(date +%s); \
	$(WITH_BROKER) $(PYTEST) tests $(NOTEBOOKS); rc=$$?; \
	echo "make test: exit $$rc after $$(( $$(date +%s) - start )) s"; exit $$rc

test-unit: $(STAMP)
	$(PYTEST) tests/unit

browser: setup
	$(WITH_BROKER) $(PYTEST) tests/browser

# Retake the README's screenshots (docs/*.png) in headless Chromium; look at them before committing.
screenshots: setup
	$(WITH_BROKER) $(PYTEST) -s tests/browser/retake_docs_screenshots.py

notebooks: setup
	$(WITH_BROKER) $(PYTEST) $(NBVAL_ARGS) notebooks

bench: setup
	$(ORDERLAB) bench

chaos: setup
	$(ORDERLAB) chaos

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
